/**
 * `mplus bench retention --model DIR [--tokens 0,8192,32768] [--facts 16] [--seed 1] [--json]`:
 * knowledge retention through the real sidecar, as the authors' test_qa_memory.py measures it.
 * Per N: a fresh repository and store; F constants with freshly drawn names and values are fed
 * first (one file each), then N tokens of unrelated real code (JavaScript from this install's
 * node_modules, in ~4k-token files), then every fact is asked ("What is the value of NAME?",
 * greedy, 24 tokens); exact hit = the value appears in the answer.
 *
 * This measures M+ (Θ on) as the product runs it. θ only (Θ off, MemoryLLM) has no switch in the
 * engine; `python3 -m training.mplus.evaluate` measures both with the trainer's forward, which
 * `training.mplus.verify` shows computes what the product computes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { Rng } from '../../src/util/rng';
import { TextTokenizer } from '../../src/model/tokenizer';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ask, Ingest } from '../../src/sidecar/protocol';

const SYL = ['ka', 'lo', 'mi', 'ren', 'tor', 'vex', 'sul', 'pha', 'dri', 'nox', 'bel', 'qua', 'zin', 'gor', 'fen', 'wil'];
// Real code unrelated to the facts; devDependencies included (a development benchmark).
const DISTRACTOR_PACKAGES = ['markdown-it', 'protobufjs', 'vscode-jsonrpc', 'mocha', 'typescript'];
const PART_TOKENS = 4096;

export interface RetentionRow { tokens: number; tokensFed: number; facts: number; hits: number; exact: number; seconds: number }

interface Fact { name: string; value: string; file: string }

function drawFacts(rng: Rng, n: number): Fact[] {
  const word = () => Array.from({ length: 2 + rng.int(2) }, () => SYL[rng.int(SYL.length)]).join('').toUpperCase();
  const seen = new Set<string>();
  const out: Fact[] = [];
  while (out.length < n) {
    const name = `${word()}_${word()}`;
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ name, value: String(rng.int(1_000_000)), file: `src/${word().toLowerCase()}/${name.toLowerCase()}.ts` });
  }
  return out;
}

/** JavaScript sources of DISTRACTOR_PACKAGES, in a fixed order. */
function* distractorTexts(): Generator<string> {
  const walk = function* (dir: string): Generator<string> {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && e.name !== 'node_modules') yield* walk(p);
      else if (e.isFile() && /\.js$/.test(e.name) && !/\.min\./.test(e.name)) yield fs.readFileSync(p, 'utf8');
    }
  };
  for (const pkg of DISTRACTOR_PACKAGES) {
    let dir: string;
    try { dir = path.dirname(require.resolve(`${pkg}/package.json`)); } catch { continue; }
    yield* walk(dir);
  }
}

/** Writes ≈ n tokens of real code as files under dir/vendor; returns the tokens written. */
function writeDistractors(dir: string, n: number, tok: TextTokenizer): number {
  if (n <= 0) return 0;
  fs.mkdirSync(path.join(dir, 'vendor'), { recursive: true });
  let total = 0;
  let part: string[] = [];
  let partTokens = 0;
  let k = 0;
  const flush = () => {
    fs.writeFileSync(path.join(dir, 'vendor', `part-${String(k++).padStart(4, '0')}.js`), part.join('\n'));
    part = [];
    partTokens = 0;
  };
  for (const text of distractorTexts()) {
    for (const line of text.split('\n')) {
      const t = tok.countTokens(line + '\n');
      part.push(line);
      partTokens += t;
      total += t;
      if (partTokens >= PART_TOKENS) flush();
      if (total >= n) {
        flush();
        return total;
      }
    }
  }
  if (part.length) flush();
  if (total < n) throw new Error(`only ${total} tokens of distractor code found in ${DISTRACTOR_PACKAGES.join(', ')} (asked ${n})`);
  return total;
}

export async function benchRetention(opts: { model: string; tokens: number[]; facts: number; seed: number; log?: (s: string) => void }): Promise<RetentionRow[]> {
  const tok = await TextTokenizer.fromDir(opts.model);
  const rows: RetentionRow[] = [];
  for (const n of opts.tokens) {
    const t0 = performance.now();
    const facts = drawFacts(new Rng(opts.seed * 7919 + n), opts.facts);
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-retention-repo-'));
    const store = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-retention-store-'));
    const h = spawnSidecar({ onStderr: () => undefined });
    try {
      for (const f of facts) {
        fs.mkdirSync(path.dirname(path.join(repo, f.file)), { recursive: true });
        fs.writeFileSync(path.join(repo, f.file), `export const ${f.name} = ${f.value};\n`);
      }
      await initialize(h.connection, { modelDir: opts.model, storeDir: store, device: 'auto', workspaceFolders: [repo], watch: false, seed: opts.seed });
      // Facts first, then the distractors: the second ingest feeds only the new files.
      const first = await h.connection.sendRequest(Ingest, { paths: 'all' });
      writeDistractors(repo, n, tok);
      const second = await h.connection.sendRequest(Ingest, { paths: ['vendor'] });
      let hits = 0;
      for (const f of facts) {
        const r = await h.connection.sendRequest(Ask, { question: `What is the value of ${f.name}?`, maxTokens: 24, temperature: 0 });
        if (r.answer.includes(f.value)) hits++;
      }
      const row = { tokens: n, tokensFed: first.tokensInjected + second.tokensInjected, facts: facts.length, hits, exact: hits / facts.length, seconds: (performance.now() - t0) / 1000 };
      rows.push(row);
      opts.log?.(`${String(n).padStart(9)} ${String(row.tokensFed).padStart(10)} ${`${hits}/${facts.length}`.padStart(7)} ${(100 * row.exact).toFixed(1).padStart(6)}% ${row.seconds.toFixed(0).padStart(6)}`);
      await shutdown(h);
    } finally {
      h.process.kill('SIGKILL');
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(store, { recursive: true, force: true });
    }
  }
  return rows;
}

export async function benchRetentionCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, tokens: { type: 'string' }, facts: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' } } });
  const model = values.model ?? process.env.MPLUS_MODEL;
  if (!model) throw new Error('bench retention needs --model DIR (or MPLUS_MODEL): a trained checkpoint');
  const tokens = (values.tokens ?? '0,8192,32768').split(',').map(Number);
  if (!tokens.every((t) => Number.isInteger(t) && t >= 0)) throw new Error(`--tokens must be a comma-separated list of token counts, got ${values.tokens}`);
  const facts = Number(values.facts ?? 16);
  const seed = Number(values.seed ?? 1);
  if (!values.json) console.log(`${'N tokens'.padStart(9)} ${'fed'.padStart(10)} ${'hits'.padStart(7)} ${'exact'.padStart(7)} ${'s'.padStart(6)}   (M+, through the sidecar; model ${model})`);
  const rows = await benchRetention({ model: path.resolve(model), tokens, facts, seed, log: values.json ? undefined : (s) => console.log(s) });
  if (values.json) console.log(JSON.stringify({ model, rows }));
}
