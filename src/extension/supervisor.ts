/**
 * The sidecar process supervisor: checks the runtime (runtime.ts), spawns the sidecar,
 * initializes it for this workspace, restarts it with exponential backoff when it dies, and stops
 * it. What the UI shows goes through the UiStateAdapter; everything else the process is asked
 * goes through the MemoryClient. Never touches the memory store's files: the sidecar owns them.
 */
import * as vscode from 'vscode';
import type { MessageConnection } from 'vscode-jsonrpc';
import { SidecarHandle, initialize, shutdown, spawnSidecar } from '../sidecar/client';
import { ErrorCodes, InitializeResult } from '../sidecar/protocol';
import { withDefaultModel } from './defaultModel';
import { resolveRuntime } from './runtime';
import { Settings, readSettings, storeDirFor } from './settings';
import { UiStateAdapter } from './uiState';

const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 32000, 60000];
/** After this many crashes in a row without a stable minute in between, stop retrying. */
const MAX_CRASHES = 6;

export interface SupervisorHooks {
  /** A new process is up: subscribe to its notifications (before initialize is sent). */
  wire(h: SidecarHandle, current: () => boolean): void;
  /** It initialized; `feeding`: this workspace may be fed now. */
  ready(r: InitializeResult, feeding: boolean): void;
  /** It exited (crash, stop or restart). */
  exited(): void;
}

export class SidecarSupervisor implements vscode.Disposable {
  private handle: SidecarHandle | null = null;
  private init: InitializeResult | null = null;
  private generation = 0;
  private stopping = false;
  private disposed = false;
  private crashes = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private storeDir: string | null = null;
  /** Whether the running sidecar may feed (trusted workspace, feeding enabled). */
  feeding = false;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly ui: UiStateAdapter,
    private readonly hooks: SupervisorHooks,
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

  /** The live connection; throws when the sidecar is not running. */
  connection(): MessageConnection {
    if (!this.handle || !this.init) throw new Error('the M+ sidecar is not running');
    return this.handle.connection;
  }

  /** The live connection, or null (for best-effort notifications and status). */
  connectionIfReady(): MessageConnection | null {
    return this.handle && this.init ? this.handle.connection : null;
  }

  /** Starts the sidecar if the settings allow; never throws (problems become the view state). */
  async start(): Promise<void> {
    if (this.disposed || this.handle) return;
    const gen = ++this.generation;
    const s: Settings = withDefaultModel(readSettings(), this.log);
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
    const feeding = trusted && s.feedingEnabled;
    this.feeding = feeding;
    this.ui.view.update({ feedingBlocked: !trusted ? 'untrusted' : !s.feedingEnabled ? 'disabled' : undefined, progress: undefined });
    this.ui.setPhase(this.crashes ? 'restarting' : 'starting', this.crashes ? `attempt ${this.crashes + 1}` : undefined);

    let h: SidecarHandle;
    try {
      const rt = await resolveRuntime(s.nodePath);
      if (gen !== this.generation || this.disposed) return;
      this.log.info(`starting the sidecar: ${rt.description} (model ${s.modelPath}, store ${this.storeDir}, device ${s.device})`);
      h = spawnSidecar({ execPath: rt.execPath, env: rt.env, onStderr: (line) => line.trim() && this.log.warn(`[sidecar stderr] ${line}`) });
    } catch (e) {
      // A runtime that cannot run is a setting to fix, not a crash to retry.
      return this.fail(`cannot start the sidecar: ${(e as Error).message}`, 'settings');
    }
    this.handle = h;
    this.hooks.wire(h, () => this.handle === h);
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
        // An untrusted workspace may answer from memory built earlier, never start one.
        requireStore: !trusted,
        storeBudgetBytes: s.storeBudgetGB > 0 ? Math.round(s.storeBudgetGB * 2 ** 30) : undefined,
      });
      if (gen !== this.generation || this.handle !== h) return;
      this.init = r;
      this.log.info(`sidecar ${r.serverVersion} ready on ${r.device.description}; model ${r.model.layers} layers, d=${r.model.hidden}`);
      if (r.storeNotice) {
        this.log.warn(r.storeNotice);
        void vscode.window.showWarningMessage(`M+: ${r.storeNotice}`);
      }
      this.hooks.ready(r, feeding);
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      // A sidecar that stays up a minute has recovered: reset the backoff.
      setTimeout(() => { if (this.handle === h) this.crashes = 0; }, 60000);
    } catch (e) {
      if (gen !== this.generation || this.handle !== h) return;
      const err = e as Error & { code?: number };
      const exited = h.process.exitCode !== null || h.process.signalCode !== null;
      if (exited) return; // onExit decides about restarting
      const msg = err.message ?? String(e);
      this.stopping = true;
      await shutdown(h, 3000);
      this.stopping = false;
      if (this.handle === h) this.handle = null;
      if (err.code === ErrorCodes.NoStore) {
        this.log.warn('untrusted workspace and no memory store yet: not reading its files');
        return this.blocked('untrusted', 'untrusted workspace', 'this workspace is not trusted and has no memory yet: trust it to let M+ read its files');
      }
      this.log.error(`initialize failed: ${msg}`);
      const settingProblem = err.code === ErrorCodes.BadModel || err.code === ErrorCodes.DeviceUnavailable;
      // A store that cannot be opened (damaged, another model, an older format) is left as it is
      // until the user chooses to rebuild: it is moved aside, never deleted.
      this.fail(msg, settingProblem ? 'settings' : err.code === ErrorCodes.BadStore || err.code === ErrorCodes.StoreDamaged ? 'store' : 'restart');
    }
  }

  /** Damage found while working (a Θ row failing its checksum): offer Rebuild, as at startup. */
  offerRebuild(message: string): void {
    this.fail(message, 'store');
  }

  /** A state in which the sidecar cannot start: waiting questions fail with `why`. */
  private blocked(phase: 'off' | 'needsModel' | 'untrusted' | 'error', detail: string, why: string): void {
    this.ui.setPhase(phase, detail);
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(why));
  }

  private fail(message: string, fix: 'settings' | 'store' | 'restart'): void {
    this.ui.setPhase('error', message);
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
    this.hooks.exited();
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
    this.ui.setPhase('restarting', `exited (${code}), restarting in ${delay / 1000} s`);
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
    this.ui.pollStatus(false);
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
    const phase = this.ui.view.get().phase;
    if (phase === 'needsModel') throw new Error('no model configured: set mplus.modelPath');
    if (phase === 'untrusted') throw new Error('this workspace is not trusted and has no memory yet: trust it to let M+ read its files');
    if (phase === 'off') throw new Error('open a folder first');
    if (!this.handle && !this.restartTimer) void this.start();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the sidecar did not become ready in time')), timeoutMs);
      this.readyWaiters.push({ resolve: () => { clearTimeout(t); resolve(); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
  }
}
