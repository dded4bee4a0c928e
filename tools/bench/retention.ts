/**
 * `mplus bench retention [--model DIR] [--tokens 0,8192,32768] [--facts 16] [--seed 1|19-36|1,4,7-9]
 *  [--modes theta,mplus] [--precision P] [--out BASE] [--min-exact X] [--json]`: knowledge retention through the real sidecar, as
 * the authors' test_qa_memory.py measures it, for θ only (Θ off: MemoryLLM, `initialize.thetaOnly`)
 * and for M+. Per N and mode: a fresh repository and store; F constants with freshly drawn names
 * and values (never from training data) are fed first (one file each), then N tokens of
 * unrelated real code (JavaScript from this install's node_modules, in ~4k-token files, lines of
 * data left out: see MAX_CODE_LINE), then
 * every fact is asked ("What is the value of NAME?", greedy); exact hit = the value appears in the
 * answer. Both modes see the same facts, code and drop seed. Each miss is sorted by kind
 * (retentionReport.missKinds): another fact's value (binding), stopped early (a proper beginning
 * of the value: the read ended after the digits it held), or wrong.
 *
 * Retrieval is measured from provenance (`ask.retrieval`): per fact and layer, the share of the
 * fact file's memory rows among the candidates that were retrieved (the paper's figure), and the
 * fact's share of what was retrieved and of θ.
 *
 * --out BASE writes BASE.md (table), BASE.svg (exact hit vs N, two lines) and BASE.json after
 * every (N, mode); a rerun with the same --out, model, facts and seed resumes after the last one
 * finished. Each row records its own cost (seconds, feed tokens/s, ms per question, sidecar peak
 * memory).
 *
 * --seed takes a list or ranges (`19-36`, `1,4,7-9`): each seed is a run of its own, written as
 * BASE-sSEED (resumable as above), then BASE is their pool (retentionReport.pooled: questions and
 * hits summed per (N, mode), with the rate's standard error). Four facts a seed is what a small
 * model's θ holds, so a figure worth comparing needs many seeds: 18 seeds ask 72 questions a cell,
 * ±6 points. Two processes with disjoint seed lists and the same --out can share the work; a
 * last run over all the seeds measures nothing again and writes the whole pool.
 *
 * --min-exact X makes it a check (CI runs one on the shipped model): the command fails, naming
 * every M+ row below X, after the table is written. θ only is never held to it: it is meant to
 * forget.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { Rng } from '../../src/util/rng';
import { TextTokenizer } from '../../src/model/tokenizer';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { resolveModel } from '../../src/sidecar/defaultModel';
import { Ask, Ingest, LayerRetrieval, PRECISIONS, Precision, Progress, isPrecision } from '../../src/sidecar/protocol';
import { MODE_NAMES, RetentionMode, missKinds, missText, RetentionRow, RetentionRun, kTokens, meanOf, pooled, readResumable, standardError, tableOrder, writeRun } from './retentionReport';

const SYL = ['ka', 'lo', 'mi', 'ren', 'tor', 'vex', 'sul', 'pha', 'dri', 'nox', 'bel', 'qua', 'zin', 'gor', 'fen', 'wil'];
// Real code unrelated to the facts; devDependencies included (a development benchmark).
const DISTRACTOR_PACKAGES = ['markdown-it', 'protobufjs', 'vscode-jsonrpc', 'mocha', 'typescript'];
const PART_TOKENS = 4096;
/**
 * Lines longer than this are data, not code, and are left out of the distractors: markdown-it's
 * bundle holds an 18,609-character Unicode decode trie, mocha's HTML-entity maps (40k characters of
 * NAME → value pairs), typescript's Unicode range tables; ~30 lines in all. Fed whole, one such line
 * was most of every N ≥ 4k: N = 4k and 8k both fed ~23k model tokens, three quarters of them that
 * trie (2026-12-05). Code lines this long are a handful, and leaving them out costs nothing.
 */
export const MAX_CODE_LINE = 1000;

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

/**
 * Writes real code as ~PART_TOKENS-token files under dir/vendor, continuing where the last call
 * stopped: discovery may keep some parts out (minified lines, a secret-looking string), so the
 * caller writes more until the sidecar has really injected N tokens.
 */
export class DistractorWriter {
  private readonly lines: Generator<string>;
  private k = 0;
  constructor(private readonly dir: string, private readonly tok: TextTokenizer) {
    this.lines = (function* () {
      for (const text of distractorTexts()) for (const line of text.split('\n')) if (line.length <= MAX_CODE_LINE) yield line;
    })();
  }

  /** Writes ≈ n more tokens; returns the tokens written (fewer only when the sources run out). */
  write(n: number): number {
    fs.mkdirSync(path.join(this.dir, 'vendor'), { recursive: true });
    let total = 0;
    let part: string[] = [];
    let partTokens = 0;
    const flush = () => {
      if (part.length) fs.writeFileSync(path.join(this.dir, 'vendor', `part-${String(this.k++).padStart(5, '0')}.js`), part.join('\n'));
      part = [];
      partTokens = 0;
    };
    while (total < n) {
      const next = this.lines.next();
      if (next.done) break;
      const t = this.tok.countTokens(next.value + '\n');
      part.push(next.value);
      partTokens += t;
      total += t;
      if (partTokens >= PART_TOKENS) flush();
    }
    flush();
    return total;
  }
}

export interface RetentionOptions {
  model: string;
  tokens: number[];
  facts: number;
  seed: number;
  modes?: RetentionMode[];
  maxTokens?: number;
  /** Weight precision of the sidecar's engine (default: the sidecar's own, f32 on the CPU). */
  precision?: Precision;
  /** Write BASE.md/.svg/.json after each row and resume from BASE.json. */
  out?: string;
  log?: (s: string) => void;
}

/** Per-fact retrieval figures from one question's per-layer report. */
function factFigures(file: string, layers: LayerRetrieval[], N: number) {
  const rows = (xs: Array<{ path: string; rows: number }>) => xs.find((f) => f.path === file)?.rows ?? 0;
  const byLayer: Array<number | null> = [];
  const share: number[] = [];
  const stm: number[] = [];
  for (const l of layers) {
    const have = rows(l.candidatesByFile);
    const got = rows(l.retrievedByFile);
    byLayer.push(have > 0 ? got / have : null);
    if (l.retrieved > 0) share.push(got / l.retrieved);
    stm.push(rows(l.stmByFile) / N);
  }
  return { recall: byLayer.filter((x): x is number => x !== null), byLayer, share, stm };
}

/** Peak resident memory of a process in MiB (Linux), or null. */
function peakMiB(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null; // not Linux, or the process is gone
  }
}

async function measure(opts: RetentionOptions, tok: TextTokenizer, n: number, mode: RetentionMode): Promise<RetentionRow> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const facts = drawFacts(new Rng(opts.seed * 7919 + n), opts.facts);
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-retention-repo-'));
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-retention-store-'));
  const h = spawnSidecar({ onStderr: () => undefined });
  let lastProgress = Date.now();
  h.connection.onNotification(Progress, (p) => {
    if (Date.now() - lastProgress < 15000) return;
    lastProgress = Date.now();
    log(`    ${MODE_NAMES[mode]}, N = ${kTokens(n)}: ${p.chunksDone}/${p.chunksTotal} chunks, ${p.tokensPerSecond.toFixed(0)} tok/s${p.etaSeconds === null ? '' : `, ETA ${Math.ceil(p.etaSeconds)} s`}`);
  });
  try {
    for (const f of facts) {
      fs.mkdirSync(path.dirname(path.join(repo, f.file)), { recursive: true });
      fs.writeFileSync(path.join(repo, f.file), `export const ${f.name} = ${f.value};\n`);
    }
    const init = await initialize(h.connection, { modelDir: opts.model, storeDir: store, device: 'auto', workspaceFolders: [repo], watch: false, seed: opts.seed, thetaOnly: mode === 'theta', precision: opts.precision });
    // Facts first, then the distractors: the second ingest feeds only the new files.
    const tf = performance.now();
    const first = await h.connection.sendRequest(Ingest, { paths: 'all' });
    let feedSeconds = (performance.now() - tf) / 1000;
    // N tokens really injected: parts discovery keeps out are replaced by more code.
    const writer = new DistractorWriter(repo, tok);
    let codeFed = 0;
    while (codeFed < n) {
      if (writer.write(n - codeFed) === 0) throw new Error(`only ${codeFed} tokens of distractor code could be fed from ${DISTRACTOR_PACKAGES.join(', ')} (asked ${n})`);
      const tg = performance.now();
      codeFed += (await h.connection.sendRequest(Ingest, { paths: ['vendor'] })).tokensInjected;
      feedSeconds += (performance.now() - tg) / 1000;
    }
    const tokensFed = first.tokensInjected + codeFed;
    let hits = 0;
    const recall: number[] = [];
    const recallByLayer: number[][] = [];
    const share: number[] = [];
    const stm: number[] = [];
    let candidateRows = 0;
    const answers: RetentionRow['answers'] = [];
    const ta = performance.now();
    for (const f of facts) {
      const r = await h.connection.sendRequest(Ask, { question: `What is the value of ${f.name}?`, maxTokens: opts.maxTokens ?? 24, temperature: 0, retrieval: true });
      if (r.answer.includes(f.value)) hits++;
      answers.push({ name: f.name, value: f.value, file: f.file, answer: r.answer });
      const fig = factFigures(f.file, r.retrieval ?? [], init.model.stmTokens);
      recall.push(...fig.recall);
      fig.byLayer.forEach((x, l) => {
        recallByLayer[l] ??= [];
        if (x !== null) recallByLayer[l].push(x);
      });
      share.push(...fig.share);
      stm.push(...fig.stm);
      candidateRows = r.retrieval?.[0]?.candidates ?? 0;
    }
    const askMs = (performance.now() - ta) / facts.length;
    const sidecarPeakMiB = peakMiB(h.process.pid);
    await shutdown(h);
    return {
      mode, tokens: n, tokensFed, facts: facts.length, hits, exact: hits / facts.length,
      factRowsRetrieved: meanOf(recall), factRowsRetrievedByLayer: Array.from(recallByLayer, (xs) => meanOf(xs ?? [])), factShareOfRetrieved: meanOf(share), factShareOfStm: meanOf(stm) ?? 0, candidateRows,
      seconds: (performance.now() - t0) / 1000, feedTokensPerS: tokensFed / Math.max(feedSeconds, 1e-9), askMs, sidecarPeakMiB, answers, misses: missKinds(answers),
    };
  } finally {
    h.process.kill('SIGKILL');
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(store, { recursive: true, force: true });
  }
}

export async function benchRetention(opts: RetentionOptions): Promise<RetentionRun> {
  const tok = await TextTokenizer.fromDir(opts.model);
  // A precision joins the config only when set, so runs from before the flag still resume.
  // maxCodeLine marks rows fed the distractors without data lines: rows from before are measured again.
  const config = { model: opts.model, facts: opts.facts, seed: opts.seed, maxTokens: opts.maxTokens ?? 24, maxCodeLine: MAX_CODE_LINE, ...(opts.precision ? { precision: opts.precision } : {}) };
  const run: RetentionRun = {
    config,
    rows: opts.out ? readResumable(opts.out, config, (differs) => opts.log?.(`  ${opts.out}.json was measured otherwise (${differs.join(', ') || 'unreadable rows'}): measuring afresh, overwriting it`)) : [],
  };
  const title = runTitle(opts, `${opts.facts} facts, seed ${opts.seed}`);
  for (const n of opts.tokens) {
    for (const mode of opts.modes ?? ['theta', 'mplus']) {
      if (run.rows.some((r) => r.tokens === n && r.mode === mode)) {
        opts.log?.(`  N = ${kTokens(n)}, ${MODE_NAMES[mode]}: done in an earlier run (${opts.out}.json), skipped`);
        continue;
      }
      opts.log?.(`  N = ${kTokens(n)}, ${MODE_NAMES[mode]}: feeding ${opts.facts} facts and ${n} tokens of code…`);
      const row = await measure(opts, tok, n, mode);
      run.rows.push(row);
      if (opts.out) writeRun(opts.out, run, title);
      const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
      opts.log?.(`  N = ${kTokens(n)}, ${MODE_NAMES[mode]}: exact ${row.hits}/${row.facts} (${pct(row.exact)}; misses: ${missText(row.misses)}), fact rows retrieved ${pct(row.factRowsRetrieved)}, ` +
        `fact share of retrieved ${pct(row.factShareOfRetrieved)}, of θ ${pct(row.factShareOfStm)}; ${row.candidateRows} candidate rows/layer (Θ + cache); ` +
        `${row.tokensFed} tokens fed at ${row.feedTokensPerS.toFixed(0)} tok/s, ${row.askMs.toFixed(0)} ms/question, ${row.seconds.toFixed(0)} s`);
    }
  }
  if (opts.out) writeRun(opts.out, run, title); // also when every row was resumed: the files follow the code
  return run;
}

const runTitle = (opts: Omit<RetentionOptions, 'seed'>, what: string) =>
  `Retention through the sidecar: ${path.basename(opts.model)}${opts.precision ? ` at ${opts.precision}` : ''}, ${what}`;

/**
 * benchRetention for each seed in turn, each written as OUT-sSEED (and resumed from it), then the
 * seeds' pool, written as OUT.
 */
export async function benchRetentionSeeds(opts: Omit<RetentionOptions, 'seed'>, seeds: number[]): Promise<RetentionRun> {
  const runs: RetentionRun[] = [];
  for (const [i, seed] of seeds.entries()) {
    opts.log?.(`seed ${seed} (${i + 1} of ${seeds.length})`);
    runs.push(await benchRetention({ ...opts, seed, out: opts.out && `${opts.out}-s${seed}` }));
  }
  const run = pooled(runs);
  if (opts.out) writeRun(opts.out, run, runTitle(opts, `${opts.facts} facts a seed, ${seeds.length} seeds (${seedList(seeds)})`));
  for (const r of [...run.rows].sort(tableOrder)) {
    opts.log?.(`  pooled: N = ${kTokens(r.tokens)}, ${MODE_NAMES[r.mode]}: exact ${r.hits}/${r.facts} (${(100 * r.exact).toFixed(1)}% ± ${standardError(r).toFixed(1)}; misses: ${missText(r.misses)})` +
      (r.factRowsRetrieved === null ? '' : `, fact rows retrieved ${(100 * r.factRowsRetrieved).toFixed(1)}%`));
  }
  return run;
}

/** `19-36`, `1,4,7-9`, `5`: the seeds in the order given, each once. */
export function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const [a, b] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [0, -1];
    if (!m || a < 1 || b < a) throw new Error(`--seed must be positive integers or ranges such as 19-36 or 1,4,7-9, got ${spec}`);
    for (let s = a; s <= b; s++) if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** The inverse of parseSeeds for a title: runs of consecutive seeds as ranges. */
export function seedList(seeds: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seeds.length;) {
    let j = i;
    while (j + 1 < seeds.length && seeds[j + 1] === seeds[j] + 1) j++;
    parts.push(j > i ? `${seeds[i]}–${seeds[j]}` : String(seeds[i]));
    i = j + 1;
  }
  return parts.join(', ');
}

/** M+ rows whose exact-hit rate is below `min`, one line each (θ only rows are never held to it). */
export function shortfalls(rows: RetentionRow[], min: number): string[] {
  return rows.filter((r) => r.mode === 'mplus' && r.exact < min)
    .map((r) => `N = ${kTokens(r.tokens)}: ${r.hits}/${r.facts} (${(100 * r.exact).toFixed(1)}%)`);
}

export async function benchRetentionCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, tokens: { type: 'string' }, facts: { type: 'string' }, seed: { type: 'string' },
      modes: { type: 'string' }, out: { type: 'string' }, 'max-tokens': { type: 'string' }, json: { type: 'boolean' },
      precision: { type: 'string' }, 'min-exact': { type: 'string' },
    },
  });
  const resolved = resolveModel([values.model, process.env.MPLUS_MODEL]);
  if (!resolved) throw new Error('bench retention needs a checkpoint: --model DIR, MPLUS_MODEL, or the bundled models/mplus-lookup/');
  const tokens = (values.tokens ?? '0,8192,32768').split(',').map(Number);
  if (!tokens.every((t) => Number.isInteger(t) && t >= 0)) throw new Error(`--tokens must be a comma-separated list of token counts, got ${values.tokens}`);
  const modes = (values.modes ?? 'theta,mplus').split(',') as RetentionMode[];
  if (!modes.length || !modes.every((m) => m in MODE_NAMES)) throw new Error(`--modes must be theta, mplus or both (comma-separated), got ${values.modes}`);
  const num = (v: string | undefined, name: string, def: number) => {
    const x = Number(v ?? def);
    if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return x;
  };
  if (values.precision !== undefined && !isPrecision(values.precision)) throw new Error(`--precision must be one of ${PRECISIONS.join(', ')}, got ${values.precision}`);
  const minExact = values['min-exact'] === undefined ? null : Number(values['min-exact']);
  if (minExact !== null && !(minExact >= 0 && minExact <= 1)) throw new Error(`--min-exact must be a rate between 0 and 1, got ${values['min-exact']}`);
  if (minExact !== null && !modes.includes('mplus')) throw new Error('--min-exact holds M+ rows to a rate: add mplus to --modes');
  const log = values.json ? undefined : (s: string) => console.log(s);
  log?.(`bench retention: model ${resolved.dir}${resolved.label ? ` (${resolved.label})` : ''}; N = ${tokens.join(', ')}; ${modes.map((m) => MODE_NAMES[m]).join(' and ')}, through the real sidecar`);
  const seeds = parseSeeds(values.seed ?? '1');
  const opts = {
    model: resolved.dir, tokens, modes, facts: num(values.facts, 'facts', 16),
    maxTokens: num(values['max-tokens'], 'max-tokens', 24), precision: values.precision as Precision | undefined, out: values.out && path.resolve(values.out), log,
  };
  const run = seeds.length === 1 ? await benchRetention({ ...opts, seed: seeds[0] }) : await benchRetentionSeeds(opts, seeds);
  if (values.json) console.log(JSON.stringify(run));
  else if (values.out) console.log(`wrote ${values.out}.md, ${values.out}.svg, ${values.out}.json`);
  if (minExact !== null) {
    const short = shortfalls(run.rows, minExact);
    if (short.length) throw new Error(`bench retention: ${resolved.dir} answered below --min-exact ${minExact} with M+ at ${short.join('; ')}`);
    log?.(`bench retention: every M+ row reached --min-exact ${minExact}`);
  }
}
