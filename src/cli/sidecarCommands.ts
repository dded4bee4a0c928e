/**
 * The CLI as a second client of the sidecar protocol (the extension is the first):
 *   mplus ingest <repo> | ask "<question>" | status | forget <path>… | serve
 * with the common flags --model DIR --store DIR --device auto|cuda|webgpu|cpu --json.
 * `ingest` survives a sidecar crash: it restarts the sidecar, which reopens the store at its last
 * commit, and resumes (already-fed chunks are skipped), saying so.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { parseArgs } from 'util';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { SidecarHandle, initialize, shutdown, spawnSidecar } from '../sidecar/client';
import { resolveModel } from '../sidecar/defaultModel';
import { defaultStoreParent, storeDirUnder } from '../sidecar/storeDir';
import {
  AnswerSources, AnswerToken, Ask, AskResult, DEVICE_REQUESTS, DeviceRequest, Forget, Ingest, IngestResult, InitializeResult, Log, Progress,
  ProgressParams, PRECISIONS, Precision, StateChanged, Status, Verify, isDeviceRequest, isPrecision,
} from '../sidecar/protocol';

export class CliUsageError extends Error {}

export interface CommonFlags {
  model: string;
  store: string;
  device: DeviceRequest;
  precision: Precision;
  json: boolean;
  repo: string;
  seed?: number;
  /** Move a damaged or foreign store aside and start an empty one. */
  rebuild: boolean;
  /** The checkpoint's label (the bundled one: "a small model for lookup questions"), or null. */
  modelLabel: string | null;
}

const COMMON = {
  model: { type: 'string' },
  store: { type: 'string' },
  device: { type: 'string' },
  precision: { type: 'string' },
  repo: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
  rebuild: { type: 'boolean' },
  verify: { type: 'boolean' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
} as const;

/** Where a repository's memory lives by default: under the user's cache, never inside the repo. */
export function defaultStoreDir(repo: string): string {
  return storeDirUnder(defaultStoreParent(), [repo]);
}

function common(values: Record<string, unknown>, repo: string): CommonFlags {
  // --model, then MPLUS_MODEL, then the checkpoint bundled in models/mplus-lookup/.
  const resolved = resolveModel([values.model as string | undefined, process.env.MPLUS_MODEL]);
  if (!resolved) throw new CliUsageError('--model DIR is required (or set MPLUS_MODEL): a checkpoint folder (see README, "Using a real checkpoint")');
  const model = resolved.dir;
  const device = (values.device as string | undefined) ?? 'auto';
  if (!isDeviceRequest(device)) throw new CliUsageError(`--device must be ${DEVICE_REQUESTS.join(', ')}, got ${device}`);
  const precision = (values.precision as string | undefined) ?? 'f32';
  if (!isPrecision(precision)) throw new CliUsageError(`--precision must be ${PRECISIONS.join(', ')}, got ${precision}`);
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !Number.isInteger(seed)) throw new CliUsageError('--seed must be an integer');
  return {
    model: path.resolve(model),
    store: path.resolve((values.store as string | undefined) ?? defaultStoreDir(repo)),
    device,
    precision,
    json: !!values.json,
    repo: path.resolve(repo),
    seed,
    rebuild: !!values.rebuild,
    modelLabel: resolved.label,
  };
}

/** One JSON object per line on stdout (--json), or human text. */
class Output {
  constructor(readonly json: boolean) {}
  event(type: string, data: object): void {
    if (this.json) process.stdout.write(JSON.stringify({ type, ...data }) + '\n');
  }
  info(text: string): void {
    if (!this.json) process.stderr.write(text + '\n');
  }
}

async function connect(f: CommonFlags, out: Output, verbose = false): Promise<{ h: SidecarHandle; init: InitializeResult }> {
  // Own process group: Ctrl-C in the terminal reaches the CLI alone, which cancels at a safe point.
  const h = spawnSidecar({ ownProcessGroup: true, onStderr: (l) => (verbose || process.env.MPLUS_DEBUG) && process.stderr.write(`[sidecar] ${l}\n`) });
  h.connection.onNotification(Log, (p) => {
    out.event('log', p);
    if (!out.json && (p.level === 'warn' || p.level === 'error' || process.env.MPLUS_DEBUG)) process.stderr.write(`${p.level}: ${p.message}\n`);
  });
  h.connection.onNotification(StateChanged, (p) => out.event('state', p));
  try {
    const init = await initialize(h.connection, {
      modelDir: f.model, storeDir: f.store, device: f.device, precision: f.precision, workspaceFolders: [f.repo], seed: f.seed,
      // One-shot commands: no watcher; a resumed ingest must not rebuild twice.
      watch: false, rebuildStore: f.rebuild,
    });
    out.event('initialized', init);
    out.info(`model: ${f.model}${f.modelLabel ? ` (${f.modelLabel})` : ''}`);
    out.info(`device: ${init.device.description}`);
    if (init.storeNotice) out.info(`store: ${init.storeNotice}`);
    return { h, init };
  } catch (e) {
    h.process.kill('SIGKILL');
    throw e;
  }
}

function bar(p: ProgressParams): string {
  const width = 28;
  const frac = p.chunksTotal ? p.chunksDone / p.chunksTotal : p.filesTotal ? p.filesDone / p.filesTotal : 0;
  const done = Math.round(frac * width);
  const eta = p.etaSeconds === null ? '' : ` ETA ${Math.ceil(p.etaSeconds)}s`;
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.filesDone}/${p.filesTotal} files ${p.chunksDone}/${p.chunksTotal} chunks ${p.tokensPerSecond.toFixed(0)} tok/s${eta}`;
}

export async function cmdIngest(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true });
  const repo = positionals[0] ?? (values.repo as string | undefined) ?? '.';
  const f = common(values, repo);
  const out = new Output(f.json);
  const tty = !f.json && process.stderr.isTTY;
  const maxRestarts = 3;
  for (let attempt = 0; ; attempt++) {
    const { h } = await connect(attempt === 0 ? f : { ...f, rebuild: false }, out);
    h.connection.onNotification(Progress, (p) => {
      out.event('progress', p);
      if (tty) process.stderr.write(`\r${bar(p)}\x1b[K`);
    });
    const cts = new CancellationTokenSource();
    const onSig = () => {
      out.info('\ncancelling at the next safe point (what was fed is committed)…');
      cts.cancel();
    };
    process.once('SIGINT', onSig);
    try {
      const r: IngestResult = await Promise.race([
        h.connection.sendRequest(Ingest, { paths: 'all' }, cts.token),
        h.exited.then((code) => { throw new SidecarDied(code); }),
      ]);
      if (tty) process.stderr.write('\n');
      out.event('result', r);
      out.info(`${r.cancelled ? 'cancelled after' : 'fed'} ${r.filesDone} files: ${r.chunksInjected} chunks injected (${r.tokensInjected} tokens), ${r.chunksSkipped} unchanged chunks skipped`);
      for (const e of r.errors) out.info(`skipped ${e.path}: ${e.message}`);
      await shutdown(h);
      return r.cancelled ? 130 : 0;
    } catch (e) {
      // A sidecar that ends after a Ctrl-C was asked to stop: no restart, the run was cancelled.
      if (e instanceof SidecarDied && cts.token.isCancellationRequested) {
        out.info(`cancelled; the sidecar exited (${e.code})`);
        return 130;
      }
      if (e instanceof SidecarDied && attempt < maxRestarts) {
        if (tty) process.stderr.write('\n');
        out.event('restart', { exit: e.code, attempt: attempt + 1 });
        out.info(`sidecar exited (${e.code}) during ingestion; restarting and resuming from the last commit (${attempt + 1}/${maxRestarts})`);
        continue;
      }
      h.process.kill('SIGKILL');
      throw e;
    } finally {
      process.removeListener('SIGINT', onSig);
    }
  }
}

class SidecarDied extends Error {
  constructor(readonly code: number | string) {
    super(`the sidecar exited (${code})`);
  }
}

export async function cmdAsk(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true });
  const question = positionals.join(' ').trim();
  if (!question) throw new CliUsageError('ask needs a question: mplus ask "How is the store committed?"');
  const f = common(values, (values.repo as string | undefined) ?? '.');
  const out = new Output(f.json);
  const { h } = await connect(f, out);
  const askId = crypto.randomUUID();
  h.connection.onNotification(AnswerToken, (p) => {
    if (p.askId !== askId) return;
    if (f.json) out.event('token', p);
    else process.stdout.write(p.text);
  });
  h.connection.onNotification(AnswerSources, (p) => {
    if (p.askId === askId) out.event('sources', p);
  });
  const cts = new CancellationTokenSource();
  const onSig = () => cts.cancel();
  process.once('SIGINT', onSig);
  try {
    const maxTokens = values['max-tokens'] === undefined ? undefined : Number(values['max-tokens']);
    const temperature = values.temperature === undefined ? undefined : Number(values.temperature);
    const r: AskResult = await h.connection.sendRequest(Ask, { question, askId, maxTokens, temperature }, cts.token);
    if (f.json) out.event('result', r);
    else {
      process.stdout.write('\n');
      if (r.coverage.feeding || r.coverage.filesFed < r.coverage.filesKnown) {
        process.stderr.write(`(memory covers ${r.coverage.filesFed}/${r.coverage.filesKnown} files${r.coverage.feeding ? ', still feeding' : ''})\n`);
      }
      if (r.sources.length) {
        process.stdout.write('sources:\n');
        for (const s of r.sources) process.stdout.write(`${s.path}:${s.startLine}-${s.endLine}\n`);
      }
    }
    await shutdown(h);
    return r.cancelled ? 130 : 0;
  } catch (e) {
    h.process.kill('SIGKILL');
    throw e;
  } finally {
    process.removeListener('SIGINT', onSig);
  }
}

export async function cmdStatus(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true });
  const f = common(values, positionals[0] ?? (values.repo as string | undefined) ?? '.');
  const out = new Output(f.json);
  const { h } = await connect(f, out);
  try {
    // --verify: every stored row read and checked first (a damaged one fails the command).
    const verified = values.verify ? await h.connection.sendRequest(Verify) : null;
    const s = await h.connection.sendRequest(Status);
    if (verified) out.event('verify', verified);
    if (f.json) out.event('status', s);
    else {
      console.log(`state        ${s.state}`);
      console.log(`coverage     ${s.coverage.filesFed}/${s.coverage.filesKnown} files`);
      console.log(`θ per layer  ${s.memory.stmTokensPerLayer} tokens`);
      console.log(`Θ per layer  ${s.memory.ltmTokensPerLayer} tokens (${s.memory.staleTokens} stale)`);
      console.log(`injections   ${s.memory.injections}`);
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const p = s.memory.storeParts;
      console.log(`store        ${f.store} (${mib(s.memory.storeBytes)})`);
      console.log(`  θ ${mib(p.theta)}, Θ values ${mib(p.ltmValues)}, Θ keys ${mib(p.ltmKeys)}, Θ row checksums ${mib(p.ltmRowChecksums)}, cache and bookkeeping ${mib(p.cacheAndBookkeeping)}, provenance ${mib(p.provenance)}`);
      if (verified) console.log(`verified     ${verified.segments} segment file(s): every row matches its checksum`);
      if (s.storeDamage) console.log(`DAMAGED      ${s.storeDamage}`);
      const k = s.secretsKeptOut;
      console.log(`kept out     ${k.count} secret file(s)${k.count ? ':' : ''}`);
      for (const x of k.files) console.log(`  ${x.path}  ${x.reason}`);
      if (k.count > k.files.length) console.log(`  … and ${k.count - k.files.length} more`);
    }
    await shutdown(h);
    return 0;
  } catch (e) {
    h.process.kill('SIGKILL');
    throw e;
  }
}

export async function cmdForget(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: COMMON, allowPositionals: true });
  if (!positionals.length) throw new CliUsageError('forget needs one or more paths');
  const f = common(values, (values.repo as string | undefined) ?? '.');
  const out = new Output(f.json);
  const { h } = await connect(f, out);
  try {
    const r = await h.connection.sendRequest(Forget, { paths: positionals });
    out.event('result', r);
    out.info(`forgot ${r.filesForgotten} file(s); ${r.tokensMarkedStale} memory tokens marked stale`);
    await shutdown(h);
    return 0;
  } catch (e) {
    h.process.kill('SIGKILL');
    throw e;
  }
}

/** Human text of a protocol error. */
export function describeError(e: unknown): string {
  if (e instanceof ResponseError) return `${e.message} (code ${e.code})`;
  return (e as Error).message ?? String(e);
}
