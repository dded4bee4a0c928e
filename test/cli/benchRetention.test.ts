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
import { DistractorWriter, MAX_CODE_LINE, benchRetention, benchRetentionSeeds, parseSeeds, seedList, shortfalls } from '../../tools/bench/retention';
import { RetentionAnswer, RetentionRow, kTokens, missKinds, pooled, readResumable, standardError } from '../../tools/bench/retentionReport';
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
      const m = r.misses;
      assert.ok(m && m.otherFact + m.stoppedEarly + m.wrong === r.facts - r.hits, `every miss has one kind: ${JSON.stringify(m)}`);
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
    // Another config (here the model's path) is not resumed, and the log says what differs before it is overwritten.
    const heard: string[][] = [];
    assert.deepStrictEqual(readResumable(out, { ...more.config, model: `${ws.model}/` }, (d) => heard.push(d)), []);
    assert.deepStrictEqual(heard, [[`model ${JSON.stringify(ws.model)} → ${JSON.stringify(`${ws.model}/`)}`]]);
    assert.deepStrictEqual(readResumable(out, more.config, () => assert.fail('the same config is resumed')), rows);
  });

  it('several seeds: each its own resumable run, written beside their pool (questions and hits summed)', async () => {
    const out = path.join(ws.root, 'seeds');
    const opts = { model: ws.model, tokens: [0], facts: 2, modes: ['mplus' as const] };
    const run = await benchRetentionSeeds({ ...opts, out }, [4, 5, 6]);
    const own = [4, 5, 6].map((s) => JSON.parse(fs.readFileSync(`${out}-s${s}.json`, 'utf8')));
    assert.deepStrictEqual(own.map((r) => r.config.seed), [4, 5, 6], 'one file per seed, measured with its seed');
    const answers = own.map((r) => r.rows[0].answers.map((a: { name: string }) => a.name).join());
    assert.strictEqual(new Set(answers).size, 3, `each seed draws its own facts: ${answers}`);
    assert.strictEqual(run.rows.length, 1);
    const [row] = run.rows;
    assert.strictEqual(row.facts, 6);
    assert.strictEqual(row.seeds, 3);
    assert.strictEqual(row.hits, own.reduce((a, r) => a + r.rows[0].hits, 0), 'hits summed over the seeds');
    assert.deepStrictEqual(run.config.seeds, [4, 5, 6]);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(`${out}.json`, 'utf8')), JSON.parse(JSON.stringify(run)), 'the pool is written as OUT');
    const svg = fs.readFileSync(`${out}.svg`, 'utf8');
    assert.strictEqual((svg.match(/<line class="se" /g) ?? []).length, row.hits % 6 === 0 ? 0 : 1, 'an error bar where the rate is neither 0 nor 1');
    assert.match(fs.readFileSync(`${out}.md`, 'utf8'), /2 facts a seed, 3 seeds \(4–6\)[\s\S]*\| 0 \| M\+ \| \d\/6 \(\d+\.\d% ± \d+\.\d\) \|/);
    // Resumed: nothing is measured again, and a wider list measures only its new seed.
    const lines: string[] = [];
    const wider = await benchRetentionSeeds({ ...opts, out, log: (s) => lines.push(s) }, [4, 5, 6, 7]);
    assert.strictEqual(lines.filter((l) => /skipped/.test(l)).length, 3, lines.join('\n'));
    assert.strictEqual(lines.filter((l) => /exact \d\/2 /.test(l)).length, 1, 'only seed 7 is measured');
    assert.strictEqual(wider.rows[0].facts, 8);
    assert.match(lines[lines.length - 1], /pooled: N = 0, M\+: exact \d\/8 /);
  });

  it('pooled: per (N, mode) over the seeds that have it; rates and retrieval averaged, peak memory the highest', () => {
    const row = (over: Partial<RetentionRow>): RetentionRow => ({
      mode: 'mplus', tokens: 0, tokensFed: 100, facts: 4, hits: 2, exact: 0.5, factRowsRetrieved: 0.5, factRowsRetrievedByLayer: [0.5, null],
      factShareOfRetrieved: 0.1, factShareOfStm: 0.2, candidateRows: 10, seconds: 1, feedTokensPerS: 100, askMs: 10, sidecarPeakMiB: 200, ...over,
    });
    const config = (seed: number) => ({ model: 'm', facts: 4, seed, maxTokens: 24 });
    const p = pooled([
      { config: config(1), rows: [row({}), row({ tokens: 8192, hits: 0, exact: 0, factRowsRetrieved: null, factRowsRetrievedByLayer: [null, null], sidecarPeakMiB: null })] },
      { config: config(2), rows: [row({ hits: 4, exact: 1, factRowsRetrieved: 1, factRowsRetrievedByLayer: [1, 0.25], tokensFed: 103, sidecarPeakMiB: 300, seconds: 2 })] },
    ]);
    const at0 = p.rows.find((r) => r.tokens === 0);
    const at8k = p.rows.find((r) => r.tokens === 8192);
    assert.ok(at0 && at8k);
    assert.deepStrictEqual([at0.facts, at0.hits, at0.exact, at0.seeds], [8, 6, 0.75, 2]);
    assert.deepStrictEqual([at0.factRowsRetrieved, at0.factRowsRetrievedByLayer], [0.75, [0.75, 0.25]], 'a layer no fact reached in one seed averages over the others');
    assert.deepStrictEqual([at0.tokensFed, at0.seconds, at0.sidecarPeakMiB], [102, 3, 300]);
    assert.deepStrictEqual([at8k.facts, at8k.seeds, at8k.factRowsRetrieved, at8k.sidecarPeakMiB], [4, 1, null, null], 'a row only seed 1 has');
    assert.deepStrictEqual(p.config.seeds, [1, 2]);
    assert.ok(Math.abs(standardError(at0) - 100 * Math.sqrt(0.75 * 0.25 / 8)) < 1e-12);
    assert.throws(() => pooled([]), /no runs/);
  });

  it('misses by kind: another fact\'s value, stopped early (a proper beginning of the value), wrong', () => {
    const ask = (value: string, answer: string): RetentionAnswer => ({ name: `N${value}`, value, file: `src/x/n${value}.ts`, answer });
    const kinds = missKinds([
      ask('462929', '462929'), // hit
      ask('120', 'x = 120;'), // hit: the value appears
      ask('680705', '462929'), // another fact's value
      ask('4629', '46'), // stopped early
      ask('975287', ' 9752\n'), // stopped early, whitespace aside
      ask('111', '112'), // wrong
      ask('222', ''), // wrong: nothing said is not a beginning
      ask('333', '3 33'), // wrong: its digits, not its text
    ]);
    assert.deepStrictEqual(kinds, { otherFact: 1, stoppedEarly: 2, wrong: 3 });
    // Another fact's value wins over a beginning: '46' would be both for '4629' were '46' asked.
    assert.deepStrictEqual(missKinds([ask('46', '4'), ask('4629', '46')]), { otherFact: 1, stoppedEarly: 1, wrong: 0 });
    // Pooled: summed when every seed's row has them (from its answers when written before the field).
    const row = (answers: RetentionAnswer[], misses?: RetentionRow['misses']): RetentionRow => ({
      mode: 'mplus', tokens: 0, tokensFed: 1, facts: answers.length, hits: answers.filter((a) => a.answer.includes(a.value)).length, exact: 0,
      factRowsRetrieved: null, factRowsRetrievedByLayer: [], factShareOfRetrieved: null, factShareOfStm: 0, candidateRows: 0, seconds: 1,
      feedTokensPerS: 1, askMs: 1, sidecarPeakMiB: null, answers, ...(misses ? { misses } : {}),
    });
    const config = (seed: number) => ({ model: 'm', facts: 2, seed, maxTokens: 24 });
    const a = [ask('12', '1'), ask('34', '12')];
    const p = pooled([{ config: config(1), rows: [row(a, missKinds(a))] }, { config: config(2), rows: [row([ask('56', '7'), ask('78', '78')])] }]);
    assert.deepStrictEqual(p.rows[0].misses, { otherFact: 1, stoppedEarly: 1, wrong: 1 });
    const bare = { ...row([]), answers: undefined };
    assert.strictEqual(pooled([{ config: config(1), rows: [row(a)] }, { config: config(2), rows: [bare] }]).rows[0].misses, undefined, 'not summed over a seed without answers');
  });

  it('N in binary units, as asked', () => {
    assert.deepStrictEqual([0, 900, 8192, 163840, 1_000_000, 1_048_576, 3 * 1_048_576 / 2].map(kTokens), ['0', '900', '8k', '160k', '977k', '1M', '1.5M']);
  });

  it('--seed lists and ranges', () => {
    assert.deepStrictEqual(parseSeeds('7'), [7]);
    assert.deepStrictEqual(parseSeeds('19-22'), [19, 20, 21, 22]);
    assert.deepStrictEqual(parseSeeds('1,4,7-9, 4'), [1, 4, 7, 8, 9]);
    for (const bad of ['0', '5-3', 'x', '1,,2', '-3', '1-2-3']) assert.throws(() => parseSeeds(bad), /--seed must be positive integers or ranges such as 19-36/, bad);
    assert.strictEqual(seedList([1, 4, 7, 8, 9]), '1, 4, 7–9');
    assert.strictEqual(seedList(parseSeeds('19-36')), '19–36');
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
