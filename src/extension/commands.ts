/** The `mplus.*` commands. */
import * as vscode from 'vscode';
import { ChatViewProvider } from './chatView';
import { SidecarManager } from './sidecarManager';
import { StatusBar } from './statusBar';
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
      if (question === undefined) {
        const ed = vscode.window.activeTextEditor;
        const sel = ed && !ed.selection.isEmpty ? ed.document.getText(ed.selection) : '';
        question = await vscode.window.showInputBox({
          title: 'M+: Ask about Repository',
          prompt: sel ? `About the selection in ${vscode.workspace.asRelativePath(ed!.document.uri)}` : 'Question about this repository',
          placeHolder: sel ? 'What does this code do?' : 'Where is the configuration parsed?',
          value: sel ? 'What does this code do?' : undefined,
          ignoreFocusOut: true,
        });
        if (!question?.trim()) return;
        if (sel) {
          const where = `${vscode.workspace.asRelativePath(ed!.document.uri)}:${ed!.selection.start.line + 1}-${ed!.selection.end.line + 1}`;
          question = `${question.trim()}\n\nAbout this code from ${where}:\n\n${sel}`;
        }
      }
      await chatView.reveal();
      await chatView.ask(question.trim());
    })),
    vscode.commands.registerCommand('mplus.rebuild', guard(async () => {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'M+: rebuilding memory…' }, () => sidecar.rebuild());
      void vscode.window.showInformationMessage('M+: memory rebuilt from scratch (the old store was moved aside, not deleted); feeding the workspace again.');
    })),
    vscode.commands.registerCommand('mplus.forget', guard(async (uri?: vscode.Uri, uris?: vscode.Uri[]) => {
      let targets = (uris && uris.length ? uris : uri ? [uri] : []).filter((u) => u.scheme === 'file');
      if (!targets.length) {
        const picked = await vscode.window.showOpenDialog({
          canSelectFiles: true, canSelectFolders: true, canSelectMany: true, openLabel: 'Forget',
          defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
        });
        targets = picked ?? [];
      }
      if (!targets.length) return;
      const r = await sidecar.forget(targets.map((u) => u.fsPath));
      const names = targets.map((u) => vscode.workspace.asRelativePath(u)).join(', ');
      void vscode.window.showInformationMessage(`M+: forgot ${names}: ${r.filesForgotten} file(s), ${r.tokensMarkedStale} memory token(s) dropped.`);
    })),
    vscode.commands.registerCommand('mplus.showStatus', guard(async () => {
      const st = await sidecar.refreshStatus();
      const v = state.get();
      const lines = [coverageLine(v)];
      if (v.detail) lines.push(v.detail);
      if (v.device) lines.push(`device: ${v.device.description}`);
      if (st) {
        lines.push(`state: ${st.state}; memory θ ${st.memory.stmTokensPerLayer} + Θ ${st.memory.ltmTokensPerLayer} tokens/layer, ` +
          `${st.memory.injections} injections, ${st.memory.staleTokens} stale, store ${(st.memory.storeBytes / 1048576).toFixed(1)} MiB`);
      }
      const s = sidecar.storePath;
      if (s) lines.push(`store: ${s}`);
      log.info(`status: ${lines.join(' | ')}`);
      const b = await vscode.window.showInformationMessage(`M+: ${StatusBar.text(v).text.replace(/\$\([^)]*\)\s*/g, '')}. ${lines.join('. ')}`,
        'Ask', v.phase === 'paused' ? 'Resume Feeding' : 'Pause Feeding', 'Open Log');
      if (b === 'Ask') await vscode.commands.executeCommand('mplus.ask');
      else if (b === 'Pause Feeding') await vscode.commands.executeCommand('mplus.pause');
      else if (b === 'Resume Feeding') await vscode.commands.executeCommand('mplus.resume');
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
    vscode.commands.registerCommand('mplus.restartSidecar', guard(() => sidecar.restart())),
    vscode.commands.registerCommand('mplus.openLog', () => log.show()),
    // Test-only (hidden from the palette): renders a fixed string through the chat view's real path.
    vscode.commands.registerCommand('mplus._renderForTest', async (markdown?: string) => {
      await chatView.reveal();
      chatView.showAnswer('render test', typeof markdown === 'string' ? markdown : RENDER_TEST_INPUT);
    }),
  ];
}

export const RENDER_TEST_INPUT = [
  'Render test: <script>alert(1)</script>',
  '',
  'and <img src=x onerror="document.body.dataset.pwned=1"> and **bold** and `code`',
  '',
  '[click](javascript:alert(2)) <b onmouseover=alert(3)>b</b>',
].join('\n');
