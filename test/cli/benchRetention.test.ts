/**
 * `mplus bench retention` drives a real sidecar per N and memory mode: facts first, then N tokens
 * of real code, then every fact asked with the retrieval report. On a random fixture the hit rate
 * means nothing; what is checked is the harness: each (N, mode) gets its own fresh memory holding
 * the facts plus at least N more tokens, θ only never grows Θ while M+ does, the fact's rows are
 * found among M+'s candidates by provenance, and the written table/plot/JSON resume a run.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { DistractorWriter, MAX_CODE_LINE, benchRetention, shortfalls } from '../../tools/bench/retention';
import { TextTokenizer } from '../../src/model/tokenizer';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

const SHIPPED_LTM = 96; // the small fixture's ltm_initial_size

describe('bench retention', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('retention', { model: { preset: 'small', seed: 3 } });

  it('θ only and M+ per N: facts, then N tokens of unrelated code, then every fact asked; written and resumable', async () => {
    const out = path.join(ws.root, 'ret');
    const lines: string[] = [];
    const run = await benchRetention({ model: ws.model, tokens: [0, 2048], facts: 3, seed: 2, out, log: (s) => lines.push(s) });
    const rows = run.rows;
    assert.deepStrictEqual(rows.map((r) => [r.tokens, r.mode, r.facts]), [[0, 'theta', 3], [0, 'mplus', 3], [2048, 'theta', 3], [2048, 'mplus', 3]]);
    for (const n of [0, 2048]) {
      const [t, m] = rows.filter((r) => r.tokens === n);
      assert.strictEqual(t.tokensFed, m.tokensFed, 'both modes are fed the same');
      assert.strictEqual(t.candidateRows, SHIPPED_LTM, `θ only: Θ stays as shipped, nothing cached (N = ${n})`);
      assert.strictEqual(t.factRowsRetrieved, null, 'θ only: no fact row ever reaches Θ');
      assert.ok(t.factRowsRetrievedByLayer.every((x) => x === null), 'θ only: nor in any layer');
      assert.strictEqual(t.factShareOfRetrieved, 0, 'θ only retrieves shipped rows only');
    }
    assert.ok(rows[0].tokensFed > 0 && rows[0].tokensFed < 2048, `N = 0 feeds only the facts (${rows[0].tokensFed})`);
    assert.ok(rows[2].tokensFed >= 2048 + rows[0].tokensFed * 0.5, `N = 2048 feeds the facts and ≥ 2048 more (${rows[2].tokensFed})`);
    assert.ok(rows[3].candidateRows > rows[1].candidateRows && rows[1].candidateRows > SHIPPED_LTM, `M+ Θ + cache grow with N (${rows[1].candidateRows} → ${rows[3].candidateRows})`);
    assert.ok(rows[3].factRowsRetrieved !== null && rows[3].factRowsRetrieved >= 0 && rows[3].factRowsRetrieved <= 1, 'M+: the facts\' rows are among the candidates, found by provenance');
    // The overall share weighs each layer's share by its (question, layer) count: it lies between them.
    const byLayer = rows[3].factRowsRetrievedByLayer.filter((x): x is number => x !== null);
    assert.ok(byLayer.length > 0 && byLayer.every((x) => x >= 0 && x <= 1), `M+: a share per layer (${JSON.stringify(rows[3].factRowsRetrievedByLayer)})`);
    const overall = rows[3].factRowsRetrieved ?? -1;
    assert.ok(Math.min(...byLayer) - 1e-9 <= overall && overall <= Math.max(...byLayer) + 1e-9, `overall ${overall} within the layers' ${JSON.stringify(byLayer)}`);
    assert.ok(rows[0].factShareOfStm > 0, 'at N = 0 θ holds the facts');
    for (const r of rows) {
      assert.ok(r.hits >= 0 && r.hits <= r.facts && r.exact === r.hits / r.facts);
      assert.ok(r.seconds > 0 && r.feedTokensPerS > 0 && r.askMs > 0, 'each row measures its cost');
      const answers = r.answers ?? [];
      assert.strictEqual(answers.length, r.facts, 'every question is recorded with its answer');
      assert.strictEqual(answers.filter((a) => a.answer.includes(a.value)).length, r.hits, 'hits are the answers that hold their value');
      assert.ok(answers.every((a) => /^[A-Z_]+$/.test(a.name) && /^\d+$/.test(a.value) && a.file === `src/${a.file.split('/')[1]}/${a.name.toLowerCase()}.ts`), JSON.stringify(answers));
    }
    assert.strictEqual(lines.filter((l) => /exact \d+\/3/.test(l)).length, 4, 'one progress line per (N, mode)');

    const md = fs.readFileSync(`${out}.md`, 'utf8');
    assert.strictEqual(md.split('\n').filter((l) => /^\| (0|2k) \|/.test(l)).length, 4, md);
    const svg = fs.readFileSync(`${out}.svg`, 'utf8');
    assert.strictEqual((svg.match(/<polyline /g) ?? []).length, 2, 'two lines: θ only and M+');
    assert.match(svg, /θ only \(MemoryLLM\)/);

    // --min-exact holds M+ rows only, each to the rate given.
    const [t0, m0] = rows;
    assert.deepStrictEqual(shortfalls(rows, 0), []);
    assert.deepStrictEqual(shortfalls([t0], 1.01), [], 'θ only is never held to it');
    assert.deepStrictEqual(shortfalls([m0], m0.exact), []);
    assert.deepStrictEqual(shortfalls([m0], m0.exact + 0.01), [`N = 0: ${m0.hits}/3 (${(100 * m0.exact).toFixed(1)}%)`]);
    assert.strictEqual(shortfalls(rows, 1.01).length, 2);

    // Resume: the same --out with one more N measures only the new rows.
    const again: string[] = [];
    const more = await benchRetention({ model: ws.model, tokens: [0, 2048], facts: 3, seed: 2, out, modes: ['theta'], log: (s) => again.push(s) });
    assert.deepStrictEqual(more.rows, rows, 'nothing re-measured');
    assert.strictEqual(again.filter((l) => /skipped/.test(l)).length, 2);
  });

  it('the distractors are code: no line of data, and about the tokens asked', async () => {
    const dir = path.join(ws.root, 'distractors');
    const tok = await TextTokenizer.fromDir(ws.model);
    const w = new DistractorWriter(dir, tok);
    const written = w.write(8192) + w.write(8192);
    let lines = 0;
    let tokens = 0;
    for (const f of fs.readdirSync(path.join(dir, 'vendor'))) {
      const text = fs.readFileSync(path.join(dir, 'vendor', f), 'utf8');
      tokens += tok.countTokens(text);
      for (const line of text.split('\n')) {
        lines++;
        assert.ok(line.length <= MAX_CODE_LINE, `${f}: a ${line.length}-character line (data, not code): ${line.slice(0, 60)}`);
      }
    }
    // Each call stops at the first line that reaches what was asked: one code line over at most.
    assert.ok(written >= 16384 && written < 16384 + 2 * 400, `asked 2 × 8192 tokens, wrote ${written}`);
    assert.ok(Math.abs(tokens - written) < 0.05 * written, `the files hold what was counted (${tokens} vs ${written})`);
    assert.ok(lines > 300, `${lines} lines`);
  });
});
