/**
 * Long-term retrieval, per layer (MPLUS-SPEC "Generation", step 2), minus the scoring itself,
 * which the engine computes on the accelerator: mean over question rows of sigmoid(Q·key).
 *
 * Candidates are numbered Θ first (0..M−1), then the dropped cache (M..M+C−1).
 */

/** With fewer than R merged Θ entries: 0..M−1 repeated, keeping the last R (cache ignored). */
export function repeatFill(M: number, R: number): number[] {
  if (M === 0) return [];
  const out: number[] = [];
  // Build "copies prepended" from the end backwards: position R−1 is M−1, R−2 is M−2, …
  for (let i = 0; i < R; i++) out.push((((M - R + i) % M) + M) % M);
  return out;
}

/** The R highest scores' candidate indices, best first (ties: lower index first, as torch.topk). */
export function topR(scores: Float32Array, R: number): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  if (R >= idx.length) return idx.sort((a, b) => scores[b] - scores[a] || a - b);
  // Partial selection: keep a sorted window of the best R (R ≪ M at real scale).
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  return idx.slice(0, R);
}

/**
 * Orders selected candidates oldest (largest age) first. Ties in age: larger candidate index
 * first — the selection taken in ascending index order, stable-sorted by age ascending, then
 * reversed (MPLUS-SPEC ✎; the golden case confirms it, the official argsort is unstable).
 */
export function orderByAge(selected: number[], ageOf: (candidate: number) => number): number[] {
  return selected
    .map((c) => ({ c, a: ageOf(c) }))
    .sort((x, y) => y.a - x.a || y.c - x.c)
    .map((p) => p.c);
}

/** Whether a layer with M merged Θ entries retrieves by score (else repeat-fill). */
export function usesScores(M: number, R: number): boolean {
  return M >= R;
}
