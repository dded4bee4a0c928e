/**
 * One commit as a transaction: prepare() writes every new file of commit `seq` (fsynced) and
 * returns the manifest that names them, without touching what the session reads; the store then
 * publishes the manifest (atomic rename) and only after that runs apply(), which points the live
 * Θ table and the row references at the new files. A failure before the rename leaves the session
 * and the disk on the previous commit (the unnamed files are collected at the next open).
 *
 * What is written (why: store.ts):
 *   seg-<l>-<seq>-<id>   Θ rows not yet on disk (all of a layer's when it is rewritten)
 *   rows-<l>-<seq>-<id>  θ and cache values not yet on disk, rounded to thetaFormat first
 *   keys-<l>-<seq>-<id>  cache keys not yet on disk
 *   state-<seq>.bin      θ/cache references, ages, sources; update step (stateFile.ts)
 *   ltm-<seq>.bin        Θ bookkeeping — or the previous one named again when only ages moved
 *   sources-<seq>.json   provenance
 */
import * as path from 'path';
import { SourceTable } from '../provenance';
import { MemoryState } from '../state';
import { ValueFormat } from './codec';
import { Manifest, ModelIdentity, STORE_FORMAT, STORE_VERSION, SegmentRef, allSegments, sha256, writeDurable } from './manifest';
import { RowRefs, assignRefs, segIdsOf } from './rowRefs';
import { writeSegment } from './segment';
import { SegmentedRows } from './segmentedRows';
import { NamedArray, asI32, packArrays } from './stateFile';

/** A layer's row segments are rewritten when fewer than 1/ROW_REWRITE of their rows are live. */
const ROW_REWRITE = 3;

export interface CommitContext {
  dir: string;
  prev: Manifest | null;
  identity: ModelIdentity;
  valueFormat: ValueFormat;
  thetaFormat: 'f32' | 'bf16';
  refs: RowRefs;
}

export interface PreparedCommit {
  manifest: Manifest;
  bytesWritten: number;
  /** Points the live state at the files just committed; call only once the manifest is published. */
  apply(): void;
}

/**
 * One layer's plan for a family of write-once segments (Θ; θ/cache values; cache keys). `segIds`
 * holds, per table, the segment each row lies in (−1 = not on disk yet). Segments still referenced
 * are kept and the new rows written, unless fewer than 1/`ratio` of the stored rows are live (or a
 * rewrite is asked and any are dead): then every row is written anew into one segment.
 */
export function planSegments(segIds: ArrayLike<number>[], old: SegmentRef[], rewriteAsked: boolean, ratio: number): { keep: SegmentRef[]; positions: number[][] } {
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

export function prepareCommit(
  ctx: CommitContext, state: MemoryState, sources: SourceTable, extra: Record<string, unknown>, opts: { rewrite?: boolean },
): PreparedCommit {
  const { dir, prev } = ctx;
  const seq = (prev?.seq ?? 0) + 1;
  const { dims } = state;
  const d = dims.hidden;
  const s = dims.keyDim;
  const rewrite = opts.rewrite === true;
  let bytes = 0;
  let nextSegId = Math.max(0, ...(prev ? allSegments(prev) : []).map((e) => e.id + 1));
  const write = (prefix: string, l: number, header: { rows: number; width: number; keyWidth: number; format: ValueFormat }, values: Float32Array, keys: Float32Array): SegmentRef => {
    const id = nextSegId++;
    const name = `${prefix}-${l}-${seq}-${id}.bin`;
    const entry = writeSegment(path.join(dir, name), name, { layer: l, ...header }, values, keys);
    bytes += entry.size;
    return { ...entry, id };
  };
  const ltmRows = (l: number) => state.layers[l].ltm as SegmentedRows;

  // Θ: rows appended since the last commit become a new segment per layer; a layer is rewritten
  // into one segment when asked (compaction) or when most of its stored rows are dead.
  const segments: SegmentRef[] = [];
  const ltmWrites: Array<{ layer: number; positions: number[]; id: number }> = [];
  for (let l = 0; l < dims.layers; l++) {
    const rows = ltmRows(l);
    const plan = planSegments([rows.refSeg], (prev?.segments ?? []).filter((e) => e.layer === l), rewrite, 2);
    segments.push(...plan.keep);
    const [positions] = plan.positions;
    if (!positions.length) continue;
    const e = write('seg', l, { rows: positions.length, width: d, keyWidth: s, format: ctx.valueFormat }, rows.gather(positions), state.layers[l].ltmKeys.gather(positions));
    segments.push(e);
    ltmWrites.push({ layer: l, positions, id: e.id });
  }

  // θ and cache values, then the cache's keys: what is not yet on disk (all of a layer's when
  // its segments are mostly dead) becomes one write-once segment per layer. The store's tables
  // hold θ and the cache in the stored precision already (MemoryStore.adopt), so what is written
  // is exactly what the session reads: the session equals a reopen.
  const tf = ctx.thetaFormat;
  const rowSegments: SegmentRef[] = [];
  const keySegments: SegmentRef[] = [];
  const newRefs: Array<{ stm: Float64Array; cache: Float64Array; cacheKey: Float64Array }> = [];
  for (let l = 0; l < dims.layers; l++) {
    const m = state.layers[l];
    if (m.stm.format !== tf || m.cache.format !== tf) throw new Error(`commit: layer ${l} holds ${m.stm.format} θ / ${m.cache.format} cache rows, the store ${tf}`);
    const r = { stm: ctx.refs.valueRefs(l, m.stmId.data), cache: ctx.refs.valueRefs(l, m.cacheId.data), cacheKey: ctx.refs.keyRefs(l, m.cacheId.data) };
    newRefs.push(r);
    const vals = planSegments([segIdsOf(r.stm), segIdsOf(r.cache)], (prev?.rowSegments ?? []).filter((e) => e.layer === l), rewrite, ROW_REWRITE);
    rowSegments.push(...vals.keep);
    const [stmPos, cachePos] = vals.positions;
    const n = stmPos.length + cachePos.length;
    if (n) {
      const values = new Float32Array(n * d);
      values.set(m.stm.gather(stmPos), 0);
      values.set(m.cache.gather(cachePos), stmPos.length * d);
      const e = write('rows', l, { rows: n, width: d, keyWidth: 0, format: tf }, values, new Float32Array(0));
      rowSegments.push(e);
      assignRefs(e.id, [r.stm, r.cache], vals.positions);
    }
    const keys = planSegments([segIdsOf(r.cacheKey)], (prev?.keySegments ?? []).filter((e) => e.layer === l), rewrite, ROW_REWRITE);
    keySegments.push(...keys.keep);
    const [keyPos] = keys.positions;
    if (keyPos.length) {
      const e = write('keys', l, { rows: keyPos.length, width: 0, keyWidth: s, format: 'f32' }, new Float32Array(0), m.cacheKeys.gather(keyPos));
      keySegments.push(e);
      assignRefs(e.id, [r.cacheKey], keys.positions);
    }
  }

  const arrays: NamedArray[] = [];
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
  const prevLtm = prev?.ltm;
  const firstAge = state.layers.find((m) => m.ltmAges.count > 0)?.ltmAges.data[0];
  const ageShift = prevLtm && prevLtm.baseFirstAge !== null && firstAge !== undefined ? firstAge - prevLtm.baseFirstAge : 0;
  const ltmArrays: NamedArray[] = [];
  // Segment references as they will be after this commit (the live table switches only in
  // apply(), so a failed commit leaves the session reading what it read before).
  for (let l = 0; l < dims.layers; l++) {
    const rows = ltmRows(l);
    const seg = Float64Array.from(rows.refSeg);
    const row = Float64Array.from(rows.refRow);
    for (const w of ltmWrites) {
      if (w.layer !== l) continue;
      w.positions.forEach((pos, k) => {
        seg[pos] = w.id;
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
  if (prevLtm && prevLtm.sha256 === ltmSha && prevLtm.size === ltmBuf.length) {
    ltm = { ...prevLtm, ageShift };
  } else {
    const name = `ltm-${seq}.bin`;
    writeDurable(path.join(dir, name), ltmBuf);
    bytes += ltmBuf.length;
    ltm = { file: name, size: ltmBuf.length, sha256: ltmSha, ageShift, baseFirstAge: firstAge === undefined ? null : firstAge - ageShift };
  }
  const stBuf = packArrays({ updateStep: state.updateStep }, arrays);
  const stName = `state-${seq}.bin`;
  writeDurable(path.join(dir, stName), stBuf);
  const srcBuf = Buffer.from(JSON.stringify(sources.toJSON()));
  const srcName = `sources-${seq}.json`;
  writeDurable(path.join(dir, srcName), srcBuf);
  bytes += stBuf.length + srcBuf.length;
  const manifest: Manifest = {
    format: STORE_FORMAT, version: STORE_VERSION, model: ctx.identity, dims, valueFormat: ctx.valueFormat,
    thetaFormat: tf, seq, committedAt: new Date().toISOString(),
    state: { file: stName, size: stBuf.length, sha256: sha256(stBuf) },
    ltm,
    sources: { file: srcName, size: srcBuf.length, sha256: sha256(srcBuf) },
    segments, rowSegments, keySegments, extra,
  };
  return {
    manifest,
    bytesWritten: bytes,
    apply: () => {
      for (const w of ltmWrites) ltmRows(w.layer).committed(w.positions, w.id);
      newRefs.forEach((r, l) => {
        const m = state.layers[l];
        ctx.refs.reset(l, { ids: m.stmId.data, refs: r.stm }, { ids: m.cacheId.data, refs: r.cache, keyRefs: r.cacheKey });
        // θ and the cache are read from disk from now on; their pending copies leave RAM.
        (m.stm as SegmentedRows).pointAt(r.stm);
        (m.cache as SegmentedRows).pointAt(r.cache);
      });
    },
  };
}
