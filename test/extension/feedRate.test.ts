/** The remembered feeding rate is per model, device and precision (feedRate.ts). */
import * as assert from 'assert';
import { MAX_RATES, rateKey, withRate } from '../../src/extension/feedRate';

describe('extension: feeding rate remembered per model, device and precision', () => {
  const big = rateKey('/models/mplus-8b', 'cpu', 'int8');
  const small = rateKey('/models/tiny', 'cuda', 'f32');

  it('a rate measured with one model does not become another model\'s', () => {
    const t = withRate({}, small, 5000)!;
    assert.strictEqual(t[small], 5000);
    assert.strictEqual(t[big], undefined);
    const t2 = withRate(t, big, 40)!;
    assert.deepStrictEqual(t2, { [small]: 5000, [big]: 40 });
    assert.notStrictEqual(rateKey('/m', 'cpu', 'f32'), rateKey('/m', 'cpu', 'int8'), 'precision is part of the key');
  });

  it('writes only changes above 10% and no non-positive rate', () => {
    const t = { [big]: 100 };
    assert.strictEqual(withRate(t, big, 105), null);
    assert.strictEqual(withRate(t, big, 0), null);
    assert.strictEqual(withRate(t, big, Number.NaN), null);
    assert.deepStrictEqual(withRate(t, big, 150), { [big]: 150 });
  });

  it(`keeps the ${MAX_RATES} most recently measured combinations`, () => {
    let t = {};
    for (let i = 0; i < MAX_RATES + 3; i++) t = withRate(t, rateKey(`/m${i}`, 'cpu', 'f32'), 10 + i)!;
    const keys = Object.keys(t);
    assert.strictEqual(keys.length, MAX_RATES);
    assert.strictEqual(keys[0], rateKey('/m3', 'cpu', 'f32'));
    // measuring an old one again makes it the newest
    t = withRate(t, rateKey('/m3', 'cpu', 'f32'), 99)!;
    assert.strictEqual(Object.keys(t).at(-1), rateKey('/m3', 'cpu', 'f32'));
  });
});
