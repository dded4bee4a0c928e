/**
 * `mplus bench store --sweep`: how a question's Θ gather reads its rows, by the density and the
 * shape of what is retrieved. One layer of `rows` Θ rows at mplus-8b row size (d = 4096, keys 256,
 * bf16 values), in segments of 10,000 rows (what 10k-row commits write); R = 2,560 rows gathered:
 *   random     R distinct rows drawn uniformly (retrieval with no locality),
 *   clustered  runs of 1–64 consecutive rows at random starts (the tokens of a few retrieved code
 *              spans, which an injection stores side by side).
 * Each index set is gathered under each read window (row by row = one read per row, as before
 * windows; then wider gaps), first from a dropped page cache, then again warm (best of 3, wall and
 * CPU time). Index sets change between repetitions, windows are interleaved within one, and the
 * medians over repetitions are reported.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { Rng } from '../../src/util/rng';
import { ValueFormat, decodeRow, rowBytes } from '../../src/memory/store/codec';
import { READ_WINDOW, ReadWindow, SegmentEntry, SegmentReader, writeSegment } from '../../src/memory/store/segment';
import { SegmentedRows } from '../../src/memory/store/segmentedRows';
import { dropFromPageCache } from './pageCache';

export type GatherPattern = 'random' | 'clustered';

export interface GatherSweepOptions {
  /** Θ rows per layer; each is a prefix of the largest (default 30,000 and 150,000). */
  layers?: number[];
  gather?: number;
  /** Gap bounds to try, bytes; row by row (no window) is always measured first. */
  gaps?: number[];
  maxBytes?: number;
  reps?: number;
  format?: ValueFormat;
  dir?: string;
}

export interface GatherSweepRow {
  layerRows: number;
  pattern: GatherPattern;
  /** null: row by row (one read per row: the reads before windows). */
  gapBytes: number | null;
  maxBytes: number;
  coldMs: number;
  /** Warm: best of 3 per index set, wall clock and this process's CPU time. */
  warmMs: number;
  warmCpuMs: number;
  /** read() calls and bytes read per gather (medians). */
  reads: number;
  readMiB: number;
}

/** Where a warm gather's time goes, ms of CPU for R random rows (best of 3). */
export interface WarmBreakdown {
  /** One read per row from the page cache (syscall + copy). */
  readsMs: number;
  crcMs: number;
  decodeMs: number;
  /** Allocating and first touching the R × d float32 result (fresh memory page-faults). */
  outputMs: number;
}

export interface GatherSweepResult {
  width: number;
  warm: WarmBreakdown;
  format: ValueFormat;
  gatherRows: number;
  segmentRows: number;
  pageCacheDropped: boolean;
  rows: GatherSweepRow[];
}

const SEGMENT_ROWS = 10_000;

/** R distinct rows of 0..M−1 in the given pattern. */
export function gatherSet(rng: Rng, M: number, R: number, pattern: GatherPattern): number[] {
  const set = new Set<number>();
  while (set.size < Math.min(R, M)) {
    const start = rng.int(M);
    const run = pattern === 'random' ? 1 : 1 + rng.int(64);
    for (let r = start; r < Math.min(M, start + run) && set.size < R; r++) set.add(r);
  }
  return [...set];
}

/** This process's CPU ms for f, best of 3. */
function cpuMs(f: () => void): number {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return best;
}

/** The parts of a warm gather of `rows` (of one segment), each timed alone. */
function warmBreakdown(reader: SegmentReader, rows: number[], format: ValueFormat, d: number): WarmBreakdown {
  const file = reader.path;
  const rb = rowBytes(format, d);
  const valuesAt = fs.statSync(file).size - reader.header.rows * (rb + reader.header.keyWidth * 4 + 4);
  const fd = fs.openSync(file, 'r');
  try {
    const bufs = rows.map(() => Buffer.alloc(rb));
    const dst = new Float32Array(rows.length * d);
    reader.readRows(rows, dst, rows.map((_, i) => i)); // page cache warm
    let x = 0;
    return {
      readsMs: cpuMs(() => rows.forEach((r, i) => fs.readSync(fd, bufs[i], 0, rb, valuesAt + r * rb))),
      crcMs: cpuMs(() => bufs.forEach((b) => (x ^= zlib.crc32(b)))),
      decodeMs: cpuMs(() => bufs.forEach((b, i) => decodeRow(format, b, 0, d, dst, i * d))),
      outputMs: cpuMs(() => {
        const out = new Float32Array(rows.length * d);
        for (let i = 0; i < out.length; i += 1024) out[i] = x; // one write per 4 KiB page
      }),
    };
  } finally {
    fs.closeSync(fd);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function benchGatherSweep(o: GatherSweepOptions = {}): Promise<GatherSweepResult> {
  const layers = o.layers ?? [30_000, 150_000];
  const R = o.gather ?? 2560;
  const gaps = o.gaps ?? [0, 16 << 10, 64 << 10];
  const maxBytes = o.maxBytes ?? READ_WINDOW.maxBytes;
  const reps = o.reps ?? 3;
  const format = o.format ?? 'bf16';
  const d = 4096;
  const s = 256;
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-gather-'));
  const rng = new Rng(3);
  const readers: SegmentReader[] = [];
  try {
    // One batch of values and keys serves every segment: reads do not care what the rows hold.
    const values = Float32Array.from({ length: SEGMENT_ROWS * d }, () => rng.float() * 2 - 1);
    const keys = Float32Array.from({ length: SEGMENT_ROWS * s }, () => rng.float());
    const maxRows = Math.max(...layers);
    for (let at = 0, id = 0; at < maxRows; at += SEGMENT_ROWS, id++) {
      const n = Math.min(SEGMENT_ROWS, maxRows - at);
      const name = `seg-0-${id}.bin`;
      const e: SegmentEntry = writeSegment(path.join(dir, name), name, { layer: 0, rows: n, width: d, keyWidth: s, format }, values.subarray(0, n * d), keys.subarray(0, n * s));
      readers.push(new SegmentReader(path.join(dir, name), e));
    }
    const table = (M: number) => {
      const t = new SegmentedRows(d, (id) => readers[id]);
      t.refSeg = Array.from({ length: M }, (_, i) => Math.floor(i / SEGMENT_ROWS));
      t.refRow = Array.from({ length: M }, (_, i) => i % SEGMENT_ROWS);
      return t;
    };
    const windows: Array<{ gapBytes: number | null; w: ReadWindow }> = [
      { gapBytes: null, w: { gapBytes: 0, maxBytes: 0 } },
      ...gaps.map((g) => ({ gapBytes: g, w: { gapBytes: g, maxBytes } })),
    ];
    const patterns: GatherPattern[] = ['random', 'clustered'];
    const samples = new Map<string, { cold: number[]; warm: number[]; warmCpu: number[]; reads: number[]; bytes: number[] }>();
    const key = (M: number, p: GatherPattern, g: number | null) => `${M}/${p}/${g}`;
    let dropped = true;
    // JIT warm-up (crc, decode, the read loop) before anything is timed.
    table(layers[0]).gather(gatherSet(rng, layers[0], R, 'random'));
    for (let rep = 0; rep < reps; rep++) {
      for (const M of layers) {
        const t = table(M);
        for (const p of patterns) {
          const idx = gatherSet(rng, M, R, p);
          for (const { gapBytes, w } of windows) {
            dropped = dropFromPageCache(dir) && dropped;
            const reads0 = readers.reduce((a, r) => a + r.valueReads, 0);
            const bytes0 = readers.reduce((a, r) => a + r.valueBytesRead, 0);
            const t0 = performance.now();
            t.gather(idx, w);
            const cold = performance.now() - t0;
            const reads = readers.reduce((a, r) => a + r.valueReads, 0) - reads0;
            const bytes = readers.reduce((a, r) => a + r.valueBytesRead, 0) - bytes0;
            // Warm: best of 3, as wall time and as this process's CPU time (on a loaded machine
            // the wall clock also counts the time other processes held the cores).
            let warm = Infinity;
            let warmCpu = Infinity;
            for (let k = 0; k < 3; k++) {
              const c1 = process.cpuUsage();
              const t1 = performance.now();
              t.gather(idx, w);
              warm = Math.min(warm, performance.now() - t1);
              const c = process.cpuUsage(c1);
              warmCpu = Math.min(warmCpu, (c.user + c.system) / 1000);
            }
            const k = key(M, p, gapBytes);
            if (!samples.has(k)) samples.set(k, { cold: [], warm: [], warmCpu: [], reads: [], bytes: [] });
            const sm = samples.get(k)!;
            sm.cold.push(cold);
            sm.warm.push(warm);
            sm.warmCpu.push(warmCpu);
            sm.reads.push(reads);
            sm.bytes.push(bytes);
          }
        }
      }
    }
    const rows: GatherSweepRow[] = [];
    for (const M of layers) {
      for (const p of patterns) {
        for (const { gapBytes, w } of windows) {
          const sm = samples.get(key(M, p, gapBytes))!;
          rows.push({ layerRows: M, pattern: p, gapBytes, maxBytes: w.maxBytes, coldMs: median(sm.cold), warmMs: median(sm.warm), warmCpuMs: median(sm.warmCpu), reads: median(sm.reads), readMiB: median(sm.bytes) / 2 ** 20 });
        }
      }
    }
    const warm = warmBreakdown(readers[0], gatherSet(rng, Math.min(SEGMENT_ROWS, layers[0]), R, 'random'), format, d);
    return { width: d, warm, format, gatherRows: R, segmentRows: SEGMENT_ROWS, pageCacheDropped: dropped, rows };
  } finally {
    for (const r of readers) r.close();
    if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}
