/**
 * The UI-state adapter: turns what the sidecar reports (state notifications, progress, status,
 * fed files) into the ViewState the status bar, chat view and commands draw. Knows no process
 * and sends no requests of its own: status comes through the `status` function it is given.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { MessageConnection } from 'vscode-jsonrpc';
import { Fed, Progress, ProgressParams, StateChanged, StatusResult } from '../sidecar/protocol';
import { Phase, ViewStateStore } from './viewState';

const PHASE_OF: Record<StatusResult['state'], Phase> = {
  starting: 'starting', idle: 'ready', ingesting: 'feeding', answering: 'answering', paused: 'paused', error: 'error',
};

export class UiStateAdapter implements vscode.Disposable {
  private statusTimer: NodeJS.Timeout | null = null;
  private stateSeq = 0;
  /** Files the sidecar reported fed after a watcher batch: absolute path → modification time fed. */
  private readonly fedAt = new Map<string, number>();

  constructor(
    readonly view: ViewStateStore,
    /** The sidecar's status, or null when it is not running or does not answer. */
    private readonly status: () => Promise<StatusResult | null>,
    /** Every progress notification (the feeding rate is remembered from it). */
    private readonly onProgress: (p: ProgressParams) => void = () => undefined,
  ) {}

  setPhase(phase: Phase, detail?: string): void {
    this.view.update({ phase, detail });
  }

  /** Follows one connection's notifications while `current()` says it is the live one. */
  wire(c: MessageConnection, current: () => boolean): void {
    c.onNotification(Progress, (p) => {
      if (!current()) return;
      this.onProgress(p);
      this.view.update({ progress: p });
      if (this.view.get().phase === 'ready' && p.filesDone < p.filesTotal) this.setPhase('feeding');
    });
    c.onNotification(Fed, (p) => {
      for (const f of p.files) this.fedAt.set(path.normalize(f.absPath), f.mtimeMs);
      this.markRefreshedIfFed();
    });
    c.onNotification(StateChanged, (p) => {
      if (current()) this.applyServerState(p.state, p.detail);
    });
  }

  applyServerState(state: StatusResult['state'], detail?: string): void {
    const prev = this.view.get().phase;
    const seq = ++this.stateSeq;
    const apply = () => {
      if (seq !== this.stateSeq) return; // a newer state arrived meanwhile
      // Held for the user's go-ahead on a large workspace: that is not a pause they chose.
      this.setPhase(state === 'paused' && this.view.get().consent ? 'ready' : PHASE_OF[state], detail);
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

  pollStatus(on: boolean): void {
    if (on && !this.statusTimer) this.statusTimer = setInterval(() => void this.refreshStatus(), 2000);
    if (!on && this.statusTimer) {
      clearInterval(this.statusTimer);
      this.statusTimer = null;
    }
  }

  async refreshStatus(): Promise<StatusResult | null> {
    const st = await this.status();
    if (st) this.view.update({ status: st, coverage: st.coverage });
    return st;
  }

  /** A document was saved while feeding is on: show it refreshing until memory has it. */
  noteSaved(doc: vscode.TextDocument): void {
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri);
    if (!folder) return;
    const rel = path.relative(folder.uri.fsPath, doc.uri.fsPath).split(path.sep).join('/');
    let mtimeMs: number | undefined;
    try {
      mtimeMs = fs.statSync(doc.uri.fsPath).mtimeMs;
    } catch {
      mtimeMs = undefined; // deleted right after the save: the watcher reports it instead
    }
    this.view.update({ refresh: { file: rel, done: false, at: Date.now(), abs: path.normalize(doc.uri.fsPath), mtimeMs } });
    // The sidecar's watcher may have fed this save before VS Code told us about it.
    this.markRefreshedIfFed();
  }

  /** The pending refresh is done once memory holds its file as of the saved modification time. */
  private markRefreshedIfFed(): void {
    const r = this.view.get().refresh;
    if (!r || r.done || !r.abs || r.mtimeMs === undefined) return;
    const fed = this.fedAt.get(r.abs);
    if (fed !== undefined && fed >= r.mtimeMs) this.view.update({ refresh: { ...r, done: true, at: Date.now() } });
  }

  dispose(): void {
    this.pollStatus(false);
  }
}
