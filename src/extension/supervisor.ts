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
import { checkModelFolder } from './download/modelFolder';
import { resolveRuntime } from './runtime';
import { ACTIONS, Action, ProblemKind, situationOf } from './situation';
import { Settings, readSettings, storeDirFor } from './settings';
import { UiStateAdapter } from './uiState';

const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 32000, 60000];
/** After this many crashes in a row without a stable minute in between, stop retrying. */
const MAX_CRASHES = 6;
/** globalState key: the user chose "Don't Show Again" on the no-model notification. */
const NO_MODEL_MUTED = 'mplus.noModelNotice.muted';

export interface SupervisorHooks {
  /** A new process is up: subscribe to its notifications (before initialize is sent). */
  wire(h: SidecarHandle, current: () => boolean): void;
  /** True when feeding must wait (for the user's consent): the process starts paused. */
  holdFeeding(): boolean;
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
  /** Ends the "stopped unexpectedly" notification once the process is back (or given up on). */
  private endCrashNotice: (() => void) | null = null;
  /** Whether the running sidecar may feed (trusted workspace, feeding enabled). */
  feeding = false;
  /** The user confirmed Rebuild while the store could not be opened: the next start moves it aside. */
  private rebuildAtStart = false;

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
    if (!this.handle || !this.init) throw new Error('the M+ process is not running');
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
    if (!folders.length) return this.blocked('off', 'no folder is open');
    if (!s.modelPath) {
      this.blocked('needsModel', 'no model is set');
      void this.promptForModel();
      return;
    }
    // A model folder that is missing or incomplete is a setting to fix, said in plain words
    // (never a raw ENOENT from deep in the loader), and not a crash to retry.
    const model = checkModelFolder(s.modelPath);
    if (!model.ok) return this.fail(model.problem, 'model');
    this.storeDir = storeDirFor(s, this.context, folders);
    if (!this.storeDir) return this.fail('M+ has no place to keep this workspace\'s memory', 'storePlace');
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
      return this.fail((e as Error).message, 'runtime');
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
        precision: s.precision,
        allowCpuFallback: s.device === 'auto',
        workspaceFolders: folders,
        ignore: s.ignore,
        watch: feeding,
        paused: !feeding || this.hooks.holdFeeding(),
        maxFiles: s.maxFiles,
        // A store that cannot be opened (damaged, another model, an older format) is left as it is
        // until the user chooses Rebuild: then it is moved aside, never deleted.
        rebuildStore: this.rebuildAtStart,
        // An untrusted workspace may answer from memory built earlier, never start one.
        requireStore: !trusted,
        storeBudgetBytes: s.storeBudgetGB > 0 ? Math.round(s.storeBudgetGB * 2 ** 30) : undefined,
      });
      if (gen !== this.generation || this.handle !== h) return;
      this.init = r;
      this.log.info(`sidecar ${r.serverVersion} ready on ${r.device.description}; model ${r.model.layers} layers, d=${r.model.hidden}`);
      // Only a Rebuild the user confirmed moves a store aside at open; Rebuild's own notice says so.
      if (r.storeNotice) this.log.warn(r.storeNotice);
      this.hooks.ready(r, feeding);
      this.endCrashNotice?.();
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      // A sidecar that stays up a minute has recovered: reset the backoff.
      setTimeout(() => { if (this.handle === h) this.crashes = 0; }, 60000);
    } catch (e) {
      if (gen !== this.generation || this.handle !== h) return;
      const err = e as Error & { code?: number; data?: { problem?: unknown } };
      const exited = h.process.exitCode !== null || h.process.signalCode !== null;
      if (exited) return; // onExit decides about restarting
      const msg = err.message ?? String(e);
      // A store's problem in words for people (the message also names the file and the CLI's fix).
      const storeProblem = typeof err.data?.problem === 'string' ? err.data.problem : null;
      this.stopping = true;
      await shutdown(h, 3000);
      this.stopping = false;
      if (this.handle === h) this.handle = null;
      if (err.code === ErrorCodes.NoStore) {
        this.log.warn('untrusted workspace and no memory store yet: not reading its files');
        return this.blocked('untrusted', 'untrusted workspace');
      }
      this.log.error(`initialize failed: ${msg}`);
      this.fail(err.code === ErrorCodes.BadStore && storeProblem ? storeProblem : msg, err.code === ErrorCodes.BadModel ? 'model' : err.code === ErrorCodes.DeviceUnavailable ? 'device'
        : err.code === ErrorCodes.BadStore || err.code === ErrorCodes.StoreDamaged ? 'store' : err.code === ErrorCodes.StoreUnwritable ? 'storePlace'
        : err.code === ErrorCodes.Busy ? 'busy' : 'failed');
    }
  }

  /**
   * Rebuild when no process runs because the store could not be opened: start again, moving the
   * store aside at open. Resolves true when M+ is running on a fresh store.
   */
  async rebuildByRestart(): Promise<boolean> {
    this.rebuildAtStart = true;
    try {
      await this.restart();
    } finally {
      this.rebuildAtStart = false; // one start only, whatever became of it
    }
    return this.ready;
  }

  /** Damage found while working (a Θ row failing its checksum): offer Rebuild, as at startup. */
  offerRebuild(message: string): void {
    this.fail(message, 'store');
  }


  /** A state in which the process cannot start: waiting questions fail with its plain-words message. */
  private blocked(phase: 'off' | 'needsModel' | 'untrusted', detail: string): void {
    this.ui.view.update({ phase, detail, problem: undefined });
    this.endCrashNotice?.();
    const why = situationOf(this.ui.view.get())?.message ?? detail;
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(why));
  }

  /** M+ cannot run until the user acts: the state, one notification with the fixing action. */
  private fail(message: string, kind: ProblemKind): void {
    this.ui.view.update({ phase: 'error', detail: message, problem: kind });
    this.endCrashNotice?.();
    const sit = situationOf(this.ui.view.get())!;
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(sit.message));
    const actions = [sit.action, sit.secondary ?? (sit.action?.command !== 'mplus.openLog' ? ACTIONS.openLog : undefined)].filter((a): a is Action => !!a);
    void vscode.window.showErrorMessage(`M+: ${sit.message}`, ...actions.map((a) => a.title)).then((b) => {
      const a = actions.find((x) => x.title === b);
      if (a) void vscode.commands.executeCommand(a.command, ...(a.args ?? []));
    });
  }

  /** The no-model notice (once per start; "Don't Show Again" silences it for good). */
  private async promptForModel(): Promise<void> {
    if (this.context.globalState.get<boolean>(NO_MODEL_MUTED)) return;
    const sit = situationOf(this.ui.view.get());
    if (!sit) return;
    const muted = "Don't Show Again";
    const b = await vscode.window.showWarningMessage(`M+: ${sit.message}`, ACTIONS.download.title, ACTIONS.selectFolder.title, muted);
    if (b === muted) await this.context.globalState.update(NO_MODEL_MUTED, true);
    else if (b === ACTIONS.download.title) void vscode.commands.executeCommand(ACTIONS.download.command);
    else if (b === ACTIONS.selectFolder.title) void vscode.commands.executeCommand(ACTIONS.selectFolder.command);
  }

  /**
   * The crash notice: a progress notification, so that it closes by itself once the process is
   * back (a toast with a "Restart" button would stay after the automatic recovery).
   */
  private showCrashNotice(): void {
    if (this.endCrashNotice) return;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'M+: the M+ process stopped unexpectedly; restarting it…' },
      () => new Promise<void>((resolve) => {
        this.endCrashNotice = () => {
          this.endCrashNotice = null;
          resolve();
        };
      }));
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
      this.fail(`${MAX_CRASHES} restarts in a row failed`, 'crashLoop');
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.crashes - 1, BACKOFF_MS.length - 1)];
    this.log.warn(`sidecar exited unexpectedly (${code}) after ${up} s; restarting in ${delay / 1000} s`);
    this.ui.view.update({ phase: 'restarting', detail: `restarting in ${delay / 1000} s`, problem: undefined });
    // One notification per crash streak, closed when the process is back; later attempts show
    // in the status bar and the log.
    this.showCrashNotice();
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
    const v = this.ui.view.get();
    // States only the user can leave (its action): say so rather than start again (and fail twice).
    if (v.phase === 'needsModel' || v.phase === 'untrusted' || v.phase === 'off' || v.phase === 'error') throw new Error(situationOf(v)!.message);
    if (!this.handle && !this.restartTimer) void this.start();
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('M+ did not finish starting in time; the log says what it is doing')), timeoutMs);
      this.readyWaiters.push({ resolve: () => { clearTimeout(t); resolve(); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  }

  dispose(): void {
    this.disposed = true;
    this.endCrashNotice?.();
    void this.stop();
  }
}
