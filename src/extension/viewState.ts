/**
 * What the UI shows about memory, in one place: the status bar, the chat view header and the
 * status command all read this and redraw on `onDidChange`.
 */
import * as vscode from 'vscode';
import type { Coverage, DeviceInfo, ProgressParams, StatusResult } from '../sidecar/protocol';

export type Phase =
  | 'off' // no workspace folder
  | 'needsModel' // mplus.modelPath is not set
  | 'untrusted' // untrusted workspace with no store: nothing to answer from
  | 'starting'
  | 'ready'
  | 'feeding'
  | 'paused'
  | 'answering'
  | 'restarting'
  | 'error';

export interface ViewState {
  phase: Phase;
  /** One line for people: why it is in this phase. */
  detail?: string;
  coverage?: Coverage;
  progress?: ProgressParams;
  status?: StatusResult;
  device?: DeviceInfo;
  /** Feeding is refused (untrusted workspace) or disabled in settings. */
  feedingBlocked?: 'untrusted' | 'disabled';
  /** The file saved last and whether memory has caught up with it. */
  refresh?: { file: string; done: boolean; at: number; abs?: string; mtimeMs?: number };
}

export class ViewStateStore implements vscode.Disposable {
  private s: ViewState = { phase: 'starting' };
  private readonly emitter = new vscode.EventEmitter<ViewState>();
  readonly onDidChange = this.emitter.event;

  get(): ViewState {
    return this.s;
  }

  update(patch: Partial<ViewState>): void {
    this.s = { ...this.s, ...patch };
    this.emitter.fire(this.s);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

export function percent(done: number, total: number): number {
  return total > 0 ? Math.floor((100 * done) / total) : 100;
}

/** "memory covers 12/40 files, feeding…" */
export function coverageLine(v: ViewState): string {
  switch (v.phase) {
    case 'off': return 'Open a folder to give M+ a memory of it.';
    case 'needsModel': return 'Set mplus.modelPath to an M+ checkpoint folder to start.';
    case 'untrusted': return 'Untrusted workspace: M+ does not read its files. Trust the workspace to feed memory.';
    case 'error': return `M+ is not running: ${v.detail ?? 'error'}`;
    case 'restarting': return `M+ sidecar restarting: ${v.detail ?? ''}`.trim();
    case 'starting': return 'M+ is starting…';
    default: break;
  }
  const c = v.coverage;
  let line = c ? `memory covers ${c.filesFed}/${c.filesKnown} files` : 'memory';
  if (v.phase === 'feeding') {
    const p = v.progress;
    line += p && p.filesTotal ? `, feeding ${p.filesDone}/${p.filesTotal}…` : ', feeding…';
  } else if (v.phase === 'paused') line += ', feeding paused';
  else if (v.feedingBlocked === 'untrusted') line += ' (untrusted workspace: not feeding)';
  else if (v.feedingBlocked === 'disabled') line += ' (feeding disabled)';
  if (v.refresh) line += v.refresh.done ? ` · refreshed ${v.refresh.file}` : ` · refreshing ${v.refresh.file}…`;
  return line;
}
