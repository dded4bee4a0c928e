/**
 * Which θ tokens an injection drops. The paper draws them at random (official: the last K of
 * `torch.randperm(N)`), independently per layer; we draw from a seedable generator so a run can be
 * replayed, and accept an explicit plan (MPLUS-SPEC ✎). A plan is K distinct indices per layer,
 * ascending.
 */

import { Rng } from '../util/rng';

/** K distinct indices of 0..N−1, ascending (partial Fisher–Yates). */
export function randomDrop(rng: Rng, N: number, K: number): number[] {
  const perm = Array.from({ length: N }, (_, i) => i);
  for (let i = 0; i < K; i++) {
    const j = i + rng.int(N - i);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return perm.slice(0, K).sort((a, b) => a - b);
}

/**
 * A drop that takes `preferred` indices first (e.g. stale tokens), then random ones to make K.
 * Returned ascending.
 */
export function dropPreferring(rng: Rng, N: number, K: number, preferred: number[]): number[] {
  const chosen = new Set(preferred.slice(0, K));
  if (chosen.size < K) {
    const rest = Array.from({ length: N }, (_, i) => i).filter((i) => !chosen.has(i));
    for (const i of randomDrop(rng, rest.length, K - chosen.size)) chosen.add(rest[i]);
  }
  return [...chosen].sort((a, b) => a - b);
}
