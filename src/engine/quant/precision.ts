/**
 * The precision the engine's linear layers run at. f32 is the reference (golden tests); bf16 holds
 * weights rounded to bf16 (on the CPU, ORT widens them to f32 once at session creation, so this
 * only changes accuracy, not memory); int8/int4 keep weights block-quantized and run them through
 * ORT's MatMulNBits (com.microsoft), never widened.
 */
export type Precision = 'f32' | 'bf16' | 'int8' | 'int4';
export const PRECISIONS: Precision[] = ['f32', 'bf16', 'int8', 'int4'];

export function isPrecision(s: unknown): s is Precision {
  return typeof s === 'string' && (PRECISIONS as string[]).includes(s);
}

/** Bits per weight of a quantized precision; null for the float ones. */
export function quantBits(p: Precision): 4 | 8 | null {
  return p === 'int8' ? 8 : p === 'int4' ? 4 : null;
}

/**
 * Weights per scale. 32 measured against 128 on the medium fixture (BENCHMARKS.md, "Precision"):
 * 32 gives the smaller error at the same speed, and costs 4 bytes of scale per 32 weights
 * (+12.5% over int8's bytes, +25% over int4's).
 */
export const DEFAULT_BLOCK = 32;

export const BLOCK_SIZES = [16, 32, 64, 128, 256];
