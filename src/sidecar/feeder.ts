/**
 * Feeding: turns workspace files into injections and keeps memory in step with the files.
 *
 *   discover (src/workspace) → order → per file: read → chunk → plan against provenance
 *   (unchanged chunks are never fed twice; vanished ones become stale) → inject each new chunk
 *   under an 'ingest' lease (a question can take the device between any two injections) →
 *   commit at safe points (every COMMIT_EVERY injections or COMMIT_SECONDS, at the end, on
 *   cancel and on shutdown) → compact when anything went stale.
 *
 * One feeding job runs at a time (ingest requests and watcher batches queue behind each other).
 * Crash recovery needs no journal: a restarted ingest re-plans every file against the committed
 * provenance, so whatever was committed is skipped and the rest is fed again.
 */
import * as fs from 'fs';
import { MPlusEngine } from '../engine/mplus';
import { Chunking, MAX_CHUNK_TOKENS, chunkMeasure } from '../model/chunking';
import { TextTokenizer } from '../model/tokenizer';
import { StoredMemory } from '../memory/store/storedMemory';
import { Chunk, Chunker } from '../workspace/chunker';
import { DiscoveryOptions, WorkspaceFile, discover } from '../workspace/discovery';
import { orderFiles } from '../workspace/order';
import { planFileUpdate } from '../workspace/planner';
import { GateReason, ReadGate } from '../workspace/readGate';
import { ForgottenPaths } from './forgotten';
import { WorkspacePaths } from './paths';
import { IngestResult, LogParams, ProgressParams } from './protocol';
import { DeviceScheduler } from './scheduler';

/** Injections between commits (MPLUS_COMMIT_EVERY overrides, e.g. for crash tests). */
const COMMIT_EVERY = Number(process.env.MPLUS_COMMIT_EVERY) || 64;
/**
 * MPLUS_FEED_LOG=FILE: append one JSON line per injection with the file, its lines and the text
 * decoded back from the exact token ids handed to the engine. For people asking "what did M+
 * read?", and for the tests that assert a secret never reaches the model.
 */
const FEED_LOG = process.env.MPLUS_FEED_LOG || '';
const COMMIT_SECONDS = 20;
const PROGRESS_MS = 250;
/**
 * Chunk size: the checkpoint's (src/model/chunking.ts; mplus-8b: 512 tokens). Small neighbouring
 * declarations are merged until a chunk reaches its `min`: every injection writes K memory tokens
 * and pushes K tokens out of θ whatever its length, so 20-token chunks would churn θ for little
 * content (this repository: 1,870 chunks averaging 105 tokens at 16, see BENCHMARKS.md). Whatever
 * the checkpoint's unit, no chunk over MAX_CHUNK_TOKENS tokens is injected.
 */

export interface FeederDeps {
  engine: MPlusEngine;
  tokenizer: TextTokenizer;
  chunker: Chunker;
  /** The checkpoint's chunk budget. */
  chunking: Chunking;
  /** Memory, its provenance and its store. */
  memory: StoredMemory;
  scheduler: DeviceScheduler;
  paths: WorkspacePaths;
  discovery: DiscoveryOptions;
  log: (level: LogParams['level'], message: string) => void;
  progress: (p: ProgressParams) => void;
  /** Called when feeding starts/stops so the service can report its state. */
  onFeeding: (feeding: boolean) => void;
  /** Committed bookkeeping from the store's manifest: key → [size, mtimeMs] of fully fed files. */
  fed: Record<string, [number, number]>;
  /** What the user told memory to forget (committed with the store; see forgotten.ts). */
  forgotten: ForgottenPaths;
}

/** Refusals that are the workspace's rules (not I/O trouble): the file is not one to feed. */
const RULE_REFUSALS: ReadonlySet<GateReason> = new Set(['outside-roots', 'ignored', 'secret', 'secret-content', 'not-a-regular-file', 'too-large', 'binary', 'minified', 'generated']);
/** How many kept-out secrets `status` lists by name (the count is always exact). */
const KEPT_OUT_LISTED = 50;

export interface CancelFlag {
  cancelled: boolean;
}

export class Feeder {
  /** Discovered files by key. */
  readonly files = new Map<string, WorkspaceFile>();
  paused = false;
  focus: string[] = [];
  feeding = false;
  /** Work left in the running feeding job (status's `queue`): files and estimated chunks. */
  pending = { pendingFiles: 0, pendingChunks: 0 };
  /** Tokens per second of the last feeding that injected anything (for estimates), or null. */
  measuredRate: number | null = null;
  /** The file being fed now (for progress), or null. */
  private current: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private active: CancelFlag | null = null;
  private resume: (() => void) | null = null;
  private sinceCommit = 0;
  private lastCommit = Date.now();
  private closed = false;
  /** Every read of a file's text for memory goes through this gate (src/workspace/readGate.ts). */
  private readonly gate: ReadGate;
  /** Secrets kept out of memory, by key: name rules (discovery) and content rules (the gate). */
  readonly keptOut = new Map<string, string>();

  constructor(private readonly d: FeederDeps) {
    this.gate = new ReadGate(d.paths.roots, { userIgnore: d.discovery.userIgnore, maxFileBytes: d.discovery.maxFileBytes });
  }

  /** Secrets kept out: the count and the first KEPT_OUT_LISTED by path. */
  secretsKeptOut(): { count: number; files: Array<{ path: string; reason: string }> } {
    const files = [...this.keptOut].sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, KEPT_OUT_LISTED).map(([p, reason]) => ({ path: p, reason }));
    return { count: this.keptOut.size, files };
  }

  /** Runs `job` after every earlier feeding job (one at a time). */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async rediscover(): Promise<void> {
    const r = await discover(this.d.paths.roots, { ...this.d.discovery, onLog: (level, msg) => this.d.log(level, msg) });
    this.gate.reload();
    this.files.clear();
    for (const f of r.files) this.files.set(this.d.paths.key(f.root, f.rel), f);
    // Name-based secrets as discovery saw them now; content-based ones stay until fed or deleted.
    for (const [k, why] of this.keptOut) if (why === 'secret (by name)') this.keptOut.delete(k);
    const named: string[] = [];
    for (const s of r.skipped) {
      const k = s.reason === 'secret' ? this.d.paths.keyOfAbs(s.path) : null;
      if (k !== null) {
        this.keptOut.set(k, 'secret (by name)');
        named.push(k);
      }
    }
    if (named.length) this.d.log('info', `kept ${named.length} secret file(s) out of memory by name: ${named.slice(0, 10).join(', ')}${named.length > 10 ? ', …' : ''}`);
    if (r.truncated) this.d.log('warn', `the workspace has more files than the feeding budget; fed ${r.files.length} (raise mplus.feeding.maxFiles to feed more)`);
    this.d.log('info', `discovered ${r.files.length} files (${r.skipped.length} skipped)`);
  }

  /**
   * Up to `n` texts of discovered files, spread over the list, the first `maxChars` of each, read
   * through the gate (for estimates: counted, never stored).
   */
  sampleTexts(n: number, maxChars: number): string[] {
    const all = this.wantedKeys();
    const out: string[] = [];
    const step = Math.max(1, Math.floor(all.length / n));
    for (let i = 0; i < all.length && out.length < n; i += step) {
      const f = this.files.get(all[i]);
      const got = f ? this.gate.read(f.abs) : null;
      if (got?.ok) out.push(got.text.slice(0, maxChars));
    }
    return out;
  }

  /** Cancels the running feeding job at its next safe point. */
  cancel(): number {
    if (!this.active) return 0;
    this.active.cancelled = true;
    this.resume?.();
    return 1;
  }

  setPaused(p: boolean): void {
    this.paused = p;
    if (!p) this.resume?.();
  }

  /** Files memory is to hold: discovered and not forgotten by the user. */
  wantedKeys(): string[] {
    return [...this.files.keys()].filter((k) => !this.d.forgotten.has(k));
  }

  /**
   * Feeds `which` (keys or folder prefixes, or 'all'); stale memory of deleted files goes too.
   * Files the user forgot are skipped: only `readd` brings them back.
   */
  ingest(which: string[] | 'all', flag: CancelFlag, rediscover = true): Promise<IngestResult> {
    return this.serial(async () => {
      if (rediscover) await this.rediscover();
      const keys = this.wantedKeys().filter((k) => which === 'all' || which.some((p) => WorkspacePaths.within(k, p)));
      const result = await this.feedKeys(keys, flag);
      // Files memory knows that the workspace no longer has (deleted, now ignored).
      const gone = this.d.memory.sources.liveFiles().filter((k) => !this.files.has(k) && (which === 'all' || which.some((p) => WorkspacePaths.within(k, p))));
      if (gone.length) this.forgetNow(gone);
      return result;
    });
  }

  /** Applies a watcher batch: changed files re-planned and fed, deleted files forgotten. */
  refresh(changed: string[], deleted: string[]): Promise<IngestResult> {
    return this.serial(async () => {
      const flag: CancelFlag = { cancelled: false };
      for (const k of deleted) {
        this.files.delete(k);
        this.keptOut.delete(k);
        delete this.d.fed[k];
      }
      const gone = deleted.filter((k) => this.d.memory.sources.liveChunks(k).size > 0);
      if (gone.length) this.forgetNow(gone);
      for (const k of changed) delete this.d.fed[k];
      // Changed paths discovery no longer lists (now a link out of the workspace, a FIFO, binary
      // by extension, …): what memory has of them goes.
      const dropped = changed.filter((k) => !this.files.has(k) && this.d.memory.sources.liveChunks(k).size > 0);
      if (dropped.length) this.forgetNow(dropped);
      // A forgotten file stays forgotten when it changes (re-adding it is the user's call).
      const known = changed.filter((k) => this.files.has(k) && !this.d.forgotten.has(k));
      return this.feedKeys(known, flag);
    });
  }

  /** Modification time of `key` as fully fed into memory (undefined: not, or not completely). */
  fedMtime(key: string): number | undefined {
    return this.d.fed[key]?.[1];
  }

  /**
   * The user's Forget: marks files' (or folders') memory stale now, compacts, and records them so
   * that no later feeding (a restart, resume, save or rebuild) brings them back until `readd`.
   */
  forget(keys: string[]): Promise<{ filesForgotten: number; tokensMarkedStale: number }> {
    return this.serial(async () => {
      this.d.forgotten.add(keys);
      return this.forgetNow(keys); // commits, with the forgotten list
    });
  }

  /** The user re-adds files or folders they forgot: recorded, then fed like any ingest. */
  async readd(keys: string[], flag: CancelFlag): Promise<IngestResult> {
    await this.serial(async () => {
      await this.rediscover();
      if (this.d.forgotten.readd(keys, this.files.keys())) {
        this.commit();
        this.d.log('info', `re-added to memory: ${keys.join(', ')}`);
      }
    });
    return this.ingest(keys, flag, false);
  }

  private forgetNow(keys: string[]): { filesForgotten: number; tokensMarkedStale: number } {
    const before = this.d.memory.sources.liveFiles();
    let ids = 0;
    for (const k of keys) {
      ids += this.d.memory.sources.markStale(k).length;
      for (const f of Object.keys(this.d.fed)) if (WorkspacePaths.within(f, k)) delete this.d.fed[f];
    }
    const after = new Set(this.d.memory.sources.liveFiles());
    const stale = this.d.memory.staleTokens();
    this.compact();
    this.d.log('info', `forgot ${before.length - after.size} file(s): ${ids} chunk(s), ${stale} stale memory token(s) over all layers`);
    return { filesForgotten: before.length - after.size, tokensMarkedStale: stale };
  }

  /** Removes stale tokens from Θ and the cache, prunes provenance, commits with a rewrite. */
  compact(): void {
    this.d.memory.compact();
    this.commit(true);
  }

  private logFeed(file: string, startLine: number, endLine: number, tokens: number[]): void {
    const rec = { file, startLine, endLine, tokens: tokens.length, text: this.d.tokenizer.decode(tokens) };
    try {
      fs.appendFileSync(FEED_LOG, JSON.stringify(rec) + '\n');
    } catch (e) {
      this.d.log('warn', `MPLUS_FEED_LOG ${FEED_LOG}: ${(e as Error).message}`);
    }
  }

  /** Durable commit of memory, provenance and the fed-file index. */
  commit(rewrite = false): void {
    const info = this.d.memory.commit({ fed: this.d.fed, forgotten: this.d.forgotten.list() }, { rewrite });
    this.sinceCommit = 0;
    this.lastCommit = Date.now();
    this.d.log('debug', `commit ${info.seq}: ${(info.bytesWritten / 1048576).toFixed(1)} MiB in ${info.ms.toFixed(0)} ms`);
  }

  /** Stops at the next safe point and commits what was fed. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancel();
    await this.queue;
  }

  private async waitWhilePaused(flag: CancelFlag): Promise<void> {
    while (this.paused && !flag.cancelled && !this.closed) {
      await new Promise<void>((r) => (this.resume = r));
      this.resume = null;
    }
  }

  private async feedKeys(keys: string[], flag: CancelFlag): Promise<IngestResult> {
    const res: IngestResult = { filesDone: 0, chunksInjected: 0, chunksSkipped: 0, tokensInjected: 0, cancelled: false, errors: [] };
    if (!keys.length) return res;
    const files = orderFiles(keys.map((k) => this.files.get(k)!), { focus: this.focus });
    const totalBytes = files.reduce((a, f) => a + f.size, 0);
    let bytesDone = 0;
    /** Bytes of files actually read and fed: the measured rate (skipped files cost nothing). */
    let bytesFed = 0;
    let chunksPlanned = 0;
    const t0 = Date.now();
    let lastProgress = 0;
    /** Known files the gate now refuses while memory still has chunks of them. */
    const refused: string[] = [];
    this.active = flag;
    this.feeding = true;
    this.d.onFeeding(true);
    const report = (force = false) => {
      const now = Date.now();
      if (!force && now - lastProgress < PROGRESS_MS) return;
      lastProgress = now;
      const secs = (now - t0) / 1000;
      const rate = bytesFed > 0 ? bytesFed / Math.max(secs, 1e-3) : 0;
      const chunksDone = res.chunksInjected + res.chunksSkipped;
      const chunksTotal = Math.max(chunksDone, bytesDone > 0 ? Math.max(chunksPlanned, Math.round((chunksPlanned / bytesDone) * totalBytes)) : chunksPlanned);
      const finished = !this.feeding;
      if (res.tokensInjected > 0 && secs > 1) this.measuredRate = res.tokensInjected / secs;
      this.pending = finished ? { pendingFiles: 0, pendingChunks: 0 } : { pendingFiles: files.length - res.filesDone, pendingChunks: chunksTotal - chunksDone };
      this.d.progress({
        kind: 'ingest', filesDone: res.filesDone, filesTotal: files.length, chunksDone,
        chunksTotal, tokensPerSecond: secs > 0 ? res.tokensInjected / secs : 0,
        etaSeconds: finished ? 0 : rate > 0 ? Math.max(0, (totalBytes - bytesDone) / rate) : null,
        currentFile: finished ? undefined : this.current ?? undefined,
      });
    };
    try {
      for (const f of files) {
        if (flag.cancelled || this.closed) break;
        await this.waitWhilePaused(flag);
        if (flag.cancelled || this.closed) break;
        const key = this.d.paths.key(f.root, f.rel);
        this.current = key;
        const fed = this.d.fed[key];
        const liveCount = fed && fed[0] === f.size && fed[1] === f.mtimeMs ? this.d.memory.sources.liveChunks(key).size : 0;
        if (liveCount > 0) {
          res.filesDone++;
          res.chunksSkipped += liveCount;
          bytesDone += f.size;
          continue; // fully fed and unchanged since
        }
        let chunks: Chunk[];
        // The file as it is now, through the read gate: its size and mtime become the
        // bookkeeping (a save since discovery would otherwise be recorded as older).
        const got = this.gate.read(f.abs);
        if (!got.ok) {
          bytesDone += f.size;
          if (RULE_REFUSALS.has(got.reason)) {
            // Not a file to feed (any more): unknown from now on, and what memory had of it goes.
            this.files.delete(key);
            delete this.d.fed[key];
            if (got.reason === 'secret-content' || got.reason === 'secret') this.keptOut.set(key, `${got.reason === 'secret' ? 'secret (by name)' : 'secret (by content)'}: ${got.detail}`);
            if (this.d.memory.sources.liveChunks(key).size > 0) refused.push(key);
            this.d.log(got.reason.startsWith('secret') ? 'warn' : 'info', `${key}: not fed (${got.reason}): ${got.detail}`);
          } else {
            res.errors.push({ path: key, message: got.detail });
            this.d.log('warn', `${key}: not fed: ${got.detail}`);
          }
          continue;
        }
        this.keptOut.delete(key);
        try {
          f.size = got.size;
          f.mtimeMs = got.mtimeMs;
          const { chunking } = this.d;
          chunks = this.d.chunker.chunk({ rel: key, text: got.text }, { countTokens: chunkMeasure(chunking, (s) => this.d.tokenizer.countTokens(s)), maxTokens: chunking.max, minTokens: chunking.min });
        } catch (e) {
          res.errors.push({ path: key, message: (e as Error).message });
          this.d.log('warn', `${key}: not fed: ${(e as Error).message}`);
          bytesDone += f.size;
          continue;
        }
        const live = this.d.memory.sources.liveChunks(key);
        const plan = planFileUpdate(key, chunks, new Set(live.keys()));
        chunksPlanned += chunks.length;
        if (plan.staleIds.length) this.d.memory.sources.markIdsStale(plan.staleIds.map((h) => live.get(h)!.id));
        res.chunksSkipped += plan.unchanged;
        let complete = true;
        for (const c of plan.inject) {
          await this.waitWhilePaused(flag);
          if (flag.cancelled || this.closed) {
            complete = false;
            break;
          }
          const tokens = this.d.tokenizer.encode(c.text);
          if (!tokens.length) continue;
          // Bounded work per injection whatever a file holds: the chunker keeps to this budget;
          // a chunk that does not (a tokenizer disagreement) is skipped, never fed oversized.
          if (tokens.length > MAX_CHUNK_TOKENS) {
            this.d.log('warn', `${key}:${c.startLine}-${c.endLine}: a chunk of ${tokens.length} tokens exceeds the ${MAX_CHUNK_TOKENS}-token injection limit; skipped`);
            continue;
          }
          const id = this.d.memory.sources.add({ file: key, startLine: c.startLine, endLine: c.endLine, startByte: c.startByte, endByte: c.endByte, hash: c.id });
          if (FEED_LOG) this.logFeed(key, c.startLine, c.endLine, tokens);
          try {
            await this.d.scheduler.with('ingest', () => this.d.engine.inject(this.d.memory, tokens, { source: id }));
          } catch (e) {
            this.d.memory.sources.markIdsStale([id]);
            throw e;
          }
          res.chunksInjected++;
          res.tokensInjected += tokens.length;
          this.sinceCommit++;
          report();
          if (this.sinceCommit >= COMMIT_EVERY || Date.now() - this.lastCommit > COMMIT_SECONDS * 1000) this.commit();
        }
        bytesDone += f.size;
        bytesFed += f.size;
        if (!complete) break;
        this.d.fed[key] = [f.size, f.mtimeMs];
        res.filesDone++;
        report();
      }
    } finally {
      res.cancelled = flag.cancelled;
      this.active = null;
      // The safe point: what was fed so far is committed, even on cancel or failure.
      if (refused.length) this.forgetNow(refused);
      else if (this.d.memory.staleTokens(['ltm', 'cache']) > 0) this.compact();
      else this.commit();
      this.feeding = false;
      this.current = null;
      this.d.onFeeding(false);
      report(true);
    }
    return res;
  }
}

