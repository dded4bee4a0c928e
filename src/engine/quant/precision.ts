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
 * Weights per scale, by precision. 32 measured against 128 on the medium fixture (BENCHMARKS.md,
 * "Precision"): smaller error (first-injection delta error int8 0.029 vs 0.033, int4 0.46 vs 0.67;
 * top-R overlap a little higher) for 4 bytes of scale per 32 weights (+8% bytes at int8, +18% at
 * int4 against block 128). int8 takes 64: at accuracy_level 4 ORT holds each block's scale three
 * times (the file's, mapped; a packed copy; a block sum), so at mplus-8b shape block 32 costs
 * 1.3 GB more than 64 — bench engine int8 peak 12,744 → 11,394 MiB — for a top-R overlap of
 * 96.8% vs 96.5% on medium (BENCHMARKS.md, "mplus-8b shape"). Speed was not compared.
 */
export const DEFAULT_BLOCK = 32;

export function defaultBlock(p: Precision): number {
  return p === 'int8' ? 64 : DEFAULT_BLOCK;
}

export const BLOCK_SIZES = [16, 32, 64, 128, 256];
