/**
 * The per-workspace memory store: θ, Θ, the dropped cache, counters and provenance on disk,
 * crash-safe. Directory layout (every name but `manifest.json` and `lock` is written once):
 *
 *   manifest.json            the commit: format version, model identity, dims, and the names,
 *                            sizes and checksums of every file below that belongs to it
 *   state-<seq>.bin          per layer: θ and cache row references (into rows-*, keys-*) with ages
 *                            and sources; the update step
 *   ltm-<seq>.bin            per layer Θ bookkeeping: ages (stored minus the manifest's ageShift),
 *                            recall frequencies, sources, row references (segment, row) into seg-*;
 *                            named again unchanged by commits that only aged Θ
 *   sources-<seq>.json       provenance table (SourceTable)
 *   seg-<layer>-<seq>-<id>   Θ segments (values, keys, row checksums; see segment.ts)
 *   rows-<layer>-<seq>-<id>  θ and cache values (segments without keys, in `thetaFormat`)
 *   keys-<layer>-<seq>-<id>  the cache's keys (segments of keys only: a key is known once its
 *                            token leaves θ)
 *   lock                     the writer's pid (lock.ts)
 *
 * Parts: manifest.ts (schema, checks, durable files), stateFile.ts (the state/Θ file codec),
 * rowRefs.ts (where each θ/cache row lies, by row identity: the store's bookkeeping, not memory's),
 * commit.ts (the transaction), this file (open, load, rebuild, sizes, lifetime), storedMemory.ts
 * (the Memory the sidecar hands the engine).
 *
 * Why θ lives in row segments: a token's value never changes after the injection that wrote it;
 * it moves θ → cache → Θ and only its bookkeeping changes. So a commit writes only the rows
 * created since the last one (an editor save: K rows per layer per injection) instead of all of
 * θ and the cache (at mplus-8b, 2.7 GB and up to 4 GB more in bf16). Row segments of a layer are
 * rewritten into one when under a third of their rows is still referenced, which bounds them at
 * 3× the live θ + cache and amortises the rewrite to half a row per new row. The session reads
 * θ and the cache from those segments too (SegmentedRows), as it reads Θ: only rows written since
 * the last commit are held in RAM. The engine keeps θ's K/V between questions, so θ is read once
 * per injection (to recompute them) plus the K tail rows and the rows an injection drops.
 *
 * Commit (commit.ts): write the new files → fsync each → write manifest.tmp → fsync → rename over
 * manifest.json → fsync the directory → point the live state at the new files → delete files no
 * longer named. A crash anywhere leaves
 * either the old or the new manifest, each naming only complete, fsynced files; leftovers are
 * removed at the next open. Values are stored in `valueFormat` (Θ) and `thetaFormat` (θ, cache);
 * at commit the live state is rounded the same way, so the session equals a reopen exactly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { layerInFormat } from '../layer';
import { SourceTable } from '../provenance';
import { Column, RowFormat, Rows, ValueRows, valueRowsFrom } from '../rows';
import { LayerMemory, LtmPolicyParams, MemoryDims, MemoryState } from '../state';
import { ValueFormat, rowBytes } from './codec';
import { prepareCommit } from './commit';
import { StoreCorruptError, StoreError } from './errors';
import { StoreLock } from './lock';
import { EVER, MANIFEST, Manifest, ModelIdentity, allSegments, collectGarbage, namedFiles, publishManifest, readChecked, readManifest, writeDurable } from './manifest';
import { ROW_SPAN, RowRefs } from './rowRefs';
import { SegmentReader } from './segment';
import { SegmentedRows } from './segmentedRows';
import { unpackArrays } from './stateFile';

export { STORE_FORMAT, STORE_VERSION } from './manifest';
export type { ModelIdentity } from './manifest';

export interface StoreOptions {
  identity: ModelIdentity;
  dims: MemoryDims;
  policy: LtmPolicyParams;
  /** Θ values on disk; default f32 (bf16 for a bf16 checkpoint is the caller's choice). */
  valueFormat?: ValueFormat;
  /** θ and cache values on disk: f32 or bf16 (q8 is for Θ only). */
  thetaFormat?: 'f32' | 'bf16';
}

export interface OpenResult {
  store: MemoryStore;
  state: MemoryState;
  sources: SourceTable;
  extra: Record<string, unknown>;
  /** True when the directory held no store and a fresh one was started from `initial`. */
  created: boolean;
}

export interface CommitInfo {
  seq: number;
  bytesWritten: number;
  ms: number;
}

export interface StoreSizes {
  /** θ and cache values (row segments, including rows no longer referenced until a rewrite). */
  thetaBytes: number;
  /** The cache's keys (key segments) and the state and Θ bookkeeping files (references, ages, frequencies, sources). */
  cacheBytes: number;
  ltmValueBytes: number;
  ltmKeyBytes: number;
  ltmMetaBytes: number;
  sourcesBytes: number;
  totalBytes: number;
  ltmRowsPerLayer: number[];
}

export class MemoryStore {
  private manifest: Manifest | null = null;
  private readers = new Map<number, SegmentReader>();
  private readonly refs: RowRefs;
  /** The one state this store commits (row references are kept by its row identities). */
  private state: MemoryState | null = null;
  private closed = false;

  private constructor(readonly dir: string, private readonly lock: StoreLock, readonly opts: Required<StoreOptions>) {
    this.refs = new RowRefs(opts.dims.layers);
  }

  /**
   * Opens (or creates) the store in `dir`, taking its write lock. `initial` supplies the
   * checkpoint's memory for a fresh store. Throws StoreMismatchError for another model/format,
   * StoreCorruptError for damaged committed files, StoreLockedError for a second writer.
   */
  static open(dir: string, options: StoreOptions, initial: () => MemoryState): OpenResult {
    const opts: Required<StoreOptions> = { valueFormat: 'f32', thetaFormat: 'f32', ...options };
    fs.mkdirSync(dir, { recursive: true });
    const lock = StoreLock.acquire(dir);
    const store = new MemoryStore(dir, lock, opts);
    try {
      const m = readManifest(dir, opts.identity, opts.dims);
      if (!m) {
        collectGarbage(dir, new Set());
        // The caller's policy (budget, θ only) governs from the first injection, as after a reopen;
        // the checkpoint's initial state carries the model's.
        const shipped = initial();
        // θ and the cache in the store's θ format (bf16 θ: half the bytes); adopt() + the first
        // commit move them to disk, and the RAM copy goes.
        const state = new MemoryState(shipped.dims, opts.policy, shipped.layers.map((l) => layerInFormat(l, opts.thetaFormat)));
        store.adopt(state);
        const sources = new SourceTable();
        state.isStale = sources.isStale;
        store.commit(state, sources, {});
        writeDurable(path.join(dir, EVER), 'this directory has held a committed M+ store\n');
        return { store, state, sources, extra: {}, created: true };
      }
      // The formats in the manifest win: a store keeps the precision it was built with.
      opts.valueFormat = m.valueFormat;
      opts.thetaFormat = m.thetaFormat;
      store.manifest = m;
      const { state, sources } = store.load(m);
      store.state = state;
      collectGarbage(dir, namedFiles(m));
      return { store, state, sources, extra: m.extra ?? {}, created: false };
    } catch (e) {
      store.close();
      throw e;
    }
  }

  /**
   * The rebuild path for a store that cannot be opened (corrupt, other model or format) or that
   * the user wants to start over: moves the directory aside to `<dir>.broken-<time>` (kept for
   * inspection, never deleted by us) and returns that path; the next open starts a fresh store.
   * Refuses (StoreLockedError) while another process holds it; the caller must have closed its
   * own MemoryStore on `dir` first.
   */
  static moveAside(dir: string): string | null {
    if (!fs.existsSync(dir)) return null;
    const lock = StoreLock.acquire(dir);
    lock.release();
    const aside = asidePath(dir, 'broken');
    fs.renameSync(dir, aside);
    return aside;
  }

  /** Whether `dir` holds a store (committed, or one that once was and lost its manifest). */
  static exists(dir: string): boolean {
    return fs.existsSync(path.join(dir, MANIFEST)) || fs.existsSync(path.join(dir, EVER));
  }

  /**
   * Rebuild of an open store: moves its directory aside to `<dir>.rebuilt-<time>` while this
   * process still holds the lock (no other writer can get in between), then closes it. Nothing is
   * deleted; the caller opens `dir` again to start empty. Returns the new path.
   */
  retire(): string {
    if (this.closed) throw new Error('store is closed');
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
    const aside = asidePath(this.dir, 'rebuilt');
    fs.renameSync(this.dir, aside);
    this.closed = true;
    // Our lock moved with the directory; the moved store is nobody's now.
    fs.rmSync(path.join(aside, 'lock'), { force: true });
    return aside;
  }

  /** Value formats in force (from the manifest for an existing store). */
  get valueFormat(): ValueFormat {
    return this.opts.valueFormat;
  }

  get seq(): number {
    return this.manifest?.seq ?? 0;
  }

  /** Bytes of keys the segment readers hold (0 after open: the state's tables hold them). */
  get readerKeyBytes(): number {
    let n = 0;
    for (const r of this.readers.values()) n += r.heldKeyBytes;
    return n;
  }

  private reader(id: number): SegmentReader {
    let r = this.readers.get(id);
    if (!r) {
      const e = this.manifest && allSegments(this.manifest).find((s) => s.id === id);
      if (!e) throw new StoreError(this.dir, `segment ${id} is not in the manifest`, 'This is a bug: report it');
      r = new SegmentReader(path.join(this.dir, e.file), e);
      this.readers.set(id, r);
    }
    return r;
  }

  /**
   * Puts a state's values under this store: Θ, θ and the cache become segment-backed tables,
   * their rows pending until the next commit writes them, and read from disk after it.
   */
  adopt(state: MemoryState): void {
    if (this.state && this.state !== state) throw new Error('a store commits the one memory state it opened or created');
    this.state = state;
    const d = state.dims.hidden;
    const onDisk = (rows: Rows, format: RowFormat): SegmentedRows => {
      if (rows instanceof SegmentedRows) return rows;
      const t = new SegmentedRows(d, (id) => this.reader(id), format);
      if ('format' in rows && rows.format === format) t.adoptPending(rows as ValueRows); // no copy of θ (2.7 GB at mplus-8b)
      else if (rows.count) t.append(rows.data);
      return t;
    };
    for (const m of state.layers) {
      m.ltm = onDisk(m.ltm, 'f32');
      m.stm = onDisk(m.stm, this.opts.thetaFormat);
      m.cache = onDisk(m.cache, this.opts.thetaFormat);
    }
  }

  private load(m: Manifest): { state: MemoryState; sources: SourceTable } {
    const { dims } = m;
    const d = dims.hidden;
    const s = dims.keyDim;
    // Open (and verify) every segment up front, holding its keys until the state has copied them
    // (load's end drops them: the state's tables are what retrieval reads).
    for (const e of allSegments(m)) this.readers.set(e.id, new SegmentReader(path.join(this.dir, e.file), e, { keepKeys: true }));
    const stFile = path.join(this.dir, m.state.file);
    const st = unpackArrays(stFile, readChecked(this.dir, m.state));
    const ltmFile = path.join(this.dir, m.ltm.file);
    const lt = unpackArrays(ltmFile, readChecked(this.dir, m.ltm));
    let sources: SourceTable;
    try {
      sources = SourceTable.fromJSON(JSON.parse(readChecked(this.dir, m.sources).toString('utf8')));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreCorruptError(path.join(this.dir, m.sources.file), 'provenance table is not valid JSON');
    }
    const layers: LayerMemory[] = [];
    for (let l = 0; l < dims.layers; l++) {
      const at = (n: string) => `${l}.${n}`;
      const seg = lt.i32(at('ltmSeg'));
      const row = lt.i32(at('ltmRow'));
      const ltm = new SegmentedRows(d, (id) => this.reader(id));
      ltm.refSeg = Array.from(seg);
      ltm.refRow = Array.from(row);
      const keys = new Float32Array(seg.length * s);
      for (let i = 0; i < seg.length; i++) {
        const r = this.readers.get(seg[i]);
        if (!r || row[i] >= r.header.rows) throw new StoreCorruptError(ltmFile, `layer ${l} Θ row ${i} points at a missing segment row`);
        keys.set(r.keys.subarray(row[i] * s, (row[i] + 1) * s), i * s);
      }
      const rowSegs = new Set(m.rowSegments.filter((e) => e.layer === l).map((e) => e.id));
      const keySegs = new Set(m.keySegments.filter((e) => e.layer === l).map((e) => e.id));
      const stmRef = st.f64(at('stmRef'));
      const cacheRef = st.f64(at('cacheRef'));
      const cacheKeyRef = st.f64(at('cacheKeyRef'));
      // Row identities are the store's to give here: θ rows 0..N−1, then the cache's.
      const stmId = Float64Array.from(stmRef, (_, i) => i);
      const cacheId = Float64Array.from(cacheRef, (_, i) => stmRef.length + i);
      const lm: LayerMemory = {
        stm: this.rowsAt(stmRef, rowSegs, stFile, `layer ${l} θ`),
        stmAges: Column.from(st.f64(at('stmAges'))),
        stmSrc: Column.from(st.i32(at('stmSrc'))),
        stmId: Column.from(stmId),
        ltm,
        ltmKeys: valueRowsFrom(this.opts.thetaFormat, s, keys),
        ltmAges: Column.from(lt.f64(at('ltmAges')).map((a) => a + m.ltm.ageShift)),
        ltmRf: Column.from(lt.f32(at('ltmRf'))),
        ltmSrc: Column.from(lt.i32(at('ltmSrc'))),
        cache: this.rowsAt(cacheRef, rowSegs, stFile, `layer ${l} cache`),
        cacheKeys: valueRowsFrom(this.opts.thetaFormat, s, this.readKeyRefs(cacheKeyRef, keySegs, s, stFile, `layer ${l} cache keys`)),
        cacheAges: Column.from(st.f64(at('cacheAges'))),
        cacheSrc: Column.from(st.i32(at('cacheSrc'))),
        cacheId: Column.from(cacheId),
      };
      if (lm.stm.count !== dims.stmSize) throw new StoreCorruptError(stFile, `layer ${l} θ has ${lm.stm.count} rows, expected ${dims.stmSize}`);
      this.refs.reset(l, { ids: stmId, refs: stmRef }, { ids: cacheId, refs: cacheRef, keyRefs: cacheKeyRef });
      layers.push(lm);
    }
    for (const r of this.readers.values()) r.dropKeys(); // copied into the state's key tables
    let state: MemoryState;
    try {
      state = new MemoryState(dims, this.opts.policy, layers);
    } catch (e) {
      throw new StoreCorruptError(stFile, (e as Error).message);
    }
    state.updateStep = Number(st.meta.updateStep ?? 0);
    state.isStale = sources.isStale;
    return { state, sources };
  }

  /** Checks packed θ/cache references against the layer's segments → (segment, row) pairs. */
  private resolveRefs(refs: Float64Array, layerSegs: Set<number>, file: string, what: string): { seg: number[]; row: number[] } {
    const seg: number[] = [];
    const row: number[] = [];
    for (let i = 0; i < refs.length; i++) {
      const id = Math.floor(refs[i] / ROW_SPAN);
      const r = this.readers.get(id);
      if (!(refs[i] >= 0) || !layerSegs.has(id) || !r || refs[i] - id * ROW_SPAN >= r.header.rows) throw new StoreCorruptError(file, `${what} row ${i} points at a missing segment row`);
      seg.push(id);
      row.push(refs[i] - id * ROW_SPAN);
    }
    return { seg, row };
  }

  /**
   * θ or cache values by reference, left on disk: read (checksummed) when the engine asks for
   * rows, as Θ's are. A flipped value byte is therefore found at that read (StoreCorruptError, the
   * sidecar's Rebuild offer), not at open; `verify()` reads them all.
   */
  private rowsAt(refs: Float64Array, layerSegs: Set<number>, file: string, what: string): SegmentedRows {
    const t = new SegmentedRows(this.opts.dims.hidden, (id) => this.reader(id), this.opts.thetaFormat);
    ({ seg: t.refSeg, row: t.refRow } = this.resolveRefs(refs, layerSegs, file, what));
    return t;
  }

  /** The cache's keys by reference, from key segments (their keys are held while loading, verified at open). */
  private readKeyRefs(refs: Float64Array, layerSegs: Set<number>, s: number, file: string, what: string): Float32Array {
    const { seg, row } = this.resolveRefs(refs, layerSegs, file, what);
    const out = new Float32Array(refs.length * s);
    seg.forEach((id, i) => out.set(this.readers.get(id)!.keys.subarray(row[i] * s, (row[i] + 1) * s), i * s));
    return out;
  }

  /**
   * Commits `state` (the one this store opened) and `sources` durably. Θ rows appended since the
   * last commit become a new segment per layer; a layer whose segments are mostly dead (removed
   * rows) is rewritten into one segment, which is also how compaction physically deletes stale
   * values. The transaction itself: commit.ts.
   */
  commit(state: MemoryState, sources: SourceTable, extra: Record<string, unknown>, opts: { rewrite?: boolean } = {}): CommitInfo {
    if (this.closed) throw new Error('store is closed');
    const t0 = performance.now();
    this.adopt(state);
    const tx = prepareCommit(
      { dir: this.dir, prev: this.manifest, identity: this.opts.identity, valueFormat: this.opts.valueFormat, thetaFormat: this.opts.thetaFormat, refs: this.refs },
      state, sources, extra, opts,
    );
    publishManifest(this.dir, tx.manifest);
    // Committed. Now the live state may point at the new files.
    this.manifest = tx.manifest;
    tx.apply();
    const all = allSegments(tx.manifest);
    for (const e of all) if (!this.readers.has(e.id)) this.readers.set(e.id, new SegmentReader(path.join(this.dir, e.file), e));
    for (const [id, r] of this.readers) {
      if (!all.some((e) => e.id === id)) {
        r.close();
        this.readers.delete(id);
      }
    }
    collectGarbage(this.dir, namedFiles(tx.manifest));
    return { seq: tx.manifest.seq, bytesWritten: tx.bytesWritten, ms: performance.now() - t0 };
  }

  /** Reads and checks every stored value row (the lazy row checks, all at once); returns the segment count. */
  verify(): number {
    for (const r of this.readers.values()) r.verifyAll();
    return this.readers.size;
  }

  sizes(): StoreSizes {
    const m = this.manifest;
    if (!m) throw new Error('store has no commit yet');
    const segs = m.segments;
    const d = m.dims.hidden;
    const ltmValueBytes = segs.reduce((a, e) => a + e.rows * rowBytes(m.valueFormat, d), 0);
    const ltmKeyBytes = segs.reduce((a, e) => a + e.rows * m.dims.keyDim * 4, 0);
    const segBytes = segs.reduce((a, e) => a + e.size, 0);
    const thetaBytes = m.rowSegments.reduce((a, e) => a + e.size, 0);
    const stateBytes = m.state.size + m.ltm.size;
    const keyBytes = m.keySegments.reduce((a, e) => a + e.size, 0);
    const ltmRowsPerLayer = Array.from({ length: m.dims.layers }, (_, l) => segs.filter((e) => e.layer === l).reduce((a, e) => a + e.rows, 0));
    return {
      thetaBytes,
      cacheBytes: stateBytes + keyBytes,
      ltmValueBytes,
      ltmKeyBytes,
      ltmMetaBytes: segBytes - ltmValueBytes - ltmKeyBytes,
      sourcesBytes: m.sources.size,
      totalBytes: segBytes + thetaBytes + stateBytes + keyBytes + m.sources.size,
      ltmRowsPerLayer,
    };
  }

  /** Closes segment files and releases the write lock. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      for (const r of this.readers.values()) r.close();
    } finally {
      // A reader that fails to close must not keep the store locked for the next process.
      this.readers.clear();
      this.lock.release();
    }
  }
}

function asidePath(dir: string, why: 'broken' | 'rebuilt'): string {
  return `${dir}.${why}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
}
