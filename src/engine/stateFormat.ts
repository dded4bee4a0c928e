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
