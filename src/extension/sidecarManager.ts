/**
 * The extension's one handle on its sidecar, composed of three parts with one job each:
 *   SidecarSupervisor  the process: runtime check, spawn, initialize, backoff restarts, stop
 *   MemoryClient       the typed requests (ask, cancel, forget, pause, feed, rebuild, status, focus)
 *   UiStateAdapter     what the sidecar reports → the ViewState the UI draws
 * Commands, views and the chat participant use this facade. Imports only the protocol and the
 * client of the sidecar; the memory store's files are the sidecar's alone.
 */
import * as vscode from 'vscode';
import { WorkspacePaths } from '../sidecar/paths';
import { AskResult, ForgetResult, InitializeResult, IngestResult, Log, StatusResult } from '../sidecar/protocol';
import { logFromSidecar } from './log';
import { AskCallbacks, MemoryClient } from './memoryClient';
import { SidecarSupervisor } from './supervisor';
import { UiStateAdapter } from './uiState';
import { ViewStateStore } from './viewState';

export type { AskCallbacks } from './memoryClient';

export class SidecarManager implements vscode.Disposable {
  private readonly ui: UiStateAdapter;
  private readonly sup: SidecarSupervisor;
  private readonly client: MemoryClient;

  constructor(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, view: ViewStateStore) {
    this.ui = new UiStateAdapter(view, () => this.client.status());
    this.sup = new SidecarSupervisor(context, log, this.ui, {
      wire: (h, current) => {
        h.connection.onNotification(Log, (p) => logFromSidecar(log, p));
        this.ui.wire(h.connection, current);
        this.client.wire(h.connection);
      },
      ready: (r, feeding) => {
        view.update({ device: r.device, status: r.status, coverage: r.status.coverage });
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

  /** Moves this workspace's memory aside (the sidecar does it, under its lock) and feeds everything again. */
  async rebuild(): Promise<void> {
    await this.client.rebuild();
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
