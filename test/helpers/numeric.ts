/** Numeric comparisons the engine tests share. */
import * as assert from 'assert';

/** max |a − b| / max |a| (at least 1e-6): the relative distance of two vectors of one length. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.strictEqual(a.length, b.length);
  let m = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return m / scale;
}
