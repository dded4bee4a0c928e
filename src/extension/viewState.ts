/**
 * What the UI shows about memory, in one place: the status bar, the chat view header and the
 * status command all read this and redraw on `onDidChange`.
 */
import * as vscode from 'vscode';
import type { Coverage, DeviceInfo, ProgressParams, StatusResult } from '../sidecar/protocol';
import { ProblemKind, consentNumbers, situationOf } from './situation';

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
  /** In the 'error' phase: what kind of problem, which decides the action offered (situation.ts). */
  problem?: ProblemKind;
  /** Feeding waits for the user's go-ahead on this large workspace (consent.ts). */
  consent?: { files: number; estimate: string };
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

/** Seconds as people say them: "40 s", "3 min", "1 h 20 min". */
export function duration(seconds: number): string {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

/**
 * What feeding is doing, in one count that adds up: files covered of the total, the file being
 * read, and the time left at the rate measured so far. Null when not feeding.
 */
export function feedingLine(v: ViewState): string | null {
  const c = v.coverage;
  const p = v.progress;
  if (!c?.feeding && v.phase !== 'feeding') return null;
  if (v.refresh && !v.refresh.done) return `refreshing ${v.refresh.file}…`;
  const parts = ['reading'];
  if (p?.currentFile) parts.push(p.currentFile);
  let line = parts.join(' ');
  if (p && p.etaSeconds !== null && p.etaSeconds > 0 && p.filesDone < p.filesTotal) line += `, about ${duration(p.etaSeconds)} left`;
  return line + '…';
}

/** "memory covers 12/40 files · reading src/a.ts, about 2 min left…", or what the user can do. */
export function coverageLine(v: ViewState): string {
  if (v.phase === 'starting') return 'M+ is starting…';
  if (v.phase !== 'paused') {
    const sit = situationOf(v);
    if (sit && !v.consent) return sit.message;
  }
  const c = v.coverage;
  let line = c ? `memory covers ${c.filesFed}/${c.filesKnown} files` : 'memory';
  const feeding = feedingLine(v);
  if (feeding) line += ` · ${feeding}`;
  else if (v.phase === 'paused') line += ', feeding paused';
  // The numbers the question is about, as in the notification that asks it.
  else if (v.consent) line += `, waiting for your go-ahead to read the workspace (${consentNumbers(v.consent)})`;
  else if (v.feedingBlocked === 'untrusted') line += ' (untrusted workspace: not reading it)';
  else if (v.feedingBlocked === 'disabled') line += ' (feeding turned off in settings)';
  if (v.refresh?.done) line += ` · refreshed ${v.refresh.file}`;
  return line;
}
