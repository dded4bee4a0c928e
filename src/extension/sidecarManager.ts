/**
 * Owns the sidecar process: spawns it (the editor's own runtime with ELECTRON_RUN_AS_NODE=1, or
 * `mplus.nodePath`), initializes it for this workspace, starts feeding, forwards its
 * notifications, restarts it with exponential backoff when it dies, and shuts it down.
 * Imports only the protocol and the client of the sidecar.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { SidecarHandle, initialize, shutdown, spawnSidecar } from '../sidecar/client';
import {
  AnswerSources, AnswerToken, Ask, AskResult, Cancel, ErrorCodes, Forget, ForgetResult, Focus, Ingest, IngestResult,
  Fed, InitializeResult, Log, Progress, SetPaused, Source, StateChanged, Status, StatusResult,
} from '../sidecar/protocol';
import { logFromSidecar } from './log';
import { Settings, readSettings, storeDirFor } from './settings';
import { Phase, ViewStateStore } from './viewState';

export interface AskCallbacks {
  onToken(text: string): void;
  onSources(sources: Source[]): void;
}

const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 32000, 60000];
/** After this many crashes in a row without a stable minute in between, stop retrying. */
const MAX_CRASHES = 6;

export class SidecarManager implements vscode.Disposable {
  private handle: SidecarHandle | null = null;
  private init: InitializeResult | null = null;
  private generation = 0;
  private stopping = false;
  private disposed = false;
  private crashes = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly asks = new Map<string, AskCallbacks>();
  private askSeq = 0;
  private stateSeq = 0;
  /** Files the sidecar reported fed after a watcher batch: absolute path → modification time fed. */
  private readonly fedAt = new Map<string, number>();
  private ingestRunning = false;
  private settings: Settings = readSettings();
  private storeDir: string | null = null;
  private lastFocus = '';

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly view: ViewStateStore,
  ) {}

  /** Workspace folders the sidecar serves (file scheme only). */
  folders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  }

  get ready(): boolean {
    return !!this.init && !!this.handle;
  }

  get initResult(): InitializeResult | null {
    return this.init;
  }

  get storePath(): string | null {
    return this.storeDir;
  }

  /** Starts the sidecar if the settings allow; never throws (problems become the view state). */
  async start(): Promise<void> {
    if (this.disposed || this.handle) return;
    const gen = ++this.generation;
    this.settings = readSettings();
    const s = this.settings;
    const folders = this.folders();
    if (!folders.length) return this.blocked('off', 'no folder is open', 'open a folder first');
    if (!s.modelPath) {
      this.blocked('needsModel', 'mplus.modelPath is not set', 'no model configured: set mplus.modelPath');
      void this.promptForModel();
      return;
    }
    this.storeDir = storeDirFor(s, this.context, folders);
    if (!this.storeDir) return this.blocked('error', 'no place to keep the memory store (set mplus.storePath)', 'no place to keep the memory store: set mplus.storePath');
    const trusted = vscode.workspace.isTrusted;
    if (!trusted && !storeExists(this.storeDir)) {
      this.log.warn('untrusted workspace and no memory store yet: not reading its files');
      return this.blocked('untrusted', 'untrusted workspace', 'this workspace is not trusted and has no memory yet: trust it to let M+ read its files');
    }
    const feeding = trusted && s.feedingEnabled;
    this.view.update({ feedingBlocked: !trusted ? 'untrusted' : !s.feedingEnabled ? 'disabled' : undefined, progress: undefined });
    this.setPhase(this.crashes ? 'restarting' : 'starting', this.crashes ? `attempt ${this.crashes + 1}` : undefined);

    const execPath = s.nodePath || process.execPath;
    const env: NodeJS.ProcessEnv = s.nodePath ? {} : { ELECTRON_RUN_AS_NODE: '1' };
    this.log.info(`starting the sidecar: ${execPath} (model ${s.modelPath}, store ${this.storeDir}, device ${s.device})`);
    let h: SidecarHandle;
    try {
      fs.mkdirSync(this.storeDir, { recursive: true });
      h = spawnSidecar({ execPath, env, onStderr: (line) => line.trim() && this.log.warn(`[sidecar stderr] ${line}`) });
    } catch (e) {
      return this.fail(`cannot start the sidecar: ${(e as Error).message}`, 'restart');
    }
    this.handle = h;
    this.wire(h);
    const startedAt = Date.now();
    void h.exited.then((code) => this.onExit(h, gen, code, startedAt));
    try {
      const r = await initialize(h.connection, {
        modelDir: s.modelPath,
        storeDir: this.storeDir,
        device: s.device,
        allowCpuFallback: s.device === 'auto',
        workspaceFolders: folders,
        ignore: s.ignore,
        watch: feeding,
        paused: !feeding,
        maxFiles: s.maxFiles,
        rebuildStore: true,
        storeBudgetBytes: s.storeBudgetGB > 0 ? Math.round(s.storeBudgetGB * 2 ** 30) : undefined,
      });
      if (gen !== this.generation || this.handle !== h) return;
      this.init = r;
      this.log.info(`sidecar ${r.serverVersion} ready on ${r.device.description}; model ${r.model.layers} layers, d=${r.model.hidden}`);
      if (r.storeNotice) {
        this.log.warn(r.storeNotice);
        void vscode.window.showWarningMessage(`M+: ${r.storeNotice}`);
      }
      this.view.update({ device: r.device, status: r.status, coverage: r.status.coverage });
      // Feeding starts right away: do not flash "ready" with the coverage from before it.
      if (feeding && r.status.state === 'idle') this.setPhase('feeding');
      else this.applyServerState(r.status.state);
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      this.sendFocus(true);
      if (feeding) void this.ingestAll();
      // A sidecar that stays up a minute has recovered: reset the backoff.
      setTimeout(() => { if (this.handle === h) this.crashes = 0; }, 60000);
    } catch (e) {
      if (gen !== this.generation || this.handle !== h) return;
      const err = e as Error & { code?: number };
      const exited = h.process.exitCode !== null || h.process.signalCode !== null;
      if (exited) return; // onExit decides about restarting
      const msg = err.message ?? String(e);
      this.log.error(`initialize failed: ${msg}`);
      this.stopping = true;
      await shutdown(h, 3000).catch(() => undefined);
      this.stopping = false;
      if (this.handle === h) this.handle = null;
      const settingProblem = err.code === ErrorCodes.BadModel || err.code === ErrorCodes.DeviceUnavailable;
      // A store that cannot be opened (damaged, another model, an older format) is left as it is
      // until the user chooses to rebuild: it is moved aside, never deleted.
      this.fail(msg, settingProblem ? 'settings' : err.code === ErrorCodes.BadStore || err.code === ErrorCodes.StoreDamaged ? 'store' : 'restart');
    }
  }

  private wire(h: SidecarHandle): void {
    const c = h.connection;
    c.onNotification(Log, (p) => logFromSidecar(this.log, p));
    c.onNotification(Progress, (p) => {
      if (this.handle !== h) return;
      this.view.update({ progress: p });
      if (this.view.get().phase === 'ready' && p.filesDone < p.filesTotal) this.setPhase('feeding');
    });
    c.onNotification(Fed, (p) => {
      for (const f of p.files) this.fedAt.set(path.normalize(f.absPath), f.mtimeMs);
      this.markRefreshedIfFed();
    });
    c.onNotification(StateChanged, (p) => {
      if (this.handle !== h) return;
      this.applyServerState(p.state, p.detail);
    });
    c.onNotification(AnswerToken, (p) => this.asks.get(p.askId)?.onToken(p.text));
    c.onNotification(AnswerSources, (p) => this.asks.get(p.askId)?.onSources(p.sources));
  }

  private applyServerState(state: StatusResult['state'], detail?: string): void {
    const prev = this.view.get().phase;
    const map: Record<StatusResult['state'], Phase> = {
      starting: 'starting', idle: 'ready', ingesting: 'feeding', answering: 'answering', paused: 'paused', error: 'error',
    };
    const seq = ++this.stateSeq;
    const apply = () => {
      if (seq !== this.stateSeq) return; // a newer state arrived meanwhile
      this.setPhase(map[state], detail);
      // Fallback for a saved file memory does not feed (an ignored one): the next feeding → idle.
      if (prev === 'feeding' && state === 'idle') {
        const r = this.view.get().refresh;
        if (r && !r.done) this.view.update({ refresh: { ...r, done: true, at: Date.now() } });
      }
    };
    if (state === 'ingesting') {
      this.pollStatus(true);
      apply();
    } else {
      this.pollStatus(false);
      // "ready" is shown together with the coverage it reached, not the one from before
      if (state === 'idle') void this.refreshStatus().then(apply);
      else {
        apply();
        void this.refreshStatus();
      }
    }
  }

  private pollStatus(on: boolean): void {
    if (on && !this.statusTimer) this.statusTimer = setInterval(() => void this.refreshStatus(), 2000);
    if (!on && this.statusTimer) {
      clearInterval(this.statusTimer);
      this.statusTimer = null;
    }
  }

  async refreshStatus(): Promise<StatusResult | null> {
    const h = this.handle;
    if (!h || !this.init) return null;
    try {
      const st = await h.connection.sendRequest(Status);
      if (this.handle === h) this.view.update({ status: st, coverage: st.coverage });
      return st;
    } catch {
      return null;
    }
  }

  private setPhase(phase: Phase, detail?: string): void {
    this.view.update({ phase, detail });
  }

  /** A state in which the sidecar cannot start: waiting questions fail with `why`. */
  private blocked(phase: Phase, detail: string, why: string): void {
    this.setPhase(phase, detail);
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(why));
  }

  private fail(message: string, fix: 'settings' | 'store' | 'restart'): void {
    this.setPhase('error', message);
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(message));
    const buttons = [{ settings: 'Open Settings', store: 'Rebuild Memory', restart: 'Restart Sidecar' }[fix], 'Open Log'];
    void vscode.window.showErrorMessage(`M+: ${message}`, ...buttons).then((b) => this.onButton(b));
  }

  private onButton(b: string | undefined): void {
    if (b === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'mplus.');
    else if (b === 'Open Log') this.log.show();
    else if (b === 'Restart Sidecar') void this.restart();
    else if (b === 'Rebuild Memory') void vscode.commands.executeCommand('mplus.rebuild');
    else if (b === 'Set Model Path') void vscode.commands.executeCommand('workbench.action.openSettings', 'mplus.modelPath');
  }

  private async promptForModel(): Promise<void> {
    const b = await vscode.window.showWarningMessage(
      'M+: no model configured. Set "mplus.modelPath" to the folder of an M+ checkpoint (config.json, *.safetensors, tokenizer.json).',
      'Set Model Path');
    this.onButton(b);
  }

  private onExit(h: SidecarHandle, gen: number, code: number | string, startedAt: number): void {
    if (this.handle === h) {
      this.handle = null;
      this.init = null;
    }
    this.pollStatus(false);
    this.ingestRunning = false;
    for (const cb of this.asks.values()) cb.onToken('');
    if (this.stopping || this.disposed || gen !== this.generation) {
      this.log.info(`sidecar exited (${code})`);
      return;
    }
    this.crashes++;
    const up = ((Date.now() - startedAt) / 1000).toFixed(1);
    if (this.crashes > MAX_CRASHES) {
      this.log.error(`sidecar exited (${code}) after ${up} s; ${MAX_CRASHES} restarts failed, giving up`);
      this.fail(`the sidecar keeps stopping (exit ${code}); see the log`, 'restart');
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.crashes - 1, BACKOFF_MS.length - 1)];
    this.log.warn(`sidecar exited unexpectedly (${code}) after ${up} s; restarting in ${delay / 1000} s`);
    this.setPhase('restarting', `exited (${code}), restarting in ${delay / 1000} s`);
    // One notification per crash streak; later attempts show in the status bar and the log.
    if (this.crashes === 1) {
      void vscode.window.showWarningMessage(`M+: the sidecar stopped unexpectedly (exit ${code}); restarting it.`, 'Restart Sidecar', 'Open Log')
        .then((b) => this.onButton(b));
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.start();
    }, delay);
  }

  /** Stops the sidecar (finishing its current commit). */
  async stop(): Promise<void> {
    this.generation++;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.pollStatus(false);
    const h = this.handle;
    this.handle = null;
    this.init = null;
    if (!h) return;
    this.stopping = true;
    try {
      await shutdown(h, 10000);
    } finally {
      this.stopping = false;
    }
  }

  async restart(): Promise<void> {
    this.log.info('restarting the sidecar');
    this.crashes = 0;
    await this.stop();
    await this.start();
  }

  /** Waits until the sidecar is initialized (or fails), starting it if needed. */
  async whenReady(timeoutMs = 120000): Promise<void> {
    if (this.ready) return;
    const phase = this.view.get().phase;
    if (phase === 'needsModel') throw new Error('no model configured: set mplus.modelPath');
    if (phase === 'untrusted') throw new Error('this workspace is not trusted and has no memory yet: trust it to let M+ read its files');
    if (phase === 'off') throw new Error('open a folder first');
    if (!this.handle && !this.restartTimer) void this.start();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the sidecar did not become ready in time')), timeoutMs);
      this.readyWaiters.push({ resolve: () => { clearTimeout(t); resolve(); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  private conn() {
    if (!this.handle || !this.init) throw new Error('the M+ sidecar is not running');
    return this.handle.connection;
  }

  async ingestAll(): Promise<IngestResult | null> {
    if (this.ingestRunning) return null;
    this.ingestRunning = true;
    const h = this.handle;
    try {
      const r = await this.conn().sendRequest(Ingest, { paths: 'all' });
      this.log.info(`feeding done: ${r.filesDone} file(s), ${r.chunksInjected} chunk(s) injected, ${r.chunksSkipped} unchanged${r.cancelled ? ' (cancelled)' : ''}`);
      for (const e of r.errors) this.log.warn(`not fed: ${e.path}: ${e.message}`);
      return r;
    } catch (e) {
      if (this.handle === h) this.log.error(`feeding failed: ${(e as Error).message}`);
      if (this.handle === h && (e as { code?: number }).code === ErrorCodes.StoreDamaged) this.fail((e as Error).message, 'store');
      return null;
    } finally {
      this.ingestRunning = false;
      // settle the phase even when the job fed nothing (no state change was sent)
      void this.refreshStatus().then((st) => {
        if (st && this.handle === h && this.view.get().phase === 'feeding' && st.state !== 'ingesting') this.applyServerState(st.state);
      });
    }
  }

  newAskId(): string {
    return `ask-${Date.now().toString(36)}-${++this.askSeq}`;
  }

  async ask(question: string, askId: string, cb: AskCallbacks, maxTokens = readSettings().maxTokens): Promise<AskResult> {
    await this.whenReady();
    this.asks.set(askId, cb);
    try {
      return await this.conn().sendRequest(Ask, { question, askId, maxTokens });
    } catch (e) {
      // Damage found while answering (a Θ row failing its checksum): offer Rebuild, as at startup.
      if ((e as { code?: number }).code === ErrorCodes.StoreDamaged) this.fail((e as Error).message, 'store');
      throw e;
    } finally {
      this.asks.delete(askId);
    }
  }

  async cancelAsk(askId: string): Promise<void> {
    if (!this.handle || !this.init) return;
    await this.handle.connection.sendRequest(Cancel, { target: { askId } }).catch(() => undefined);
  }

  async forget(paths: string[]): Promise<ForgetResult> {
    await this.whenReady();
    const r = await this.conn().sendRequest(Forget, { paths });
    await this.refreshStatus();
    return r;
  }

  async setPaused(paused: boolean): Promise<StatusResult> {
    await this.whenReady();
    if (!paused && this.view.get().feedingBlocked === 'untrusted') throw new Error('this workspace is not trusted: M+ does not feed it');
    const st = await this.conn().sendRequest(SetPaused, { paused });
    this.view.update({ status: st, coverage: st.coverage, feedingBlocked: undefined });
    this.applyServerState(st.state);
    if (!paused) void this.ingestAll();
    return st;
  }

  /** Deletes this workspace's memory and feeds everything again. */
  async rebuild(): Promise<void> {
    const store = this.storeDir ?? storeDirFor(readSettings(), this.context, this.folders());
    await this.stop();
    if (store && fs.existsSync(store)) {
      this.log.info(`rebuild: deleting the memory store ${store}`);
      fs.rmSync(store, { recursive: true, force: true });
    }
    this.view.update({ coverage: undefined, progress: undefined, refresh: undefined });
    this.crashes = 0;
    await this.start();
  }

  /** A document was saved: its memory will be refreshed by the sidecar's watcher. */
  noteSaved(doc: vscode.TextDocument): void {
    if (doc.uri.scheme !== 'file' || !this.ready || this.view.get().feedingBlocked) return;
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri);
    if (!folder) return;
    const rel = path.relative(folder.uri.fsPath, doc.uri.fsPath).split(path.sep).join('/');
    let mtimeMs: number | undefined;
    try {
      mtimeMs = fs.statSync(doc.uri.fsPath).mtimeMs;
    } catch {
      mtimeMs = undefined;
    }
    this.view.update({ refresh: { file: rel, done: false, at: Date.now(), abs: path.normalize(doc.uri.fsPath), mtimeMs } });
    // The sidecar's watcher may have fed this save before VS Code told us about it.
    this.markRefreshedIfFed();
    this.sendFocus(true, doc.uri.fsPath);
  }

  /** The pending refresh is done once memory holds its file as of the saved modification time. */
  private markRefreshedIfFed(): void {
    const r = this.view.get().refresh;
    if (!r || r.done || !r.abs || r.mtimeMs === undefined) return;
    const fed = this.fedAt.get(r.abs);
    if (fed !== undefined && fed >= r.mtimeMs) this.view.update({ refresh: { ...r, done: true, at: Date.now() } });
  }

  /** Tells the sidecar which files the user is looking at (fed first). */
  sendFocus(force = false, first?: string): void {
    if (!this.handle || !this.init) return;
    const paths: string[] = [];
    const add = (u: vscode.Uri | undefined) => {
      if (u && u.scheme === 'file' && !paths.includes(u.fsPath)) paths.push(u.fsPath);
    };
    if (first) paths.push(first);
    add(vscode.window.activeTextEditor?.document.uri);
    for (const e of vscode.window.visibleTextEditors) add(e.document.uri);
    for (const g of vscode.window.tabGroups.all) {
      for (const t of g.tabs) if (t.input instanceof vscode.TabInputText) add(t.input.uri);
    }
    const key = paths.join('\n');
    if (!force && key === this.lastFocus) return;
    this.lastFocus = key;
    void this.handle.connection.sendNotification(Focus, { paths }).catch(() => undefined);
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
  }
}

function storeExists(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}
