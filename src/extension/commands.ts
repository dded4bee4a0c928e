/** The `mplus.*` commands. */
import * as vscode from 'vscode';
import type { StatusResult } from '../sidecar/protocol';
import { Quote } from './answerText';
import { ChatViewProvider } from './chatView';
import { registerForgetCommands } from './forgetCommands';
import { SidecarManager } from './sidecarManager';
import { Action, situationOf } from './situation';
import { ViewStateStore, coverageLine } from './viewState';

export function registerCommands(
  sidecar: SidecarManager,
  chatView: ChatViewProvider,
  state: ViewStateStore,
  log: vscode.LogOutputChannel,
): vscode.Disposable[] {
  const guard = (f: (...a: any[]) => Promise<unknown>) => async (...a: any[]) => {
    try {
      await f(...a);
    } catch (e) {
      log.error((e as Error).message);
      void vscode.window.showErrorMessage(`M+: ${(e as Error).message}`, 'Open Log').then((b) => b && log.show());
    }
  };
  return [
    vscode.commands.registerCommand('mplus.ask', guard(async (arg?: unknown) => {
      let question = typeof arg === 'string' ? arg : undefined;
      let quote: Quote | undefined;
      if (question === undefined) {
        const ed = vscode.window.activeTextEditor;
        const sel = ed && !ed.selection.isEmpty ? ed.document.getText(ed.selection) : '';
        const rel = ed ? vscode.workspace.asRelativePath(ed.document.uri) : '';
        question = await vscode.window.showInputBox({
          title: 'Ask about Repository',
          prompt: sel ? `About the selection in ${rel}` : 'Question about this repository',
          placeHolder: sel ? 'What does this code do?' : 'Where is the configuration parsed?',
          value: sel ? 'What does this code do?' : undefined,
          ignoreFocusOut: true,
        });
        if (!question?.trim()) return;
        if (sel) {
          const { start, end } = ed!.selection;
          // A selection ending at column 0 does not include that line.
          const last = end.character === 0 && end.line > start.line ? end.line : end.line + 1;
          quote = { where: `${rel}:${start.line + 1}${last > start.line + 1 ? `-${last}` : ''}`, code: sel, language: ed!.document.languageId };
        }
      }
      await chatView.reveal();
      await chatView.ask(question.trim(), quote);
    })),
    vscode.commands.registerCommand('mplus.rebuild', guard(async () => {
      // Destructive: a modal that names what is lost, before anything happens.
      const st = sidecar.ready ? await sidecar.refreshStatus() : null;
      const ok = await vscode.window.showWarningMessage('Rebuild the memory of this workspace?', { modal: true, detail: rebuildDetail(st, sidecar.storePath) }, REBUILD);
      if (ok !== REBUILD) return;
      const done = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'M+: rebuilding memory…' }, () => sidecar.rebuild());
      if (!done) return;
      void vscode.window.showInformationMessage('M+: memory starts empty and is reading the workspace again (the old memory was moved aside, not deleted).');
    })),
    ...registerForgetCommands(sidecar, guard),
    vscode.commands.registerCommand('mplus.showStatus', guard(async () => {
      const st = await sidecar.refreshStatus();
      const v = state.get();
      const sit = situationOf(v);
      const lines: string[] = [];
      if (v.device) lines.push(`Runs on ${v.device.description}.`);
      if (st) {
        lines.push(`Memory: ${st.memory.injections.toLocaleString('en-US')} pieces read, ${(st.memory.storeBytes / 1048576).toFixed(1)} MiB on disk.`);
        if (st.forgotten.count) lines.push(`${st.forgotten.count} file(s)/folder(s) forgotten on request.`);
      }
      log.info(`status: ${coverageLine(v)} | ${lines.join(' ')}${sidecar.storePath ? ` | store ${sidecar.storePath}` : ''}`);
      const actions: Action[] = sit
        ? [sit.action, sit.secondary].filter((a): a is Action => !!a)
        : [{ title: 'Ask', command: 'mplus.ask' }, { title: 'Pause Feeding', command: 'mplus.pause' }];
      const text = `M+: ${sit && v.phase !== 'paused' ? sit.message : `${capitalize(coverageLine(v))}.`}${lines.length ? ` ${lines.join(' ')}` : ''}`;
      const b = await (sit?.severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showInformationMessage)(text, ...actions.map((a) => a.title), 'Open Log');
      const a = actions.find((x) => x.title === b);
      if (a) await vscode.commands.executeCommand(a.command, ...(a.args ?? []));
      else if (b === 'Open Log') log.show();
    })),
    vscode.commands.registerCommand('mplus.pause', guard(async () => {
      await sidecar.setPaused(true);
      void vscode.window.setStatusBarMessage('M+: feeding paused', 3000);
    })),
    vscode.commands.registerCommand('mplus.resume', guard(async () => {
      if (!vscode.workspace.isTrusted) throw new Error('this workspace is not trusted: M+ does not read its files. Trust it first.');
      await sidecar.setPaused(false);
      void vscode.window.setStatusBarMessage('M+: feeding resumed', 3000);
    })),
    vscode.commands.registerCommand('mplus.consentToFeed', guard(() => sidecar.consentToFeed())),
    vscode.commands.registerCommand('mplus.checkRequirements', guard(async () => {
      const r = sidecar.requirementsCheck();
      const title = r.warnings.length ? 'M+: this machine may not be enough for this model or workspace' : 'M+: what this model and workspace need';
      await vscode.window.showInformationMessage(title, { modal: true, detail: [...r.warnings, ...r.lines].join('\n') });
    })),
    vscode.commands.registerCommand('mplus.restartSidecar', guard(() => sidecar.restart())),
    vscode.commands.registerCommand('mplus.openLog', () => log.show()),
  ];
}

const REBUILD = 'Rebuild Memory';
const capitalize = (x: string) => x.charAt(0).toUpperCase() + x.slice(1);

/** What Rebuild loses and keeps, in numbers where M+ knows them. */
export function rebuildDetail(st: StatusResult | null, storePath: string | null): string {
  const what = st
    ? `M+ forgets what it learned from ${st.coverage.filesFed.toLocaleString('en-US')} file(s) (${st.memory.injections.toLocaleString('en-US')} pieces, ` +
      `${(st.memory.storeBytes / 1048576).toFixed(1)} MiB) and reads the whole workspace again, which takes as long as the first time.`
    : 'M+ forgets everything it learned about this workspace and reads it again from the start, which takes as long as the first time.';
  return `${what} Until then, answers come from partial memory. The old memory is moved aside${storePath ? ` (next to ${storePath})` : ''}, not deleted. ` +
    'Files you told M+ to forget stay forgotten.';
}
