/**
 * Quantized weights of one checkpoint at one precision, built once and kept in a cache folder
 * outside the checkpoint (MPLUS_QUANT_CACHE, else $XDG_CACHE_HOME/mplus/quant, else
 * ~/.cache/mplus/quant), keyed by the checkpoint's identity. The file holds every linear layer's
 * weight (decoder projections, retriever projections, lm_head) either block-quantized for
 * MatMulNBits or — when it cannot be quantized — as raw float values, with the reason logged on
 * every load. Norms and LoRA adapters stay in the checkpoint's precision (see BENCHMARKS.md,
 * "Precision", for why LoRA is applied unmerged).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Checkpoint } from '../../model/checkpoint';
import { DType, DTYPE_BYTES, fromFloat32 } from '../../model/dtype';
import { blobBytes, quantizeRows, unquantizableReason } from './blockwise';
import { CacheEntry, CacheHeader, CacheKey, Segment, Span, readCacheFile, writeCacheFile } from './cacheFile';
import { Precision, quantBits } from './precision';

export type QuantLog = (level: 'info' | 'warn', message: string) => void;

/** Quantized weights ready for graphs: entries hold absolute byte offsets into `dir/location`. */
export interface QuantizedWeights {
  dir: string;
  location: string;
  precision: Precision;
  block: number;
  /** Entry for a linear weight, spans as absolute file offsets; undefined for other tensors. */
  entry(name: string): CacheEntry | undefined;
  /** Bytes of weights in the file. */
  bytes: number;
  /** Tensors kept in float precision, with the reason. */
  fallbacks: Array<{ name: string; reason: string }>;
  /** Whether this load built the file (false: a valid cache was reused). */
  built: boolean;
}

export function defaultQuantCacheRoot(): string {
  if (process.env.MPLUS_QUANT_CACHE) return path.resolve(process.env.MPLUS_QUANT_CACHE);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mplus', 'quant');
}

/** Every weight a graph multiplies activations by (PyTorch Linear layout [out, in]). */
export function linearWeightNames(ckpt: Checkpoint): string[] {
  const w = ckpt.weights;
  const names: string[] = [];
  for (const l of w.layers) {
    for (const lin of [l.q, l.k, l.v, l.o, l.gate, l.up, l.down]) names.push(lin.base);
    names.push(...(l.queryProj ?? []), ...(l.keyProj ?? []));
  }
  names.push(w.lmHead);
  return names;
}

function cacheKey(ckpt: Checkpoint, precision: Precision, block: number): CacheKey {
  const id = ckpt.identity();
  const files = [...new Set(ckpt.files.names().map((n) => ckpt.files.info(n).file))].sort().map((f) => {
    const st = fs.statSync(f);
    return { name: path.basename(f), size: st.size, mtimeMs: st.mtimeMs };
  });
  return { configHash: id.configHash, weightFingerprint: id.weightFingerprint, files, precision, block };
}

/** Where the cache of `ckpt` at this precision lives under `root`. */
export function quantCacheFile(root: string, ckpt: Checkpoint, precision: Precision, block: number): string {
  const id = ckpt.identity();
  const key = crypto.createHash('sha256').update(`${id.configHash}|${id.weightFingerprint}`).digest('hex').slice(0, 24);
  return path.join(root, key, `${precision}-b${block}.mpq`);
}

const CHUNK_VALUES = 4 * 2 ** 20;

/** Rows of `name` in chunks of about CHUNK_VALUES values, as float32: bounded memory at any size. */
function forRowChunks(ckpt: Checkpoint, name: string, fn: (rows: Float32Array, count: number) => void): void {
  const [n, k] = ckpt.files.info(name).shape;
  const step = Math.max(1, Math.floor(CHUNK_VALUES / k));
  for (let r = 0; r < n; r += step) {
    const c = Math.min(step, n - r);
    fn(ckpt.files.readSliceF32(name, r * k, c * k), c);
  }
}

/**
 * How a linear weight of this dtype and shape is stored at `precision`: block-quantized (packed
 * blob, then float32 scales), or raw floats — bf16 at bf16 precision, else the checkpoint's float
 * type, f32 otherwise — with the reason when quantization was asked for and is not possible.
 * The one statement of the layout: the cache writer and the resident-size estimate both use it.
 */
export type LinearLayout =
  | { kind: 'nbits'; bits: 4 | 8; n: number; k: number; blobBytes: number; scaleBytes: number }
  | { kind: 'raw'; dtype: 'F32' | 'BF16' | 'F16'; bytes: number; reason: string | null };

export function linearLayout(dtype: DType, shape: number[], precision: Precision, block: number): LinearLayout {
  const bits = quantBits(precision);
  const reason = bits ? unquantizableReason(dtype, shape, block) : null;
  if (bits && !reason) {
    const [n, k] = shape;
    return { kind: 'nbits', bits, n, k, blobBytes: blobBytes(n, k, bits, block), scaleBytes: n * (k / block) * 4 };
  }
  const raw = precision === 'bf16' ? 'BF16' : dtype === 'BF16' || dtype === 'F16' ? dtype : 'F32';
  return { kind: 'raw', dtype: raw, bytes: shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[raw], reason };
}

function planTensor(ckpt: Checkpoint, name: string, precision: Precision, block: number):
  { segment: Segment; entry: (s: Span) => CacheEntry; reason?: string } {
  const t = ckpt.files.info(name);
  const lay = linearLayout(t.dtype, t.shape, precision, block);
  if (lay.kind === 'nbits') {
    const { bits, n, k, blobBytes: bb, scaleBytes: sb } = lay;
    return {
      segment: {
        length: bb + sb,
        produce(emit) {
          const scales: Float32Array[] = [];
          forRowChunks(ckpt, name, (rows, c) => {
            const q = quantizeRows(rows, c, k, bits, block);
            emit(q.blob);
            scales.push(q.scales);
          });
          for (const s of scales) emit(new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
        },
      },
      entry: ([o]) => ({ kind: 'nbits', bits, block, n, k, blob: [o, bb], scales: [o + bb, sb] }),
    };
  }
  // Raw: bf16 precision rounds to bf16; a fallback keeps the checkpoint's float type (f32 otherwise).
  const { dtype, bytes: length, reason } = lay;
  return {
    segment: {
      length,
      produce(emit) {
        if (dtype === t.dtype) {
          for (let o = 0; o < t.byteLength; o += 64 * 2 ** 20) emit(ckpt.files.readBytes(name, o, Math.min(64 * 2 ** 20, t.byteLength - o)));
        } else if (t.shape.length === 2) {
          forRowChunks(ckpt, name, (rows) => emit(fromFloat32(rows, dtype)));
        } else {
          emit(fromFloat32(ckpt.files.readF32(name), dtype));
        }
      },
    },
    entry: ([o]) => ({ kind: 'raw', dtype, dims: t.shape, data: [o, length], ...(reason ? { reason } : {}) }),
    reason: reason ?? undefined,
  };
}

export interface QuantLoadOptions {
  precision: Precision;
  block: number;
  root?: string;
  log?: QuantLog;
  /** Called after each tensor is quantized while a cache is built: done of total, and its name. */
  progress?: (done: number, total: number, name: string) => void;
  /** Told the cache file's path before it is checked or built. */
  onFile?: (file: string) => void;
}

/** A cache file checked (or just built) for a checkpoint: what openQuantizedWeights needs. */
export interface CheckedCache {
  file: string;
  header: CacheHeader;
  dataStart: number;
  built: boolean;
}

/**
 * The heavy half of loading: reuses the cache file of `ckpt` at this precision when it is valid
 * (which reads and hashes all of it), or (re)builds it when it is missing, mismatched, truncated
 * or corrupted. Seconds to minutes at full size: the engine runs it in a worker thread
 * (quantizeOffThread.ts) so that the process stays responsive.
 */
export function ensureQuantCache(ckpt: Checkpoint, o: QuantLoadOptions): CheckedCache {
  const log: QuantLog = o.log ?? (() => undefined);
  const root = path.resolve(o.root ?? defaultQuantCacheRoot());
  if ((root + path.sep).startsWith(ckpt.dir + path.sep)) {
    throw new Error(`quantized weights cache ${root} is inside the checkpoint folder ${ckpt.dir}; point MPLUS_QUANT_CACHE elsewhere (the checkpoint folder stays as shipped)`);
  }
  const file = quantCacheFile(root, ckpt, o.precision, o.block);
  const key = cacheKey(ckpt, o.precision, o.block);
  o.onFile?.(file);
  let got = readCacheFile(file, key);
  let built = false;
  if ('reason' in got) {
    const t0 = Date.now();
    log('info', `quantizing ${ckpt.dir} to ${o.precision} (block ${o.block}) into ${file}${got.reason === 'none yet' ? '' : ` — the cache there cannot be used: ${got.reason}`}`);
    const names = linearWeightNames(ckpt);
    const plans = names.map((n) => planTensor(ckpt, n, o.precision, o.block));
    const segments: Segment[] = plans.map((p, i) => ({
      length: p.segment.length,
      produce(emit) {
        p.segment.produce(emit);
        o.progress?.(i + 1, names.length, names[i]);
      },
    }));
    writeCacheFile(file, key, segments, (spans) =>
      Object.fromEntries(names.map((n, i) => [n, plans[i].entry(spans[i])])));
    built = true;
    got = readCacheFile(file, key);
    if ('reason' in got) throw new Error(`quantized weights cache ${file}: unreadable right after writing it: ${got.reason}`);
    log('info', `quantized in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { file, header: got.header, dataStart: got.dataStart, built };
}

/** The cheap half: the tensor table of a checked cache as graphs use it; logs every fallback. */
export function openQuantizedWeights(c: CheckedCache, o: QuantLoadOptions): QuantizedWeights {
  const log: QuantLog = o.log ?? (() => undefined);
  const { header, dataStart } = c;
  const abs = (s: Span): Span => [dataStart + s[0], s[1]];
  const entries = new Map<string, CacheEntry>();
  const fallbacks: Array<{ name: string; reason: string }> = [];
  for (const [name, e] of Object.entries(header.tensors)) {
    entries.set(name, e.kind === 'nbits' ? { ...e, blob: abs(e.blob), scales: abs(e.scales) } : { ...e, data: abs(e.data) });
    if (e.kind === 'raw' && e.reason) {
      fallbacks.push({ name, reason: e.reason });
      log('warn', `${name}: not quantized to ${o.precision}, kept at ${e.dtype.toLowerCase()}: ${e.reason}`);
    }
  }
  return {
    dir: path.dirname(c.file), location: path.basename(c.file), precision: o.precision, block: o.block,
    entry: (n) => entries.get(n), bytes: header.dataBytes, fallbacks, built: c.built,
  };
}

/**
 * The quantized weights of `ckpt`, on this thread: a valid cache is reused; a missing,
 * mismatched, truncated or corrupted one is (re)built first.
 */
export function loadQuantizedWeights(ckpt: Checkpoint, o: QuantLoadOptions): QuantizedWeights {
  return openQuantizedWeights(ensureQuantCache(ckpt, o), o);
}
