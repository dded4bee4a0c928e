/**
 * The precision memory rows (θ, the dropped-token cache, Θ values) are held in for a model: its
 * checkpoint's — bf16 for a bf16 checkpoint such as mplus-8b, whose official runs compute θ in
 * bf16; else f32. Its own module (no ONNX Runtime) so that the resident-size estimate, which
 * clients load without the engine's sessions, states the same rule as MPlusEngine.stateFormat.
 */
import type { MPlusConfig } from '../model/config';
import type { RowFormat } from '../memory/rows';

export function stateFormatOf(cfg: MPlusConfig): RowFormat {
  return cfg.torchDtype === 'bfloat16' ? 'bf16' : 'f32';
}

/**
 * The width a question's K/V cache is held in: half (float16) where the state is bf16 — the
 * official bf16 runs hold K/V in bf16, whose 8-bit mantissa rounds more than float16's 11 bits;
 * ONNX Runtime's JavaScript API has no bfloat16 tensors — else float32 (golden cases, traces).
 * At mplus-8b shape a question's K/V over its 12,801-row memory prefix is 3.4 GB at float32.
 */
export function kvFormatOf(cfg: MPlusConfig): 'f32' | 'f16' {
  return stateFormatOf(cfg) === 'bf16' ? 'f16' : 'f32';
}

/** Bytes of one K or V value held in `format`. */
export function kvBytes(format: 'f32' | 'f16'): number {
  return format === 'f16' ? 2 : 4;
}
