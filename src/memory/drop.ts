/**
 * Which θ tokens an injection drops. The paper draws them at random (official: the last K of
 * `torch.randperm(N)`), independently per layer; we draw from a seedable generator so a run can be
 * replayed, and accept an explicit plan (MPLUS-SPEC ✎). A plan is K distinct indices per layer,
 * ascending.
 */

/** xoshiro128** — small, fast, good enough for sampling; seeded through splitmix32. */
export class Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform uint32. */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

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
