/**
 * Building blocks shared by the M+ graphs: weights as external data into the checkpoint's
 * safetensors (cast to float32 in-graph when stored as bf16/f16: ORT folds the cast once at
 * session creation), RMSNorm exactly as Llama computes it, and Linear layers with the two
 * LoRA adapters selected by a runtime input.
 *
 * With quantized weights (`WeightSource.quant`), a graph's external data is the quantization
 * cache file instead (ORT only reads external data under one folder, and the cache lives outside
 * the checkpoint): linear weights come from there — block-quantized through MatMulNBits, or raw
 * floats where a tensor could not be quantized — and the small rest (norms, LoRA) is inlined.
 */
import * as path from 'path';
import { TensorInfo } from '../../model/safetensors';
import { LinearWeights } from '../../model/tensorNames';
import { GraphBuilder, OnnxDType } from '../onnx/builder';
import type { QuantizedWeights } from '../quant/weightCache';

/** Resolves checkpoint tensor names to their file locations. */
export interface WeightSource {
  /** The folder the graph's external data lies under (session option). */
  dir: string;
  info(name: string): TensorInfo;
  /** Present when linear weights are quantized; then `dir` is quant.dir. */
  quant?: QuantizedWeights;
  /** A checkpoint tensor as float32 (inlined into quantized graphs). */
  readF32?(name: string): Float32Array;
}

const ONNX_DTYPE: Record<string, OnnxDType> = { F32: OnnxDType.FLOAT, BF16: OnnxDType.BFLOAT16, F16: OnnxDType.FLOAT16 };

/** A float32 value for checkpoint tensor `name`, read from its file by ORT. */
export function weight(g: GraphBuilder, src: WeightSource, name: string, hint: string): string {
  const t = src.info(name);
  if (src.quant) {
    if (!src.readF32) throw new Error('a quantized WeightSource needs readF32');
    return g.constF32(hint, src.readF32(name), t.shape);
  }
  const dt = ONNX_DTYPE[t.dtype];
  if (dt === undefined) throw new Error(`${t.file}: tensor ${name} has dtype ${t.dtype}; weights must be F32, BF16 or F16`);
  const w = g.external(hint, {
    location: path.relative(src.dir, t.file),
    offset: t.offset,
    byteLength: t.byteLength,
    dtype: dt,
    dims: t.shape,
  });
  return dt === OnnxDType.FLOAT ? w : g.op('Cast', [w], { to: OnnxDType.FLOAT }, `${hint}_f32`);
}

/**
 * x · Wᵀ for a [out, in] weight `name`: a plain Gemm on float weights, MatMulNBits on
 * block-quantized ones (the weights stay packed; see accuracyLevel for the activations).
 */
export function matmulWeight(g: GraphBuilder, src: WeightSource, x: string, name: string, hint: string): string {
  const e = src.quant?.entry(name);
  if (!e || !src.quant) return g.op('Gemm', [x, weight(g, src, name, `${hint}_w`)], { transB: 1 }, hint);
  const location = src.quant.location;
  if (e.kind === 'raw') {
    const dt = ONNX_DTYPE[e.dtype];
    const w = g.external(`${hint}_w`, { location, offset: e.data[0], byteLength: e.data[1], dtype: dt, dims: e.dims });
    const wf = dt === OnnxDType.FLOAT ? w : g.op('Cast', [w], { to: OnnxDType.FLOAT }, `${hint}_w_f32`);
    return g.op('Gemm', [x, wf], { transB: 1 }, hint);
  }
  const nb = e.k / e.block;
  const b = g.external(`${hint}_q`, {
    location, offset: e.blob[0], byteLength: e.blob[1], dtype: OnnxDType.UINT8, dims: [e.n, nb, (e.block * e.bits) / 8],
  });
  const s = g.external(`${hint}_scales`, { location, offset: e.scales[0], byteLength: e.scales[1], dtype: OnnxDType.FLOAT, dims: [e.n * nb] });
  return g.msOp('MatMulNBits', [x, b, s], { K: e.k, N: e.n, bits: e.bits, block_size: e.block, accuracy_level: accuracyLevel(e.bits) }, hint);
}

/**
 * MatMulNBits' accuracy_level per bit width. 0 keeps activations float32; 4 quantizes them to
 * int8 per block too and runs integer dot products. Measured on the medium fixture (BENCHMARKS.md,
 * "Precision"): for 8-bit weights ORT 1.30's CPU kernel at level 0 is a slow fallback that also
 * takes more memory than f32 (RSS 716 vs 650 MiB, decode 0.6 tokens/s), while level 4 holds the
 * int8 weights as they are (428 MiB); 4-bit weights have a float32-activation kernel (level 0).
 * MPLUS_NBITS_ACCURACY_LEVEL overrides both, for measuring.
 */
export function accuracyLevel(bits: number): number {
  const env = process.env.MPLUS_NBITS_ACCURACY_LEVEL;
  if (env !== undefined && env !== '') return Number(env);
  return bits === 8 ? 4 : 0;
}

/** weight · (x · rsqrt(mean(x²) + eps)), row-wise over the last axis, in float32. */
export function rmsNorm(g: GraphBuilder, x: string, w: string, eps: number, hint: string): string {
  const sq = g.op('Mul', [x, x], {}, `${hint}_sq`);
  const mean = g.op('ReduceMean', [sq], { axes: [-1], keepdims: 1 }, `${hint}_var`);
  const e = g.constF32(`${hint}_eps`, [eps], []);
  const rs = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [mean, e])])], {}, `${hint}_rsqrt`);
  return g.op('Mul', [w, g.op('Mul', [x, rs])], {}, hint);
}

/**
 * y = x·Wᵀ + scaling·(Σ_a sel[a] · (x·A_aᵀ)·B_aᵀ) — PEFT's `base(x) + lora_B(lora_A(x))·scaling`
 * with the active adapter picked by `sel` (one-hot over adapters: an exact 1·v + 0·w).
 */
export function linear(
  g: GraphBuilder,
  src: WeightSource,
  x: string,
  lw: LinearWeights,
  adapters: { sel: string[]; scaling: number } | null,
  hint: string,
): string {
  const base = matmulWeight(g, src, x, lw.base, hint);
  if (!adapters) return base;
  const terms: string[] = [];
  (['default', 'decoder_adapter'] as const).forEach((ad, i) => {
    const pair = lw.lora[ad];
    if (!pair) return;
    const a = g.op('Gemm', [x, weight(g, src, pair.a, `${hint}_${ad}_A`)], { transB: 1 }, `${hint}_${ad}_xa`);
    const b = g.op('Gemm', [a, weight(g, src, pair.b, `${hint}_${ad}_B`)], { transB: 1 }, `${hint}_${ad}_xab`);
    terms.push(g.op('Mul', [b, adapters.sel[i]], {}, `${hint}_${ad}_sel`));
  });
  if (!terms.length) return base;
  const sum = terms.length === 1 ? terms[0] : g.op('Add', terms, {}, `${hint}_lora`);
  const scaled = g.op('Mul', [sum, g.constF32(`${hint}_scaling`, [adapters.scaling], [])], {}, `${hint}_lora_scaled`);
  return g.op('Add', [base, scaled], {}, `${hint}_out`);
}

/** x · sigmoid(x) */
export function silu(g: GraphBuilder, x: string, hint: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])], {}, hint);
}
