/**
 * Next-token choice from float32 logits: greedy (argmax, lowest index on ties as torch.argmax),
 * or temperature + nucleus (top-p) sampling with a seedable generator.
 */
import { Rng } from '../util/rng';

export interface SamplingOptions {
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Nucleus mass in (0, 1]; default 1. */
  topP?: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  const t = opts.temperature ?? 0;
  if (!(t > 0)) return argmax(logits);
  const topP = opts.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${topP}`);
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp((logits[i] - max) / t);
  const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  // Keep the smallest prefix of the sorted distribution whose mass reaches top_p (at least one).
  let kept = 0;
  let mass = 0;
  while (kept < order.length && (kept === 0 || mass < topP * sum)) mass += probs[order[kept++]];
  let r = rng.float() * mass;
  for (let i = 0; i < kept; i++) {
    r -= probs[order[i]];
    if (r < 0) return order[i];
  }
  return order[kept - 1];
}
