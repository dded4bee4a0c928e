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
 * Why θ lives in row segments: a token's value never changes after the injection that wrote it;
 * it moves θ → cache → Θ and only its bookkeeping changes. So a commit writes only the rows
 * created since the last one (an editor save: K rows per layer per injection) instead of all of
 * θ and the cache (at mplus-8b, 2.7 GB and up to 4 GB more in bf16). Row segments of a layer are
 * rewritten into one when under a third of their rows is still referenced, which bounds them at
 * 3× the live θ + cache and amortises the rewrite to half a row per new row.
 *
 * Commit: write the new files → fsync each → write manifest.tmp → fsync → rename over
 * manifest.json → fsync the directory → delete files no longer named. A crash anywhere leaves
 * either the old or the new manifest, each naming only complete, fsynced files; leftovers are
 * removed at the next open. Values are stored in `valueFormat` (Θ) and `thetaFormat` (θ, cache);
 * at commit the live state is rounded the same way, so the session equals a reopen exactly.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SourceTable } from '../provenance';
import { Column, RowBuffer } from '../rows';
import { LayerMemory, LtmPolicyParams, MemoryDims, MemoryState } from '../state';
import { ValueFormat, rowBytes, roundTrip } from './codec';
import { StoreCorruptError, StoreError, StoreMismatchError } from './errors';
import { StoreLock } from './lock';
import { SegmentEntry, SegmentReader, writeSegment } from './segment';
import { SegmentedRows } from './segmentedRows';

export const STORE_FORMAT = 'mplus-store';
/** 2: θ and cache in row segments (1 kept them inline in the state file). */
export const STORE_VERSION = 2;
/** θ/cache reference = row segment id · ROW_SPAN + row (exact in a double up to id 2^27). */
const ROW_SPAN = 2 ** 26;
/** A layer's row segments are rewritten when fewer than 1/ROW_REWRITE of their rows are live. */
const ROW_REWRITE = 3;

export interface ModelIdentity {
  configHash: string;
  weightFingerprint: string;
}

export interface StoreOptions {
  identity: ModelIdentity;
  dims: MemoryDims;
  policy: LtmPolicyParams;
  /** Θ values on disk; default f32 (bf16 for a bf16 checkpoint is the caller's choice). */
  valueFormat?: ValueFormat;
  /** θ and cache values on disk: f32 or bf16 (q8 is for Θ only). */
  thetaFormat?: 'f32' | 'bf16';
}

interface FileRef {
  file: string;
  size: number;
  sha256: string;
}

interface Manifest {
  format: string;
  version: number;
  model: ModelIdentity;
  dims: MemoryDims;
  valueFormat: ValueFormat;
  thetaFormat: 'f32' | 'bf16';
  seq: number;
  committedAt: string;
  state: FileRef;
  /** Θ ages (minus ageShift), frequencies, sources and segment references; see commit(). */
  ltm: FileRef & { ageShift: number; baseFirstAge: number | null };
  sources: FileRef;
  segments: Array<SegmentEntry & { id: number }>;
  /** θ and cache values. Ids share one space with `segments`. */
  rowSegments: Array<SegmentEntry & { id: number }>;
  /** The dropped cache's retriever keys (segments of keys only). */
  keySegments: Array<SegmentEntry & { id: number }>;
  /** Caller's small extra data (e.g. the workspace's file list), committed with the rest. */
  extra: Record<string, unknown>;
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

const MANIFEST = 'manifest.json';
const EVER = 'manifest.json.ever';

const allSegments = (m: Manifest) => [...m.segments, ...m.rowSegments, ...m.keySegments];

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

function writeDurable(file: string, data: Buffer | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readChecked(dir: string, ref: FileRef): Buffer {
  const file = path.join(dir, ref.file);
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new StoreCorruptError(file, `file named by the manifest is missing (${(e as NodeJS.ErrnoException).code})`);
  }
  if (b.length !== ref.size) throw new StoreCorruptError(file, `is ${b.length} bytes, the manifest says ${ref.size} (truncated)`);
  if (sha256(b) !== ref.sha256) throw new StoreCorruptError(file, 'checksum does not match the manifest (corrupted)');
  return b;
}

// ---- the state file: a JSON directory of typed arrays ----

type Arr = { name: string; kind: 'f64' | 'f32' | 'i32' | 'bytes'; data: Float64Array | Float32Array | Int32Array | Buffer };

function packArrays(meta: object, arrays: Arr[]): Buffer {
  const dirEntries: Array<{ name: string; kind: string; offset: number; length: number }> = [];
  let off = 0;
  for (const a of arrays) {
    const len = a.data.byteLength;
    dirEntries.push({ name: a.name, kind: a.kind, offset: off, length: len });
    off += Math.ceil(len / 8) * 8;
  }
  const head = Buffer.from(JSON.stringify({ meta, arrays: dirEntries }));
  const headLen = Math.ceil((12 + head.length) / 8) * 8;
  const out = Buffer.alloc(headLen + off);
  out.write('MPSTATE1', 0, 'latin1');
  out.writeUInt32LE(head.length, 8);
  head.copy(out, 12);
  arrays.forEach((a, i) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).copy(out, headLen + dirEntries[i].offset));
  return out;
}

function unpackArrays(file: string, b: Buffer): { meta: Record<string, unknown>; get: (name: string) => Buffer } {
  if (b.toString('latin1', 0, 8) !== 'MPSTATE1') throw new StoreCorruptError(file, 'not a state file (bad magic)');
  const hl = b.readUInt32LE(8);
  const head = JSON.parse(b.toString('utf8', 12, 12 + hl)) as { meta: Record<string, unknown>; arrays: Array<{ name: string; offset: number; length: number }> };
  const base = Math.ceil((12 + hl) / 8) * 8;
  const byName = new Map(head.arrays.map((a) => [a.name, a]));
  return {
    meta: head.meta,
    get: (name) => {
      const a = byName.get(name);
      if (!a) throw new StoreCorruptError(file, `array ${name} is missing`);
      return b.subarray(base + a.offset, base + a.offset + a.length);
    },
  };
}

function f64(b: Buffer): Float64Array {
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function f32(b: Buffer): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Float64 view of an int32 array (source ids, segment refs: integers well inside 2^31). */
function i32(b: Buffer): Float64Array {
  return Float64Array.from(new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

const asI32 = (a: Float64Array) => Int32Array.from(a);

/**
 * One layer's plan for a family of write-once segments (Θ; θ/cache values; cache keys). `segIds`
 * holds, per table, the segment each row lies in (−1 = not on disk yet). Segments still referenced
 * are kept and the new rows written, unless fewer than 1/`ratio` of the stored rows are live (or a
 * rewrite is asked and any are dead): then every row is written anew into one segment.
 */
function planSegments(segIds: ArrayLike<number>[], old: Array<SegmentEntry & { id: number }>, rewriteAsked: boolean, ratio: number): { keep: Array<SegmentEntry & { id: number }>; positions: number[][] } {
  const live = new Map<number, number>();
  for (const t of segIds) for (let i = 0; i < t.length; i++) if (t[i] >= 0) live.set(t[i], (live.get(t[i]) ?? 0) + 1);
  const stored = old.reduce((a, e) => a + e.rows, 0);
  const liveStored = [...live.values()].reduce((a, b) => a + b, 0);
  const rewrite = (rewriteAsked && liveStored < stored) || liveStored * ratio < stored;
  const positions = segIds.map((t) => {
    const out: number[] = [];
    for (let i = 0; i < t.length; i++) if (rewrite || t[i] < 0) out.push(i);
    return out;
  });
  return { keep: rewrite ? [] : old.filter((e) => live.get(e.id)), positions };
}

/** Segment ids of packed θ/cache references (−1 stays −1). */
const segIdsOf = (refs: Float64Array) => refs.map((r) => (r < 0 ? -1 : Math.floor(r / ROW_SPAN)));

/** Points the written rows at segment `id`: tables in order, row k after the previous tables'. */
function assignRefs(id: number, refs: Float64Array[], positions: number[][]): void {
  const n = positions.reduce((a, p) => a + p.length, 0);
  if (n >= ROW_SPAN) throw new Error(`${n} rows in one layer exceed the store's row reference range`);
  let k = 0;
  refs.forEach((t, j) => positions[j].forEach((p) => (t[p] = id * ROW_SPAN + k++)));
}

/**
 * A data file of commit 2 or later in `dir` (names carry their commit's seq: `state-<seq>.bin`,
 * `seg-<layer>-<seq>-<id>.bin`, …), or null. Commit 1 is the creating commit of an empty store,
 * which a crash may leave without a manifest: those files alone are leftovers, not memory.
 */
function laterCommitFile(dir: string): string | null {
  for (const f of fs.readdirSync(dir)) {
    const m = /^(?:state|ltm|sources)-(\d+)\./.exec(f) ?? /^(?:seg|rows|keys)-\d+-(\d+)-/.exec(f);
    if (m && Number(m[1]) >= 2) return f;
  }
  return null;
}

export class MemoryStore {
  private manifest: Manifest | null = null;
  private readers = new Map<number, SegmentReader>();
  private closed = false;

  private constructor(readonly dir: string, private readonly lock: StoreLock, readonly opts: Required<StoreOptions>) {}

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
      const mf = path.join(dir, MANIFEST);
      if (!fs.existsSync(mf)) {
        // A directory that once held a commit (the marker is written after the first one) and
        // lost its manifest cannot be trusted: refuse rather than silently start over.
        if (fs.existsSync(path.join(dir, EVER))) throw new StoreCorruptError(mf, 'the manifest is missing but this directory held a committed store');
        // Both the manifest and its marker gone, yet files of a later commit than the creating
        // one are here: memory was built in this directory; starting empty would hide the loss.
        const later = laterCommitFile(dir);
        if (later) throw new StoreCorruptError(mf, `the manifest and ${EVER} are missing but this directory holds a committed store (${later} and others)`);
        store.collectGarbage(new Set());
        const state = initial();
        store.adopt(state);
        const sources = new SourceTable();
        state.isStale = sources.isStale;
        store.commit(state, sources, {});
        writeDurable(path.join(dir, EVER), 'this directory has held a committed M+ store\n');
        return { store, state, sources, extra: {}, created: true };
      }
      let m: Manifest;
      try {
        m = JSON.parse(fs.readFileSync(mf, 'utf8')) as Manifest;
      } catch {
        throw new StoreCorruptError(mf, 'manifest is not valid JSON');
      }
      if (m.format !== STORE_FORMAT) throw new StoreMismatchError(mf, `is not an M+ store manifest (format ${JSON.stringify(m.format)})`);
      if (m.version !== STORE_VERSION) throw new StoreMismatchError(mf, `store format version ${m.version}, this build reads version ${STORE_VERSION}`);
      if (m.model?.configHash !== opts.identity.configHash || m.model?.weightFingerprint !== opts.identity.weightFingerprint) {
        throw new StoreMismatchError(mf, `the store was built by another model (config ${m.model?.configHash?.slice(0, 12)}…, weights ${m.model?.weightFingerprint?.slice(0, 12)}…), not the one loaded`);
      }
      for (const k of Object.keys(opts.dims) as Array<keyof MemoryDims>) {
        if (m.dims[k] !== opts.dims[k]) throw new StoreMismatchError(mf, `store dims ${k}=${m.dims[k]} but the model has ${opts.dims[k]}`);
      }
      if (m.valueFormat !== opts.valueFormat || m.thetaFormat !== opts.thetaFormat) {
        // The formats in the manifest win: a store keeps the precision it was built with.
        opts.valueFormat = m.valueFormat;
        opts.thetaFormat = m.thetaFormat;
      }
      store.manifest = m;
      const { state, sources } = store.load(m);
      store.collectGarbage(store.namedFiles(m));
      return { store, state, sources, extra: m.extra ?? {}, created: false };
    } catch (e) {
      store.close();
      throw e;
    }
  }

  /**
   * The rebuild path for a store that cannot be opened (corrupt, other model or format): moves
   * the directory aside to `<dir>.broken-<time>` (kept for inspection, never deleted by us) and
   * returns that path; the next open starts a fresh store. Refuses while another process holds it.
   */
  static moveAside(dir: string): string | null {
    if (!fs.existsSync(dir)) return null;
    const lock = StoreLock.acquire(dir);
    lock.release();
    const aside = `${dir}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(dir, aside);
    return aside;
  }

  /** Value formats in force (from the manifest for an existing store). */
  get valueFormat(): ValueFormat {
    return this.opts.valueFormat;
  }

  get seq(): number {
    return this.manifest?.seq ?? 0;
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

  /** Puts a state's Θ values under this store (pending until the next commit). */
  adopt(state: MemoryState): void {
    for (const m of state.layers) {
      if (m.ltm instanceof SegmentedRows) continue;
      const rows = new SegmentedRows(state.dims.hidden, (id) => this.reader(id));
      if (m.ltm.count) rows.append(m.ltm.data);
      m.ltm = rows;
    }
  }

  private load(m: Manifest): { state: MemoryState; sources: SourceTable } {
    const { dims } = m;
    const d = dims.hidden;
    const s = dims.keyDim;
    // Open (and verify) every segment up front: keys are needed for retrieval anyway.
    for (const e of allSegments(m)) this.readers.set(e.id, new SegmentReader(path.join(this.dir, e.file), e));
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
      const g = (n: string) => st.get(`${l}.${n}`);
      const gl = (n: string) => lt.get(`${l}.${n}`);
      const seg = i32(gl('ltmSeg'));
      const row = i32(gl('ltmRow'));
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
      const stmRef = f64(g('stmRef'));
      const cacheRef = f64(g('cacheRef'));
      const cacheKeyRef = f64(g('cacheKeyRef'));
      layers.push({
        stm: RowBuffer.from(d, this.readRefs(stmRef, rowSegs, d, stFile, `layer ${l} θ`)),
        stmAges: Column.from(f64(g('stmAges'))),
        stmSrc: Column.from(i32(g('stmSrc'))),
        ltm,
        ltmKeys: RowBuffer.from(s, keys),
        ltmAges: Column.from(f64(gl('ltmAges')).map((a) => a + m.ltm.ageShift)),
        ltmRf: Column.from(f32(gl('ltmRf'))),
        ltmSrc: Column.from(i32(gl('ltmSrc'))),
        cache: RowBuffer.from(d, this.readRefs(cacheRef, rowSegs, d, stFile, `layer ${l} cache`)),
        cacheKeys: RowBuffer.from(s, this.readKeyRefs(cacheKeyRef, keySegs, s, stFile, `layer ${l} cache keys`)),
        cacheAges: Column.from(f64(g('cacheAges'))),
        cacheSrc: Column.from(i32(g('cacheSrc'))),
        stmRef: Column.from(stmRef),
        cacheRef: Column.from(cacheRef),
        cacheKeyRef: Column.from(cacheKeyRef),
      });
      if (layers[l].stm.count !== dims.stmSize) throw new StoreCorruptError(stFile, `layer ${l} θ has ${layers[l].stm.count} rows, expected ${dims.stmSize}`);
    }
    const state = new MemoryState(dims, this.opts.policy, layers);
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

  /** θ or cache values by reference, read (checksummed) the way Θ rows are gathered. */
  private readRefs(refs: Float64Array, layerSegs: Set<number>, d: number, file: string, what: string): Float32Array {
    const t = new SegmentedRows(d, (id) => this.reader(id));
    ({ seg: t.refSeg, row: t.refRow } = this.resolveRefs(refs, layerSegs, file, what));
    return t.data;
  }

  /** The cache's keys by reference, from key segments (their keys are in RAM, verified at open). */
  private readKeyRefs(refs: Float64Array, layerSegs: Set<number>, s: number, file: string, what: string): Float32Array {
    const { seg, row } = this.resolveRefs(refs, layerSegs, file, what);
    const out = new Float32Array(refs.length * s);
    seg.forEach((id, i) => out.set(this.readers.get(id)!.keys.subarray(row[i] * s, (row[i] + 1) * s), i * s));
    return out;
  }

  /**
   * Commits `state` and `sources` durably. Θ rows appended since the last commit become a new
   * segment per layer; a layer whose segments are mostly dead (removed rows) is rewritten into
   * one segment, which is also how compaction physically deletes stale values.
   */
  commit(state: MemoryState, sources: SourceTable, extra: Record<string, unknown>, opts: { rewrite?: boolean } = {}): CommitInfo {
    if (this.closed) throw new Error('store is closed');
    const t0 = performance.now();
    const seq = (this.manifest?.seq ?? 0) + 1;
    const { dims } = state;
    const d = dims.hidden;
    const s = dims.keyDim;
    let bytes = 0;
    const oldSegs = this.manifest?.segments ?? [];
    const segments: Manifest['segments'] = [];
    let nextSegId = Math.max(0, ...(this.manifest ? allSegments(this.manifest) : []).map((e) => e.id + 1));
    const plans: Array<{ rows: SegmentedRows; layer: number; positions: number[]; id: number }> = [];
    const rowsOf = (l: number) => state.layers[l].ltm as SegmentedRows;
    this.adopt(state);
    for (let l = 0; l < dims.layers; l++) {
      const rows = rowsOf(l);
      // Rewrite a layer when asked (compaction) or when most of its stored rows are dead.
      const plan = planSegments([rows.refSeg], oldSegs.filter((e) => e.layer === l), opts.rewrite === true, 2);
      segments.push(...plan.keep);
      const [positions] = plan.positions;
      if (!positions.length) continue;
      const id = nextSegId++;
      const name = `seg-${l}-${seq}-${id}.bin`;
      const entry = writeSegment(path.join(this.dir, name), name,
        { layer: l, rows: positions.length, width: d, keyWidth: s, format: this.opts.valueFormat },
        rows.gather(positions), state.layers[l].ltmKeys.gather(positions));
      bytes += entry.size;
      segments.push({ ...entry, id });
      plans.push({ rows, layer: l, positions, id });
    }
    // θ and cache values, then the cache's keys: what is not yet on disk (all of a layer's when
    // its segments are mostly dead) becomes one write-once segment per layer. Values are rounded
    // to the stored precision first so the session equals a reopen.
    const tf = this.opts.thetaFormat;
    const rowSegments: Manifest['rowSegments'] = [];
    const keySegments: Manifest['keySegments'] = [];
    const newRefs: Array<{ stm: Float64Array; cache: Float64Array; cacheKey: Float64Array }> = [];
    for (let l = 0; l < dims.layers; l++) {
      const m = state.layers[l];
      const r = { stm: Float64Array.from(m.stmRef.data), cache: Float64Array.from(m.cacheRef.data), cacheKey: Float64Array.from(m.cacheKeyRef.data) };
      newRefs.push(r);
      const vals = planSegments([segIdsOf(r.stm), segIdsOf(r.cache)], (this.manifest?.rowSegments ?? []).filter((e) => e.layer === l), opts.rewrite === true, ROW_REWRITE);
      rowSegments.push(...vals.keep);
      const [stmPos, cachePos] = vals.positions;
      const n = stmPos.length + cachePos.length;
      if (n) {
        const values = new Float32Array(n * d);
        values.set(m.stm.gather(stmPos), 0);
        values.set(m.cache.gather(cachePos), stmPos.length * d);
        const rounded = tf === 'f32' ? values : roundTrip(tf, values, d);
        stmPos.forEach((p, k) => m.stm.row(p).set(rounded.subarray(k * d, (k + 1) * d)));
        cachePos.forEach((p, k) => m.cache.row(p).set(rounded.subarray((stmPos.length + k) * d, (stmPos.length + k + 1) * d)));
        const id = nextSegId++;
        const name = `rows-${l}-${seq}-${id}.bin`;
        const entry = writeSegment(path.join(this.dir, name), name, { layer: l, rows: n, width: d, keyWidth: 0, format: tf }, rounded, new Float32Array(0));
        bytes += entry.size;
        rowSegments.push({ ...entry, id });
        assignRefs(id, [r.stm, r.cache], vals.positions);
      }
      const keys = planSegments([segIdsOf(r.cacheKey)], (this.manifest?.keySegments ?? []).filter((e) => e.layer === l), opts.rewrite === true, ROW_REWRITE);
      keySegments.push(...keys.keep);
      const [keyPos] = keys.positions;
      if (keyPos.length) {
        const id = nextSegId++;
        const name = `keys-${l}-${seq}-${id}.bin`;
        const entry = writeSegment(path.join(this.dir, name), name, { layer: l, rows: keyPos.length, width: 0, keyWidth: s, format: 'f32' }, new Float32Array(0), m.cacheKeys.gather(keyPos));
        bytes += entry.size;
        keySegments.push({ ...entry, id });
        assignRefs(id, [r.cacheKey], keys.positions);
      }
    }
    const arrays: Arr[] = [];
    for (let l = 0; l < dims.layers; l++) {
      const m = state.layers[l];
      arrays.push(
        { name: `${l}.stmRef`, kind: 'f64', data: newRefs[l].stm },
        { name: `${l}.stmAges`, kind: 'f64', data: m.stmAges.data },
        { name: `${l}.stmSrc`, kind: 'i32', data: asI32(m.stmSrc.data) },
        { name: `${l}.cacheRef`, kind: 'f64', data: newRefs[l].cache },
        { name: `${l}.cacheKeyRef`, kind: 'f64', data: newRefs[l].cacheKey },
        { name: `${l}.cacheAges`, kind: 'f64', data: m.cacheAges.data },
        { name: `${l}.cacheSrc`, kind: 'i32', data: asI32(m.cacheSrc.data) },
      );
    }
    // Θ bookkeeping in its own file. Between merges an injection only adds K to every Θ age, so
    // ages are stored relative to `ageShift`: when nothing else changed, the new file would equal
    // the committed one byte for byte and that file is named again instead of written.
    const prev = this.manifest?.ltm;
    const firstAge = state.layers.find((m) => m.ltmAges.count > 0)?.ltmAges.data[0];
    const ageShift = prev && prev.baseFirstAge !== null && firstAge !== undefined ? firstAge - prev.baseFirstAge : 0;
    const ltmArrays: Arr[] = [];
    // Segment references as they will be after this commit (the live table switches only after
    // the manifest rename, so a failed commit leaves the session reading what it read before).
    for (let l = 0; l < dims.layers; l++) {
      const rows = rowsOf(l);
      const seg = Float64Array.from(rows.refSeg);
      const row = Float64Array.from(rows.refRow);
      for (const p of plans) {
        if (p.layer !== l) continue;
        p.positions.forEach((pos, k) => {
          seg[pos] = p.id;
          row[pos] = k;
        });
      }
      const m = state.layers[l];
      ltmArrays.push(
        { name: `${l}.ltmAges`, kind: 'f64', data: m.ltmAges.data.map((a) => a - ageShift) },
        // recall frequencies are float32 values already (state.ts rounds every step)
        { name: `${l}.ltmRf`, kind: 'f32', data: Float32Array.from(m.ltmRf.data) },
        { name: `${l}.ltmSrc`, kind: 'i32', data: asI32(m.ltmSrc.data) },
        { name: `${l}.ltmSeg`, kind: 'i32', data: asI32(seg) },
        { name: `${l}.ltmRow`, kind: 'i32', data: asI32(row) },
      );
    }
    const ltmBuf = packArrays({}, ltmArrays);
    const ltmSha = sha256(ltmBuf);
    let ltm: Manifest['ltm'];
    if (prev && prev.sha256 === ltmSha && prev.size === ltmBuf.length) {
      ltm = { ...prev, ageShift };
    } else {
      const name = `ltm-${seq}.bin`;
      writeDurable(path.join(this.dir, name), ltmBuf);
      bytes += ltmBuf.length;
      ltm = { file: name, size: ltmBuf.length, sha256: ltmSha, ageShift, baseFirstAge: firstAge === undefined ? null : firstAge - ageShift };
    }
    const stBuf = packArrays({ updateStep: state.updateStep }, arrays);
    const stName = `state-${seq}.bin`;
    writeDurable(path.join(this.dir, stName), stBuf);
    const srcBuf = Buffer.from(JSON.stringify(sources.toJSON()));
    const srcName = `sources-${seq}.json`;
    writeDurable(path.join(this.dir, srcName), srcBuf);
    bytes += stBuf.length + srcBuf.length;
    const manifest: Manifest = {
      format: STORE_FORMAT, version: STORE_VERSION, model: this.opts.identity, dims, valueFormat: this.opts.valueFormat,
      thetaFormat: tf, seq, committedAt: new Date().toISOString(),
      state: { file: stName, size: stBuf.length, sha256: sha256(stBuf) },
      ltm,
      sources: { file: srcName, size: srcBuf.length, sha256: sha256(srcBuf) },
      segments, rowSegments, keySegments, extra,
    };
    const tmp = path.join(this.dir, `${MANIFEST}.tmp`);
    writeDurable(tmp, JSON.stringify(manifest, null, 1));
    fs.renameSync(tmp, path.join(this.dir, MANIFEST));
    fsyncDir(this.dir);
    // Committed. Now the live table may point at the new segments.
    this.manifest = manifest;
    for (const p of plans) p.rows.committed(p.positions, p.id);
    newRefs.forEach((r, l) => {
      state.layers[l].stmRef = Column.from(r.stm);
      state.layers[l].cacheRef = Column.from(r.cache);
      state.layers[l].cacheKeyRef = Column.from(r.cacheKey);
    });
    const all = allSegments(manifest);
    for (const e of all) if (!this.readers.has(e.id)) this.readers.set(e.id, new SegmentReader(path.join(this.dir, e.file), e));
    for (const [id, r] of this.readers) {
      if (!all.some((e) => e.id === id)) {
        r.close();
        this.readers.delete(id);
      }
    }
    this.collectGarbage(this.namedFiles(manifest));
    return { seq, bytesWritten: bytes, ms: performance.now() - t0 };
  }

  private namedFiles(m: Manifest): Set<string> {
    return new Set([MANIFEST, 'lock', EVER, m.state.file, m.ltm.file, m.sources.file, ...allSegments(m).map((e) => e.file)]);
  }

  /** Deletes files of uncommitted or superseded commits. */
  private collectGarbage(keep: Set<string>): void {
    for (const f of fs.readdirSync(this.dir)) {
      if (keep.has(f) || f === 'lock' || f === EVER || f.startsWith('lock.')) continue;
      if (/^(state-|ltm-|sources-|seg-|rows-|keys-|manifest\.json\.tmp)/.test(f)) fs.rmSync(path.join(this.dir, f), { force: true });
    }
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
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
    this.lock.release();
  }
}
