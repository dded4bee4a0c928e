/**
 * The sidecar's work behind the protocol: one model, one store, one feeder, one scheduler for
 * one workspace. `openService` is what `initialize` runs: device → model → tokenizer → store
 * (locked; refused or rebuilt when it belongs to another model or is damaged) → chunker →
 * discovery → watcher. Everything after that is a method of MemoryService.
 */
import { randomUUID } from 'crypto';
import { MessageConnection } from 'vscode-jsonrpc/node';
import { MPlusEngine } from '../engine/mplus';
import { Chunking, loadChunking } from '../model/chunking';
import { TextTokenizer } from '../model/tokenizer';
import { rowBytes } from '../memory/store/codec';
import { StoreCorruptError, StoreError, StoreLockedError } from '../memory/store/errors';
import { MemoryStore, OpenResult, StoreOptions } from '../memory/store/store';
import { StoredMemory } from '../memory/store/storedMemory';
import { Chunker } from '../workspace/chunker';
import { MultiRootIgnoreMatcher } from '../workspace/ignore';
import { WorkspaceWatcher } from '../workspace/watcher';
import { answer } from './answer';
import { DeviceUnavailableError, selectDevice } from './device';
import { CancelFlag, Feeder } from './feeder';
import { BytesPerTokenCache, FeedEstimate, SPEC_STEADY_ROWS, TYPICAL_CHUNK_TOKENS, estimateFeeding, sampleBytesPerToken } from './estimate';
import { ForgottenPaths } from './forgotten';
import { WorkspacePaths } from './paths';
import {
  AnswerSources, AnswerToken, AskParams, AskResult, CancelParams, Coverage, DeviceInfo, ErrorCodes, ForgetParams, ForgetResult,
  Fed, IngestParams, IngestResult, InitializeParams, InitializeResult, Log, LogParams, Progress, RebuildResult, ServerState, StateChanged, StatusResult, StoreErrorData, VerifyResult,
} from './protocol';
import { DeviceScheduler } from './scheduler';
import { Service, StartControl, notify } from './server';
import { storePlaceProblem } from './storeAccess';

const WATCH_FILES_LIMIT = 10000;

function coded(e: unknown, code: number): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  (err as Error & { rpcCode?: number }).rpcCode ??= code;
  return err;
}

export async function openService(p: InitializeParams, conn: MessageConnection, start?: StartControl): Promise<{ service: Service; result: Omit<InitializeResult, 'protocolVersion' | 'serverVersion'> }> {
  const log = (level: LogParams['level'], message: string) => notify(conn, Log, { level, message });
  // Checked before the model loads: an untrusted workspace without memory costs nothing.
  if (p.requireStore && !MemoryStore.exists(p.storeDir)) {
    throw coded(new Error(`${p.storeDir} holds no memory store yet`), ErrorCodes.NoStore);
  }
  let dev: Awaited<ReturnType<typeof selectDevice>>;
  try {
    dev = await selectDevice(p.device, !!p.allowCpuFallback);
  } catch (e) {
    throw coded(e, e instanceof DeviceUnavailableError ? ErrorCodes.DeviceUnavailable : ErrorCodes.BadModel);
  }
  // On `auto`, landing on the CPU is expected on GPU-less machines: say why at info level.
  if (dev.warning) log(p.device === 'auto' ? 'info' : 'warn', dev.warning);
  log('info', `device: ${dev.info.description}${dev.info.memoryBytes ? `, ${(dev.info.memoryBytes / 2 ** 30).toFixed(1)} GiB memory` : ''}`);

  let engine: MPlusEngine;
  let tokenizer: TextTokenizer;
  let chunking: Chunking;
  try {
    // Quantization runs in a worker thread: its progress reaches the client as log lines, and a
    // status request meanwhile is answered with it.
    engine = await MPlusEngine.load(p.modelDir, {
      device: dev.device, seed: p.seed, precision: p.precision, signal: start?.signal,
      log: (level, message) => {
        log(level, message);
        if (/^quantizing /.test(message)) start?.say(message.replace(/ into .*/, ''));
      },
    });
    start?.say('opening the memory store');
    tokenizer = await TextTokenizer.fromDir(p.modelDir);
    chunking = loadChunking(p.modelDir);
  } catch (e) {
    throw coded(e, ErrorCodes.BadModel);
  }
  const cfg = engine.config;
  if (engine.precision !== 'f32') log('info', `linear layers at ${engine.precision}`);
  log('info', `model ${p.modelDir}: ${cfg.numLayers} layers, d=${cfg.hiddenSize}, θ ${cfg.stmSize} tokens/layer, K=${cfg.numTokens}, R=${cfg.retrieveSize}`);

  const valueFormat = engine.stateFormat();
  const dims = engine.memoryDims();
  const modelPolicy = engine.memoryPolicy();
  const budget = p.storeBudgetBytes ?? 0;
  const rowCost = dims.layers * (rowBytes(valueFormat, dims.hidden) + 4 * dims.keyDim + 28);
  const budgeted = budget > 0 ? { ...modelPolicy, maxLtmRows: Math.max(dims.retrieveSize, Math.floor(budget / rowCost)) } : modelPolicy;
  const policy = p.thetaOnly ? { ...budgeted, thetaOnly: true } : budgeted;
  if (p.thetaOnly) log('info', 'θ only (Θ off, MemoryLLM): tokens dropped from θ are discarded, nothing is merged into Θ');
  const storeOpts = { identity: engine.checkpoint.identity(), dims, policy, valueFormat, thetaFormat: valueFormat } as const;
  let opened: OpenResult;
  let storeNotice: string | undefined;
  try {
    try {
      opened = MemoryStore.open(p.storeDir, storeOpts, () => engine.initialMemory(storeOpts.thetaFormat));
    } catch (e) {
      if (!(e instanceof StoreError) || e instanceof StoreLockedError || !p.rebuildStore) throw e;
      const aside = MemoryStore.moveAside(p.storeDir);
      storeNotice = `the memory store could not be used (${e.problem}); it was moved to ${aside} and memory starts empty`;
      log('warn', storeNotice);
      opened = MemoryStore.open(p.storeDir, storeOpts, () => engine.initialMemory(storeOpts.thetaFormat));
    }
  } catch (e) {
    await engine.close();
    // A folder that cannot hold a store is a place to change: rebuilding would not help.
    const place = storePlaceProblem(e, p.storeDir);
    if (place) throw coded(new Error(place), ErrorCodes.StoreUnwritable);
    // The problem alone (no file path, no CLI advice) is what a client shows to people.
    if (e instanceof StoreError) (e as Error & { rpcData?: StoreErrorData }).rpcData = { problem: e.problem };
    throw coded(e, e instanceof StoreLockedError ? ErrorCodes.Busy : ErrorCodes.BadStore);
  }
  const mismatch = modeMismatch(p.storeDir, opened, !!p.thetaOnly);
  if (mismatch) {
    opened.store.close();
    await engine.close();
    throw coded(mismatch, ErrorCodes.BadStore);
  }
  const service = new MemoryService(p, conn, engine, tokenizer, storeOpts, new StoredMemory(opened), opened.extra, dev.info, log);
  try {
    await service.start(await Chunker.create(), chunking);
  } catch (e) {
    await service.close();
    throw e;
  }
  return {
    service,
    result: {
      device: dev.info,
      model: { dir: p.modelDir, layers: cfg.numLayers, hidden: cfg.hiddenSize, tokensPerInjection: cfg.numTokens, stmTokens: cfg.stmSize, retrievedTokens: cfg.retrieveSize },
      status: service.status(),
      storeNotice,
    },
  };
}

/**
 * A store fed θ only has discarded what it dropped, so Θ on would silently miss it; a store fed
 * with Θ on would make a θ-only run retrieve. Each is refused by a run the other way.
 */
function modeMismatch(storeDir: string, opened: OpenResult, thetaOnly: boolean): Error | null {
  // Nothing fed yet (the commit that created the store carries no mode): either way is fine.
  if (opened.created || opened.sources.injections === 0 || !!opened.extra.thetaOnly === thetaOnly) return null;
  const was = opened.extra.thetaOnly ? 'θ only (Θ off)' : 'with Θ on';
  return new Error(`${storeDir}: this memory store was fed ${was}; open it the same way, or use another store folder (--store) for this run`);
}

export class MemoryService implements Service {
  private readonly scheduler = new DeviceScheduler();
  private readonly paths: WorkspacePaths;
  private feeder!: Feeder;
  private watcher: WorkspaceWatcher | null = null;
  private ignoreMatcher: MultiRootIgnoreMatcher | null = null;
  private readonly asks = new Map<string, CancelFlag>();
  private state: ServerState = 'starting';
  private closing: Promise<void> | null = null;
  /** The first damage to the store found while working (see noteDamage). */
  private storeDamage: string | null = null;
  private rebuilding: Promise<RebuildResult> | null = null;
  private chunker!: Chunker;
  private chunking!: Chunking;
  /** The user's Forget list; outlives a rebuild (forgetting was a choice about files, not memory). */
  private forgotten!: ForgottenPaths;
  /** The workspace's bytes per token, sampled again when its files change (estimate.ts). */
  private readonly bytesPerToken = new BytesPerTokenCache();

  constructor(
    private readonly p: InitializeParams,
    private readonly conn: MessageConnection,
    private readonly engine: MPlusEngine,
    private readonly tokenizer: TextTokenizer,
    private readonly storeOpts: StoreOptions,
    private memory: StoredMemory,
    private readonly committedExtra: Record<string, unknown>,
    private readonly device: DeviceInfo,
    private readonly log: (level: LogParams['level'], message: string) => void,
  ) {
    this.paths = new WorkspacePaths(p.workspaceFolders);
  }

  /** chunking: the checkpoint's chunk budget (src/model/chunking.ts). */
  async start(chunker: Chunker, chunking: Chunking): Promise<void> {
    this.chunker = chunker;
    this.chunking = chunking;
    this.forgotten = new ForgottenPaths(this.committedExtra.forgotten);
    this.feeder = this.newFeeder((this.committedExtra.fed ?? {}) as Record<string, [number, number]>);
    this.feeder.paused = !!this.p.paused;
    await this.feeder.rediscover();
    if (this.p.watch !== false && this.p.workspaceFolders.length) {
      const matcher = new MultiRootIgnoreMatcher(this.p.workspaceFolders, { userIgnore: this.p.ignore });
      this.ignoreMatcher = matcher;
      // chokidar watches every file (one inotify watch each, ~6 KiB RSS per file measured); past
      // WATCH_FILES_LIMIT files the per-directory backend is used instead (BENCHMARKS.md).
      const backend = this.feeder.files.size > WATCH_FILES_LIMIT ? 'dirs' : 'chokidar';
      if (backend === 'dirs') this.log('info', `${this.feeder.files.size} files: watching directories instead of every file`);
      this.watcher = await WorkspaceWatcher.start(this.p.workspaceFolders, {
        backend,
        isIgnored: matcher.isIgnored,
        // guarded: a damaged row found while refreshing (θ, the cache and Θ are read from disk) is reported as for a request
        onBatch: (b) => void this.guarded(() => this.onChanges(b.changed, b.deleted, b.ignoreFilesChanged)).catch((e) => this.log('error', `refresh failed: ${(e as Error).message}`)),
        onError: (e) => this.log('warn', `watcher: ${e.message}`),
      });
    }
    this.updateState();
  }

  /** The feeder of the current memory; `fed` is its committed file index (key → [size, mtimeMs]). */
  private newFeeder(fed: Record<string, [number, number]>): Feeder {
    return new Feeder({
      engine: this.engine, tokenizer: this.tokenizer, chunker: this.chunker, chunking: this.chunking, memory: this.memory,
      scheduler: this.scheduler, paths: this.paths,
      discovery: { userIgnore: this.p.ignore, maxFiles: this.p.maxFiles, maxBytes: this.p.maxBytes },
      log: this.log,
      progress: (pr) => notify(this.conn, Progress, pr),
      onFeeding: () => this.updateState(),
      fed,
      forgotten: this.forgotten,
    });
  }

  /**
   * mplus/rebuild: feeding stops at a safe point (what it fed is committed, then moved aside with
   * the rest), questions are cancelled, and under the device lease — nothing reads memory — the
   * store is moved aside while its lock is held and a fresh one opened from the checkpoint.
   */
  rebuild(): Promise<RebuildResult> {
    this.rebuilding ??= (async () => {
      for (const f of this.asks.values()) f.cancelled = true;
      const paused = this.feeder.paused;
      await this.feeder.close();
      const movedTo = await this.scheduler.with('ask', async () => {
        const aside = this.memory.store.retire();
        this.memory = new StoredMemory(MemoryStore.open(this.p.storeDir, this.storeOpts, () => this.engine.initialMemory(this.storeOpts.thetaFormat ?? 'f32')));
        return aside;
      });
      this.feeder = this.newFeeder({});
      this.feeder.paused = paused;
      await this.feeder.rediscover();
      this.log('info', `memory rebuilt: the previous store was moved to ${movedTo}`);
      this.updateState();
      return { movedTo, status: this.status() };
    })().finally(() => (this.rebuilding = null));
    return this.rebuilding;
  }

  /** Requests that use memory wait for a running rebuild (its own caller gets its errors). */
  private async afterRebuild(): Promise<void> {
    if (this.rebuilding) await this.rebuilding.then(() => undefined, () => undefined);
  }

  private async onChanges(changed: string[], deleted: string[], ignoreFilesChanged: boolean): Promise<void> {
    if (this.feeder.paused || this.closing || this.rebuilding) return;
    if (ignoreFilesChanged) {
      this.log('info', 'ignore rules changed: rediscovering the workspace');
      this.ignoreMatcher?.reload();
      await this.watcher?.refresh();
      await this.feeder.ingest('all', { cancelled: false }, true);
      return;
    }
    const keys = (xs: string[]) => xs.map((a) => this.paths.keyOfAbs(a)).filter((k): k is string => k !== null);
    // A changed file may be new: refresh the discovered set first (cheap stat per file).
    const fresh = keys(changed).filter((k) => !this.feeder.files.has(k));
    if (fresh.length) await this.feeder.rediscover();
    const r = await this.feeder.refresh(keys(changed), keys(deleted));
    const files = keys(changed).flatMap((k) => {
      const f = this.feeder.files.get(k);
      const mtimeMs = this.feeder.fedMtime(k);
      return f && mtimeMs !== undefined ? [{ absPath: f.abs, mtimeMs }] : [];
    });
    if (files.length) notify(this.conn, Fed, { files });
    if (r.chunksInjected || deleted.length) this.log('info', `refreshed ${r.filesDone} changed file(s): ${r.chunksInjected} new chunk(s); ${deleted.length} deleted`);
  }

  /**
   * Runs `job`; damage to the store found on the way (a θ, cache or Θ row failing its checksum) is remembered
   * for `status`, logged, and answered with StoreDamaged, which clients turn into a Rebuild offer.
   */
  private async guarded<T>(job: () => Promise<T>): Promise<T> {
    try {
      return await job();
    } catch (e) {
      throw this.damage(e);
    }
  }

  private damage(e: unknown): unknown {
    if (!(e instanceof StoreCorruptError)) return e;
    if (!this.storeDamage) {
      this.storeDamage = e.message;
      this.log('error', `the memory store is damaged: ${e.message}`);
    }
    return coded(e, ErrorCodes.StoreDamaged);
  }

  verify(): VerifyResult {
    try {
      return { ok: true, segments: this.memory.store.verify() };
    } catch (e) {
      throw this.damage(e);
    }
  }

  private updateState(detail?: string): void {
    const next: ServerState = this.closing ? 'idle'
      : this.asks.size ? 'answering'
      : this.feeder?.feeding ? (this.feeder.paused ? 'paused' : 'ingesting')
      : this.feeder?.paused ? 'paused' : 'idle';
    if (next !== this.state) {
      this.state = next;
      notify(this.conn, StateChanged, { state: next, detail });
    }
  }

  private coverage(): Coverage {
    const live = new Set(this.memory.sources.liveFiles());
    const wanted = this.feeder.wantedKeys();
    let fed = 0;
    for (const k of wanted) if (live.has(k)) fed++;
    return { filesFed: fed, filesKnown: wanted.length, feeding: this.feeder.feeding };
  }

  private toKeys(paths: string[]): string[] {
    return paths.map((x) => {
      const k = this.paths.keyOfInput(x);
      if (k === null) throw Object.assign(new Error(`${x} is outside the workspace folders (${this.p.workspaceFolders.join(', ')})`), { rpcCode: -32602 });
      return k;
    });
  }

  async ingest(p: IngestParams, token: { onCancellationRequested: (cb: () => void) => unknown }): Promise<IngestResult> {
    await this.afterRebuild();
    const flag: CancelFlag = { cancelled: false };
    token.onCancellationRequested(() => {
      flag.cancelled = true;
      this.feeder.cancel();
    });
    // Naming files is the user's explicit choice: forgotten ones among them are re-added.
    if (p.paths === 'all') return this.guarded(() => this.feeder.ingest('all', flag));
    const keys = this.toKeys(p.paths);
    return this.guarded(() => this.feeder.readd(keys, flag));
  }

  async ask(p: AskParams, token: { onCancellationRequested: (cb: () => void) => unknown }): Promise<AskResult> {
    await this.afterRebuild();
    const askId = p.askId ?? randomUUID();
    if (this.asks.has(askId)) throw Object.assign(new Error(`an ask with id ${askId} is already running`), { rpcCode: ErrorCodes.Busy });
    const flag: CancelFlag = { cancelled: false };
    token.onCancellationRequested(() => (flag.cancelled = true));
    const coverage = this.coverage();
    this.asks.set(askId, flag);
    this.updateState();
    try {
      const r = await this.guarded(() => answer(
        { engine: this.engine, tokenizer: this.tokenizer, memory: this.memory, scheduler: this.scheduler, paths: this.paths },
        p, flag,
        {
          token: (text) => notify(this.conn, AnswerToken, { askId, text }),
          sources: (sources) => notify(this.conn, AnswerSources, { askId, sources }),
        },
      ));
      return { askId, answer: r.answer, tokens: r.tokens, sources: r.sources, cancelled: flag.cancelled, coverage, ...(r.retrieval ? { retrieval: r.retrieval } : {}) };
    } finally {
      this.asks.delete(askId);
      this.updateState();
    }
  }

  async forget(p: ForgetParams): Promise<ForgetResult> {
    await this.afterRebuild();
    return this.guarded(() => this.feeder.forget(this.toKeys(p.paths)));
  }

  async setPaused(paused: boolean): Promise<StatusResult> {
    await this.afterRebuild();
    this.feeder.setPaused(paused);
    this.updateState();
    return this.status();
  }

  focus(paths: string[]): void {
    this.feeder.focus = paths.map((x) => this.paths.keyOfInput(x)).filter((k): k is string => k !== null);
  }

  /** What feeding the whole workspace costs: tokens, store size, time left at the measured rate. */
  private estimate(): FeedEstimate {
    const wanted = this.feeder.wantedKeys();
    const live = new Set(this.memory.sources.liveFiles());
    const files = wanted.map((k) => this.feeder.files.get(k)!);
    let bytes = 0;
    let fedBytes = 0;
    wanted.forEach((k, i) => {
      bytes += files[i].size;
      if (live.has(k)) fedBytes += files[i].size;
    });
    const bytesPerToken = this.bytesPerToken.ratioFor(files, () =>
      sampleBytesPerToken(this.feeder.sampleTexts(16, 32768), (t) => this.tokenizer.countTokens(t)));
    const d = this.engine.memoryDims();
    const valueFormat = this.storeOpts.valueFormat ?? 'f32';
    const rowCost = d.layers * (rowBytes(valueFormat, d.hidden) + 4 * d.keyDim + 28);
    return estimateFeeding({
      files: wanted.length, bytes, bytesPerToken, fedShare: bytes > 0 ? fedBytes / bytes : 1,
      tokensPerInjection: d.tokensPerInjection, tokensPerChunk: TYPICAL_CHUNK_TOKENS, rowBytes: rowCost,
      maxRows: this.storeOpts.policy.maxLtmRows ?? SPEC_STEADY_ROWS,
      thetaBytes: d.layers * d.stmSize * rowBytes(valueFormat, d.hidden), tokensPerSecond: this.feeder.measuredRate,
    });
  }

  status(): StatusResult {
    const counts = this.memory.counts();
    const sz = this.memory.sizes();
    return {
      state: this.state,
      coverage: this.coverage(),
      memory: {
        stmTokensPerLayer: counts.stm,
        ltmTokensPerLayer: counts.ltm,
        staleTokens: this.memory.staleTokens(),
        injections: this.memory.sources.injections,
        storeBytes: sz.totalBytes,
        storeParts: { theta: sz.thetaBytes, cacheAndBookkeeping: sz.cacheBytes, ltmValues: sz.ltmValueBytes, ltmKeys: sz.ltmKeyBytes, ltmRowChecksums: sz.ltmMetaBytes, provenance: sz.sourcesBytes },
      },
      queue: { ...this.feeder.pending },
      device: this.device,
      secretsKeptOut: this.feeder.secretsKeptOut(),
      forgotten: { count: this.forgotten.size, paths: this.forgotten.list().slice(0, 50) },
      estimate: this.estimate(),
      storeDamage: this.storeDamage ?? undefined,
    };
  }

  cancel(target: CancelParams['target']): number {
    let n = 0;
    if (target === 'ingest' || target === 'all') n += this.feeder.cancel();
    for (const [id, f] of this.asks) {
      if (target === 'all' || (typeof target === 'object' && target.askId === id)) {
        f.cancelled = true;
        n++;
      }
    }
    return n;
  }

  close(): Promise<void> {
    // Every step runs even when an earlier one fails, and the store (its commit and its lock) is
    // closed as soon as feeding has stopped: a watcher or an engine that fails or is slow to close
    // must never leave the store locked for the next process. The first failure is rethrown.
    this.closing ??= (async () => {
      for (const f of this.asks.values()) f.cancelled = true;
      const failures: unknown[] = [];
      const step = async (f: () => unknown): Promise<void> => {
        try { await f(); } catch (e) { failures.push(e); }
      };
      const watcherClosed = step(() => this.watcher?.close());
      await step(() => this.feeder?.close());
      await step(() => this.memory.close());
      await watcherClosed;
      await step(() => this.engine.close());
      if (failures.length) throw failures[0];
    })();
    return this.closing;
  }
}
