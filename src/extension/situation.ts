/**
 * What the user can do about the state M+ is in: for every empty or error state, one sentence in
 * plain words and the one action that fixes it (sometimes a second one). The Ask view's header,
 * the `@mplus` reply, the status bar tooltip and the notifications all take their words and
 * buttons from here, so they never disagree. No `vscode` import: tested directly.
 */
import type { ViewState } from './viewState';

export interface Action {
  title: string;
  command: string;
  /** Arguments for the command (only for built-in commands such as opening a setting). */
  args?: unknown[];
}

export interface Situation {
  /** One or two sentences for people: what happened, what it means. */
  message: string;
  /** The one action that fixes it (absent while M+ fixes it itself). */
  action?: Action;
  secondary?: Action;
  severity: 'info' | 'warning' | 'error';
}

/** Why M+ cannot run; the phase is 'error' (or 'needsModel', 'untrusted'). */
export type ProblemKind = 'model' | 'device' | 'runtime' | 'storePlace' | 'store' | 'busy' | 'failed' | 'crashLoop';

export const ACTIONS = {
  download: { title: 'Download Model…', command: 'mplus.downloadModel' },
  selectFolder: { title: 'Select Model Folder…', command: 'mplus.selectModelFolder' },
  openFolder: { title: 'Open Folder…', command: 'workbench.action.files.openFolder' },
  trust: { title: 'Manage Workspace Trust', command: 'workbench.trust.manage' },
  rebuild: { title: 'Rebuild Memory', command: 'mplus.rebuild' },
  selectStoreFolder: { title: 'Select Memory Folder…', command: 'mplus.selectStoreFolder' },
  restart: { title: 'Restart M+', command: 'mplus.restartSidecar' },
  resume: { title: 'Resume Feeding', command: 'mplus.resume' },
  openLog: { title: 'Open Log', command: 'mplus.openLog' },
  consent: { title: 'Start Reading', command: 'mplus.consentToFeed' },
  setting: (key: string, title: string): Action => ({ title, command: 'workbench.action.openSettings', args: [key] }),
} satisfies Record<string, Action | ((...a: string[]) => Action)>;

/** The situation of `v`, or null when nothing needs the user (ready, feeding, answering, starting). */
export function situationOf(v: ViewState): Situation | null {
  const c = v.coverage;
  switch (v.phase) {
    case 'off':
      return { message: 'Open a folder to give M+ a memory of it.', action: ACTIONS.openFolder, severity: 'info' };
    case 'needsModel':
      return {
        message: 'M+ needs a model before it can read this workspace and answer. Download one, or select the folder of a model you already have.',
        action: ACTIONS.download, secondary: ACTIONS.selectFolder, severity: 'warning',
      };
    case 'untrusted':
      return { message: 'This workspace is not trusted, so M+ does not read its files. Trust it to let M+ build its memory.', action: ACTIONS.trust, severity: 'warning' };
    case 'restarting':
      return { message: 'The M+ process stopped unexpectedly. M+ is restarting it; what memory had committed is kept.', secondary: ACTIONS.openLog, severity: 'warning' };
    case 'paused':
      return {
        message: `Feeding is paused${c ? `: memory covers ${c.filesFed}/${c.filesKnown} files, so answers may miss the rest` : ''}.`,
        action: ACTIONS.resume, severity: 'info',
      };
    case 'error':
      return problemSituation(v.problem ?? 'crashLoop', v.detail ?? 'something went wrong');
    default:
      if (v.consent) {
        return {
          message: `This workspace is large (${consentNumbers(v.consent)}). M+ waits for your go-ahead before reading it.`,
          action: ACTIONS.consent, severity: 'info',
        };
      }
      return null;
  }
}

/** What reading a large workspace costs: "120 files, about 40,000 tokens: about 0.1 GB of memory on disk and 3 min of reading". */
export function consentNumbers(c: NonNullable<ViewState['consent']>): string {
  return `${c.files.toLocaleString('en-US')} files, about ${c.estimate}`;
}

function problemSituation(kind: ProblemKind, detail: string): Situation {
  // The detail may end a sentence itself ("… use Download Model…."): one full stop, added here.
  const why = detail.replace(/\.$/, '');
  switch (kind) {
    case 'model':
      return { message: `The model could not be loaded: ${sentence(why)}`, action: ACTIONS.selectFolder, secondary: ACTIONS.download, severity: 'error' };
    case 'device':
      return { message: `${capital(why)}.`, action: ACTIONS.setting('mplus.device', 'Choose Device'), severity: 'error' };
    case 'runtime':
      return { message: `M+ could not start its process: ${why}.`, action: ACTIONS.setting('mplus.nodePath', 'Open Setting'), severity: 'error' };
    case 'storePlace':
      // The folder itself is the problem (a file in the way, no permission, a full disk):
      // rebuilding would fail the same way; another folder fixes it. (Not "Open Setting": the
      // setting is machine-scoped, which the Settings editor of a remote window does not show.)
      return { message: `${capital(why)}. Choose a folder M+ can write to.`, action: ACTIONS.selectStoreFolder, secondary: ACTIONS.openLog, severity: 'error' };
    case 'store':
      return {
        message: `This workspace's memory could not be opened (${why}). Rebuilding starts it empty and reads the workspace again; the old memory is moved aside, not deleted.`,
        action: ACTIONS.rebuild, severity: 'error',
      };
    case 'busy':
      return { message: `Another window is using this workspace's memory (${why}). Close that window, then restart M+ here.`, action: ACTIONS.restart, severity: 'error' };
    case 'failed':
      return { message: `M+ could not start: ${why}.`, action: ACTIONS.restart, secondary: ACTIONS.openLog, severity: 'error' };
    case 'crashLoop':
    default:
      return { message: `The M+ process keeps stopping unexpectedly (${why}). The log says why.`, action: ACTIONS.restart, secondary: ACTIONS.openLog, severity: 'error' };
  }
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** `s` ended with one full stop (or the ellipsis it already ends with). */
const sentence = (s: string) => (/[.…!?]$/.test(s) ? s : `${s}.`);

/** Every command a situation can offer (for trusted markdown and the webview's allow-list). */
export const SITUATION_COMMANDS: string[] = [...new Set(Object.values(ACTIONS).flatMap((a) => (typeof a === 'function' ? [a('', '').command] : [a.command])))];
