/**
 * Bounded prefill (finding: memory grew with the square of the question): a question prefilled in
 * blocks of rows, with retrieval scores reduced block by block, is the same question — logits,
 * retrieval, attention mass and the next decode step match one pass — and the question length
 * limit names what sets it.
 */
import * as assert from 'assert';
import { relDiff } from '../helpers/numeric';
import { MPlusEngine } from '../../src/engine/mplus';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

describe('question prefill in blocks', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('blocks', { model: { preset: 'small', seed: 11 } });

  it('equals one pass (logits, retrieval, attention mass, next step) for a 300-token question', async () => {
    const question = Array.from({ length: 300 }, (_, i) => 1000 + ((i * 7919) % 5000));
    const run = async (scratchBytes?: number) => {
      const e = await MPlusEngine.load(ws.model, { seed: 5, scratchBytes });
      try {
        const mem = e.initialMemory();
        for (let k = 0; k < 3; k++) await e.inject(mem, Array.from({ length: 40 }, (_, i) => 2000 + k * 50 + i));
        const q = await e.prefill(mem, question);
        const next = await e.decode(q, 42);
        return { q, next };
      } finally {
        await e.close();
      }
    };
    const one = await run();
    const blocks = await run(64 * 1024); // 16-row layer blocks, 4 retrieval-score blocks
    assert.deepStrictEqual(blocks.q.retrieved, one.q.retrieved, 'the same Θ rows were retrieved');
    assert.ok(relDiff(blocks.q.logits, one.q.logits) < 1e-4, `logits ${relDiff(blocks.q.logits, one.q.logits)}`);
    assert.ok(relDiff(blocks.next, one.next) < 1e-4, 'the next decode step');
    for (let l = 0; l < one.q.memoryAttention.length; l++) {
      assert.ok(relDiff(blocks.q.memoryAttention[l].retrieved, one.q.memoryAttention[l].retrieved) < 1e-4);
      assert.ok(relDiff(blocks.q.memoryAttention[l].stm, one.q.memoryAttention[l].stm) < 1e-4);
      assert.strictEqual(blocks.q.kv[l].k.dims[1], one.q.kv[l].k.dims[1]);
    }
    assert.strictEqual(blocks.q.position, one.q.position);
  });

  it('the question limit is the smallest of positions, memory and the cap, and says which', async () => {
    const e = await MPlusEngine.load(ws.model, { seed: 5 });
    try {
      const lim = e.questionLimit(256);
      assert.ok(lim.tokens > 1000 && lim.tokens <= 16384, JSON.stringify(lim));
      assert.match(lim.why, /cap|positions|memory/);
    } finally {
      await e.close();
    }
  });
});
