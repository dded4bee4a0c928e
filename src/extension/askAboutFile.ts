/**
 * *Ask M+ about This File* (explorer and editor-title menus): asks for a question with a default,
 * names the file in it so retrieval finds that file's memory (every fed chunk starts with a
 * header naming its file), and hands it to `mplus.ask`, the one path that asks and shows answers.
 */
import * as vscode from 'vscode';

export function registerAskAboutFile(): vscode.Disposable {
  return vscode.commands.registerCommand('mplus.askAboutFile', async (arg?: unknown) => {
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (!uri || uri.scheme !== 'file') {
      void vscode.window.showInformationMessage('M+ answers about files of the open workspace: open or select one first.');
      return;
    }
    const rel = vscode.workspace.asRelativePath(uri, false);
    const q = await vscode.window.showInputBox({
      title: `Ask M+ about ${rel}`,
      prompt: 'Your question about this file',
      value: 'What does this file do, and who uses it?',
      ignoreFocusOut: true,
    });
    if (!q?.trim()) return;
    await vscode.commands.executeCommand('mplus.ask', `${q.trim()} (about the file ${rel})`);
  });
}
