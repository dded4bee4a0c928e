/**
 * `mplus bench store`: the store at mplus-8b row size (d = 4096, key width 256) for one layer of
 * `rows` Θ tokens (default 150,000, the paper's per-layer scale):
 *   commit throughput (MB/s, fsync included), open time (manifest, state, all keys verified),
 *   and the time to gather R = 2,560 random rows (what one question reads per layer), first
 *   with the store's files dropped from the page cache (GNU dd; else noted), then warm.
 *   Gathers by density and pattern, per read window: gather.ts (`--sweep`).
 * Values are stored in bf16 (mplus-8b's dtype) unless --format says otherwise.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { randomDrop } from '../../src/memory/drop';
import { Rng } from '../../src/util/rng';
import { SourceTable } from '../../src/memory/provenance';
import { MemoryState } from '../../src/memory/state';
import { ValueFormat } from '../../src/memory/store/codec';
import { MemoryStore } from '../../src/memory/store/store';
import { SegmentedRows } from '../../src/memory/store/segmentedRows';
import { dropFromPageCache } from './pageCache';

export interface StoreBenchOptions {
  rows?: number;
  width?: number;
  keyWidth?: number;
  gather?: number;
  format?: ValueFormat;
  dir?: string;
}

export interface StoreBenchResult {
  rows: number;
  width: number;
  format: ValueFormat;
  storeBytes: number;
  commitMBps: number;
  commitSeconds: number;
  openMs: number;
  gatherRows: number;
  gatherFirstMs: number;
  gatherWarmMs: number;
  /** read() calls of the first gather. */
  gatherReads: number;
  pageCacheDropped: boolean;
  peakRssMiB: number;
}

export async function benchStore(o: StoreBenchOptions = {}): Promise<StoreBenchResult> {
  const rows = o.rows ?? 150_000;
  const d = o.width ?? 4096;
  const s = o.keyWidth ?? 256;
  const R = o.gather ?? 2560;
  const format = o.format ?? 'bf16';
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-store-'));
  const dims = { layers: 1, hidden: d, keyDim: s, tokensPerInjection: 8, stmSize: 16, retrieveSize: R };
  const policy = { updateLtmFrequency: 1, decayFrequency: 1, initialRf: 10 };
  const identity = { configHash: 'bench', weightFingerprint: 'bench' };
  const rng = new Rng(1);
  const initial = () => MemoryState.initial(dims, policy, Float32Array.from({ length: 16 * d }, () => rng.float()), null);
  let peak = process.memoryUsage().rss;
  try {
    const { store, state } = MemoryStore.open(dir, { identity, dims, policy, valueFormat: format, thetaFormat: 'f32' }, initial);
    const sources = new SourceTable();
    const m = state.layers[0];
    const batch = 10_000;
    let writeSeconds = 0;
    let written = 0;
    for (let done = 0; done < rows; done += batch) {
      const n = Math.min(batch, rows - done);
      const vals = new Float32Array(n * d);
      for (let i = 0; i < vals.length; i++) vals[i] = rng.float() * 2 - 1;
      m.ltm.append(vals);
      m.ltmKeys.append(Float32Array.from({ length: n * s }, () => rng.float()));
      m.ltmAges.append(new Float64Array(n));
      m.ltmRf.append(new Float64Array(n).fill(10));
      m.ltmSrc.append(new Float64Array(n).fill(-1));
      const t = performance.now();
      const c = store.commit(state, sources, {});
      writeSeconds += (performance.now() - t) / 1000;
      written += c.bytesWritten;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const storeBytes = store.sizes().totalBytes;
    store.close();
    const dropped = dropFromPageCache(dir);
    const t0 = performance.now();
    const reopened = MemoryStore.open(dir, { identity, dims, policy }, initial);
    const openMs = performance.now() - t0;
    const idx = Array.from({ length: R }, () => rng.int(rows));
    const ltm = reopened.state.layers[0].ltm as SegmentedRows;
    const reads = () => [...new Set(ltm.refSeg)].reduce((a, id) => a + ltm.lookup(id).valueReads, 0);
    const reads0 = reads();
    const t1 = performance.now();
    ltm.gather(idx);
    const gatherFirstMs = performance.now() - t1;
    const gatherReads = reads() - reads0;
    const idx2 = Array.from({ length: R }, () => rng.int(rows));
    ltm.gather(idx2); // warm the file cache for these rows
    const t2 = performance.now();
    ltm.gather(idx2);
    const gatherWarmMs = performance.now() - t2;
    peak = Math.max(peak, process.memoryUsage().rss);
    reopened.store.close();
    return {
      rows, width: d, format, storeBytes, commitMBps: written / 1e6 / writeSeconds, commitSeconds: writeSeconds, openMs,
      gatherRows: R, gatherFirstMs, gatherWarmMs, gatherReads, pageCacheDropped: dropped, peakRssMiB: peak / 2 ** 20,
    };
  } finally {
    if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface SaveCommitBenchResult {
  layers: number;
  stmRows: number;
  width: number;
  /** The first commit: the checkpoint's whole θ. */
  firstCommitBytes: number;
  firstCommitMs: number;
  /** A commit after `injections` injections (an editor save), median of `trials`. */
  injections: number;
  saveCommitBytes: number;
  saveCommitMs: number;
  /** Θ rows per layer present before the saves (their bookkeeping is not rewritten by them). */
  ltmRows: number;
}

/**
 * The commit an editor save causes: θ at mplus-8b shape (N = 10,240, K = 256, d = 4,096, bf16) for
 * `layers` layers, then `injections` injections and a commit, repeated. Only the rows those
 * injections created are written (plus the state file); the first commit writes all of θ.
 */
export async function benchSaveCommit(o: { layers?: number; injections?: number; trials?: number; ltmRows?: number; dir?: string } = {}): Promise<SaveCommitBenchResult> {
  const layers = o.layers ?? 1;
  const injections = o.injections ?? 1;
  const trials = o.trials ?? 5;
  const M = o.ltmRows ?? 0;
  const d = 4096;
  const s = 256;
  const K = 256;
  const N = 10_240;
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-save-'));
  const dims = { layers, hidden: d, keyDim: s, tokensPerInjection: K, stmSize: N, retrieveSize: 2560 };
  const policy = { updateLtmFrequency: 60, decayFrequency: 1, initialRf: 10 };
  const identity = { configHash: 'bench', weightFingerprint: 'bench' };
  const rng = new Rng(2);
  const ltm = M ? Array.from({ length: layers }, () => ({
    values: Float32Array.from({ length: M * d }, () => rng.float() * 2 - 1),
    keys: Float32Array.from({ length: M * s }, () => rng.float()),
    rf: new Float32Array(M).fill(5),
    ages: Float32Array.from({ length: M }, (_, i) => M - i),
  })) : null;
  const theta = MemoryState.initial(dims, policy, Float32Array.from({ length: layers * N * d }, () => rng.float() * 2 - 1), ltm);
  try {
    const t0 = performance.now();
    const { store, state } = MemoryStore.open(dir, { identity, dims, policy, valueFormat: 'bf16', thetaFormat: 'bf16' }, () => theta);
    const firstCommitMs = performance.now() - t0;
    const firstCommitBytes = store.sizes().totalBytes;
    const sources = new SourceTable();
    const times: number[] = [];
    let bytes = 0;
    for (let t = 0; t < trials; t++) {
      for (let i = 0; i < injections; i++) {
        const source = sources.add({ file: 'src/a.ts', startLine: 1, endLine: 9, startByte: 0, endByte: 99, hash: `h${t}-${i}` });
        state.applyInjection({
          drop: Array.from({ length: layers }, () => randomDrop(rng, N, K)),
          delta: Array.from({ length: layers }, () => Float32Array.from({ length: K * d }, () => rng.float() * 2 - 1)),
          droppedKeys: Array.from({ length: layers }, () => Float32Array.from({ length: K * s }, () => rng.float())),
          source,
        });
      }
      const c = store.commit(state, sources, {});
      times.push(c.ms);
      bytes = c.bytesWritten;
    }
    store.close();
    times.sort((a, b) => a - b);
    return { layers, stmRows: N, width: d, firstCommitBytes, firstCommitMs, injections, saveCommitBytes: bytes, saveCommitMs: times[times.length >> 1], ltmRows: M };
  } finally {
    if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}
