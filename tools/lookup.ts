/**
 * `mplus lookup [--repo .] [--model DIR] [--store DIR] [--seed S] [--all] [--alone] [--json]`: the checkable
 * question `npm start` asks a lookup model (one whose checkpoint has question_template.txt).
 * Picks a constant of the repository with tree-sitter (src/workspace/constants.ts; UPPER_CASE
 * names defined once, values of 3+ characters, seeded choice), feeds the repository into its
 * memory store (files already fed are skipped), asks "What is the value of NAME?" greedily, and
 * says whether the answer contains the literal — the exact-hit rule of `mplus bench retention`.
 * --all asks every such constant, one line each, then the share answered right: the lookup
 * accuracy on a real repository's own chunks, names and values (bench retention's facts are
 * one-line files with drawn names).
 * --alone feeds each asked constant's file alone into a fresh memory (mplus/rebuild before each,
 * then mplus/ingest naming that file): whether the model reads a constant out of its own file's
 * chunks at all, apart from finding it among the rest of the repository. Its store lies in a
 * temporary folder, with the stores every rebuild moves aside beside it, removed at the end (so
 * --store, which would collect one moved-aside store per question, is refused with it).
 * Exit 0 whether the answers are right or wrong (the verdict is the output); 1 when it cannot run.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { defaultStoreDir } from '../src/cli/sidecarCommands';
import { resolveModel, type ResolvedModel } from '../src/sidecar/defaultModel';
import { initialize, shutdown, spawnSidecar } from '../src/sidecar/client';
import { Ask, Ingest, Rebuild } from '../src/sidecar/protocol';
import { Chunker, discover, valueConstants } from '../src/workspace';
import { Rng } from '../src/util/rng';

export interface LookupQuestion {
  name: string;
  value: string;
  file: string;
  line: number;
}

/**
 * A shorter literal ("1", "42") turns up in a wrong answer by chance often enough that a hit
 * would prove nothing.
 */
const MIN_VALUE_CHARS = 3;

/** UPPER_CASE constants defined exactly once in the repository, in path/line order, with checkable values. */
export async function lookupCandidates(repo: string): Promise<LookupQuestion[]> {
  const chunker = await Chunker.create({ languages: ['typescript', 'tsx', 'javascript', 'python'] });
  try {
    const { files } = await discover([repo]);
    const seen = new Map<string, LookupQuestion[]>();
    for (const f of files.sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
      if (!chunker.languageOf(f.rel)) continue;
      for (const c of valueConstants(chunker, { rel: f.rel, text: fs.readFileSync(f.abs, 'utf8') })) {
        if (!/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/.test(c.name)) continue;
        seen.set(c.name, [...(seen.get(c.name) ?? []), { name: c.name, value: c.value, file: f.rel, line: c.line }]);
      }
    }
    return [...seen.values()].filter((xs) => xs.length === 1 && xs[0].value.length >= MIN_VALUE_CHARS).map((xs) => xs[0]);
  } finally {
    chunker.dispose();
  }
}

export async function lookupCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { repo: { type: 'string' }, model: { type: 'string' }, store: { type: 'string' }, seed: { type: 'string' }, all: { type: 'boolean' }, alone: { type: 'boolean' }, json: { type: 'boolean' } } });
  const repo = path.resolve(values.repo ?? '.');
  const model = resolveModel([values.model, process.env.MPLUS_MODEL]);
  if (!model) throw new Error('lookup needs a checkpoint: --model DIR, MPLUS_MODEL, or the bundled models/mplus-lookup/');
  const seed = Number(values.seed ?? 1);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const all = await lookupCandidates(repo);
  if (!all.length) throw new Error(`${repo}: no UPPER_CASE constant with a literal value (TypeScript, JavaScript, Python) to ask about`);
  const asked = values.all ? all : [all[new Rng(seed).int(all.length)]];
  if (values.alone && values.store) throw new Error('--alone feeds each file into a temporary store of its own (one rebuild per question): leave out --store');
  const tempStore = values.alone ? fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-lookup-alone-')) : null;
  try {
    await askAll(values, repo, model, asked, all.length, tempStore);
  } finally {
    // Outside the sidecar's try: a spawn that throws still leaves no temporary folder behind.
    if (tempStore) fs.rmSync(tempStore, { recursive: true, force: true });
  }
}

interface LookupFlags { store?: string; alone?: boolean; all?: boolean; json?: boolean }

/** Feeds the repository (or, alone, each question's file into a fresh memory in tempStore) and asks. */
async function askAll(values: LookupFlags, repo: string, model: ResolvedModel, asked: LookupQuestion[], candidates: number, tempStore: string | null): Promise<void> {
  const h = spawnSidecar({ onStderr: () => undefined });
  try {
    await initialize(h.connection, { modelDir: model.dir, storeDir: tempStore ? path.join(tempStore, 'store') : path.resolve(values.store ?? defaultStoreDir(repo)), device: 'auto', workspaceFolders: [repo], watch: false, rebuildStore: true });
    if (!values.alone) await h.connection.sendRequest(Ingest, { paths: 'all' });
    if (!values.json) console.log(`model:    ${model.dir}${model.label ? ` (${model.label})` : ''}`);
    let right = 0;
    for (const q of asked) {
      // Alone: a fresh memory holding this file's chunks only (filesFed says so in --json).
      let filesFed: number | undefined;
      if (values.alone) {
        await h.connection.sendRequest(Rebuild);
        filesFed = (await h.connection.sendRequest(Ingest, { paths: [q.file] })).filesDone;
      }
      const question = `What is the value of ${q.name}?`;
      const r = await h.connection.sendRequest(Ask, { question, maxTokens: Math.max(24, q.value.length + 8), temperature: 0 });
      const ok = r.answer.includes(q.value);
      right += ok ? 1 : 0;
      if (values.json) console.log(JSON.stringify({ ...q, question, answer: r.answer, right: ok, model: model.dir, ...(filesFed === undefined ? {} : { filesFed }) }));
      else if (values.all) console.log(`${ok ? 'right' : 'WRONG'}  ${q.name} (${q.file}:${q.line}) = ${q.value}; answer ${JSON.stringify(r.answer.trim())}`);
      else {
        console.log(`question: ${question}   (${q.file}:${q.line}, one of ${candidates} constants)`);
        console.log(`answer:   ${JSON.stringify(r.answer.trim())}`);
        console.log(`expected: ${q.value}`);
        console.log(ok ? 'right: the answer contains the value' : 'WRONG: the answer does not contain the value');
      }
    }
    await shutdown(h);
    if (values.all) {
      const summary = { asked: asked.length, right, exact: right / asked.length };
      console.log(values.json ? JSON.stringify({ summary }) : `${right}/${asked.length} right (${(100 * summary.exact).toFixed(1)}%)`);
    }
  } finally {
    h.process.kill('SIGKILL');
  }
}
