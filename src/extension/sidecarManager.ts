/**
 * The extension's one handle on its sidecar, composed of three parts with one job each:
 *   SidecarSupervisor  the process: runtime check, spawn, initialize, backoff restarts, stop
 *   MemoryClient       the typed requests (ask, cancel, forget, pause, feed, rebuild, status, focus)
 *   UiStateAdapter     what the sidecar reports → the ViewState the UI draws
 * Commands, views and the chat participant use this facade. Imports only the protocol and the
 * client of the sidecar; the memory store's files are the sidecar's alone.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { resolveModel } from '../sidecar/defaultModel';
import { modelResidentBytes } from '../sidecar/modelSize';
import { WorkspacePaths } from '../sidecar/paths';
import { FeedEstimate, AskResult, ForgetResult, InitializeResult, IngestResult, Log, StatusResult } from '../sidecar/protocol';
import { FeedingConsent } from './consent';
import { rateKey } from './feedRate';
import { checkModelFolder } from './download/modelFolder';
import { logFromSidecar } from './log';
import { requirementLines } from './requirements';
import { readSettings } from './settings';
import { ACTIONS, situationOf } from './situation';
import { AskCallbacks, MemoryClient } from './memoryClient';
import { SidecarSupervisor } from './supervisor';
import { UiStateAdapter } from './uiState';
import { ViewStateStore } from './viewState';

export type { AskCallbacks } from './memoryClient';

export class SidecarManager implements vscode.Disposable {
  private readonly ui: UiStateAdapter;
  private readonly sup: SidecarSupervisor;
  private readonly client: MemoryClient;

  readonly consent: FeedingConsent;
  private modelSize: { path: string; precision: string; bytes: number | null } | null = null;

  constructor(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, private readonly view: ViewStateStore) {
    // Keyed by what sets the rate: the model M+ runs (the configured one, else the bundled default), device, precision.
    const consent = new FeedingConsent(context, () => {
      const s = readSettings();
      return rateKey(resolveModel([s.modelPath])?.dir ?? '', s.device, s.precision);
    });
    this.consent = consent;
    this.ui = new UiStateAdapter(view, () => this.client.status(), (p) => consent.rememberRate(p.tokensPerSecond));
    this.sup = new SidecarSupervisor(context, log, this.ui, {
      wire: (h, current) => {
        h.connection.onNotification(Log, (p) => logFromSidecar(log, p));
        this.ui.wire(h.connection, current);
        this.client.wire(h.connection);
      },
      holdFeeding: () => !consent.given,
      ready: (r, feeding) => {
        view.update({ device: r.device, status: r.status, coverage: r.status.coverage, consent: undefined });
        if (feeding && !consent.given) {
          // Started held (paused): a large workspace waits for the user's go-ahead, a small one is fed now.
          this.client.sendFocus(true);
          if (consent.needed(r.status.estimate)) return this.askConsent(r.status.estimate);
          void this.client.setPaused(false).catch((e: Error) => log.warn(`could not start feeding: ${e.message}`));
          return;
        }
        // Feeding starts right away: do not flash "ready" with the coverage from before it.
        if (feeding && r.status.state === 'idle') this.ui.setPhase('feeding');
        else this.ui.applyServerState(r.status.state);
        this.client.sendFocus(true);
        if (feeding) void this.client.ingestAll();
      },
      exited: () => {
        this.ui.pollStatus(false);
        this.client.exited();
      },
    });
    this.client = new MemoryClient(this.sup, this.ui, log);
  }

  /** Asks once per start: a notification, and the same question in the Ask view and status bar. */
  private askConsent(e: FeedEstimate): void {
    this.view.update({ consent: { files: e.files, estimate: this.consent.describe(e) } });
    this.ui.applyServerState('paused');
    const sit = situationOf(this.view.get());
    if (!sit) return;
    const req = this.requirements();
    void vscode.window.showInformationMessage(`M+: ${sit.message}`, { detail: req ?? undefined }, ACTIONS.consent.title, 'Not Now').then((b) => {
      if (b === ACTIONS.consent.title) void vscode.commands.executeCommand(ACTIONS.consent.command);
    });
  }

  /** The user agreed to reading this large workspace: remembered for it, and feeding starts. */
  async consentToFeed(): Promise<void> {
    await this.consent.give();
    this.view.update({ consent: undefined });
    if (this.sup.ready) await this.client.setPaused(false);
  }

  /** What this model and workspace need against what the machine has (requirements.ts), as lines. */
  requirementsCheck(): { lines: string[]; warnings: string[] } {
    const s = readSettings();
    // The model M+ runs: the configured one, else the bundled default (src/sidecar/defaultModel.ts).
    const modelDir = resolveModel([s.modelPath])?.dir ?? '';
    if (this.modelSize?.path !== modelDir || this.modelSize.precision !== s.precision) {
      const c = modelDir ? checkModelFolder(modelDir) : null;
      // In memory at the chosen precision (int8/int4 hold a fraction of the file); the file's size
      // when the checkpoint's headers cannot be read here (the sidecar then says why).
      const bytes = c?.ok ? modelResidentBytes(modelDir, s.precision) ?? c.weightsBytes : null;
      this.modelSize = { path: modelDir, precision: s.precision, bytes };
    }
    let freeDisk: number | null = null;
    try {
      const dir = this.sup.storePath ? path.dirname(this.sup.storePath) : null;
      if (dir && fs.existsSync(dir)) {
        const st = fs.statfsSync(dir);
        freeDisk = st.bavail * st.bsize;
      }
    } catch {
      freeDisk = null; // unknown: the line then leaves out the free space
    }
    const v = this.view.get();
    return requirementLines({
      modelBytes: this.modelSize.bytes, precision: s.precision, device: v.device ?? null, deviceSetting: s.device,
      machine: { totalMemBytes: os.totalmem(), freeMemBytes: os.freemem(), freeDiskBytes: freeDisk },
      estimate: v.status?.estimate ?? null, rememberedRate: this.consent.rememberedRate,
    });
  }

  /** The requirements as one paragraph (the status tooltip), warnings first; null without a model. */
  requirements(): string | null {
    const r = this.requirementsCheck();
    if (!this.modelSize?.bytes && !this.view.get().status) return null;
    return [...r.warnings.map((w) => `⚠ ${w}`), ...r.lines].join('\n');
  }

  get ready(): boolean {
    return this.sup.ready;
  }

  get initResult(): InitializeResult | null {
    return this.sup.initResult;
  }

  get storePath(): string | null {
    return this.sup.storePath;
  }

  folders(): string[] {
    return this.sup.folders();
  }

  start(): Promise<void> {
    return this.sup.start();
  }

  stop(): Promise<void> {
    return this.sup.stop();
  }

  restart(): Promise<void> {
    return this.sup.restart();
  }

  whenReady(timeoutMs?: number): Promise<void> {
    return this.sup.whenReady(timeoutMs);
  }

  refreshStatus(): Promise<StatusResult | null> {
    return this.ui.refreshStatus();
  }

  ingestAll(): Promise<IngestResult | null> {
    return this.client.ingestAll();
  }

  newAskId(): string {
    return this.client.newAskId();
  }

  ask(question: string, askId: string, cb: AskCallbacks, maxTokens?: number): Promise<AskResult> {
    return this.client.ask(question, askId, cb, maxTokens);
  }

  cancelAsk(askId: string): Promise<void> {
    return this.client.cancelAsk(askId);
  }

  forget(paths: string[]): Promise<ForgetResult> {
    return this.client.forget(paths);
  }

  readd(paths: string[]): Promise<IngestResult> {
    return this.client.readd(paths);
  }

  /** Absolute path of a workspace key as the sidecar names files ("folder/rel" in multi-root). */
  absPath(key: string): string {
    return new WorkspacePaths(this.sup.folders()).abs(key);
  }

  setPaused(paused: boolean): Promise<StatusResult> {
    return this.client.setPaused(paused);
  }

  /**
   * Moves this workspace's memory aside (the sidecar does it, under its lock) and feeds everything
   * again. When the store could not be opened no process runs to ask: M+ starts again and the
   * sidecar moves the store aside at open. False when it still cannot run (its notice says why).
   */
  async rebuild(): Promise<boolean> {
    const v = this.view.get();
    if (!this.sup.ready && v.phase === 'error' && v.problem === 'store') return this.sup.rebuildByRestart();
    await this.client.rebuild();
    return true;
  }

  /** A document was saved: its memory will be refreshed by the sidecar's watcher. */
  noteSaved(doc: vscode.TextDocument): void {
    if (doc.uri.scheme !== 'file' || !this.sup.ready || this.ui.view.get().feedingBlocked) return;
    this.ui.noteSaved(doc);
    this.client.sendFocus(true, doc.uri.fsPath);
  }

  sendFocus(force = false, first?: string): void {
    this.client.sendFocus(force, first);
  }

  dispose(): void {
    this.ui.dispose();
    this.sup.dispose();
  }
}
