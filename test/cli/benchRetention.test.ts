/**
 * `mplus bench retention` drives a real sidecar: facts first, then N tokens of real code, then
 * every fact asked. On a random fixture the hit rate means nothing; what is checked here is that
 * each N gets its own fresh memory holding the facts plus at least N more tokens, and that every
 * fact is asked.
 */
import * as assert from 'assert';
import { benchRetention } from '../../tools/bench/retention';
import { writeFixture } from '../../tools/fixture';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('bench retention', function () {
  this.timeout(300000);
  let model: string;
  before(() => {
    model = tmpDir('retention-model');
    writeFixture({ out: model, preset: 'small', seed: 3, dtype: 'f32' });
  });
  after(() => rmDir(model));

  it('feeds the facts, then N tokens of unrelated code, then asks every fact, per N', async () => {
    const rows = await benchRetention({ model, tokens: [0, 2048], facts: 3, seed: 2 });
    assert.deepStrictEqual(rows.map((r) => [r.tokens, r.facts]), [[0, 3], [2048, 3]]);
    assert.ok(rows[0].tokensFed > 0 && rows[0].tokensFed < 2048, `N = 0 feeds only the facts (${rows[0].tokensFed})`);
    assert.ok(rows[1].tokensFed >= 2048 + rows[0].tokensFed * 0.5, `N = 2048 feeds the facts and ≥ 2048 more (${rows[1].tokensFed})`);
    for (const r of rows) assert.ok(r.hits >= 0 && r.hits <= r.facts && r.exact === r.hits / r.facts);
  });
});
