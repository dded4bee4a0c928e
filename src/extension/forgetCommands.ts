/**
 * Forget File/Folder and Re-add to Memory. What the user forgets stays out of memory (the sidecar
 * records it in the store) until re-added here; Forget offers to make it permanent for everyone
 * who uses the repository with a `.mplusignore` rule, and to undo.
 */
import * as vscode from 'vscode';
import { addIgnoreRule } from './ignoreFile';
import { SidecarManager } from './sidecarManager';

const ALSO_IGNORE = 'Also Add to .mplusignore';
const UNDO = 'Re-add';

/** The file URIs a command was invoked on (explorer selection, editor), or none. */
function targetsOf(uri?: vscode.Uri, uris?: vscode.Uri[]): vscode.Uri[] {
  return (uris && uris.length ? uris : uri instanceof vscode.Uri ? [uri] : []).filter((u) => u.scheme === 'file');
}

const names = (us: vscode.Uri[]) => us.map((u) => vscode.workspace.asRelativePath(u, vscode.workspace.workspaceFolders!.length > 1)).join(', ');

export function registerForgetCommands(sidecar: SidecarManager, guard: (f: (...a: any[]) => Promise<unknown>) => (...a: any[]) => Promise<void>): vscode.Disposable[] {
  const readd = async (targets: vscode.Uri[]) => {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `M+: adding ${names(targets)} back to memory…` },
      () => sidecar.readd(targets.map((u) => u.fsPath)));
    void vscode.window.showInformationMessage(`M+: ${names(targets)} ${targets.length > 1 ? 'are' : 'is'} in memory again (${r.filesDone} file(s) read).`);
  };
  return [
    vscode.commands.registerCommand('mplus.forget', guard(async (uri?: vscode.Uri, uris?: vscode.Uri[]) => {
      let targets = targetsOf(uri, uris);
      if (!targets.length) {
        targets = (await vscode.window.showOpenDialog({
          title: 'Forget: M+ drops these files from memory and stops reading them',
          canSelectFiles: true, canSelectFolders: true, canSelectMany: true, openLabel: 'Forget',
          defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
        })) ?? [];
      }
      if (!targets.length) return;
      const r = await sidecar.forget(targets.map((u) => u.fsPath));
      const b = await vscode.window.showInformationMessage(
        `M+ forgot ${names(targets)} (${r.filesForgotten} file(s)) and will not read ${targets.length > 1 ? 'them' : 'it'} again until you re-add ${targets.length > 1 ? 'them' : 'it'}.`,
        ALSO_IGNORE, UNDO);
      if (b === UNDO) await readd(targets);
      else if (b === ALSO_IGNORE) {
        const added: string[] = [];
        for (const t of targets) {
          const folder = vscode.workspace.getWorkspaceFolder(t);
          if (!folder) continue;
          const res = addIgnoreRule(folder.uri.fsPath, t.fsPath);
          if (res.added) added.push(res.rule);
        }
        const file = vscode.Uri.joinPath(vscode.workspace.getWorkspaceFolder(targets[0])!.uri, '.mplusignore');
        const open = await vscode.window.showInformationMessage(added.length ? `M+: added ${added.join(', ')} to .mplusignore.` : 'M+: .mplusignore already lists it.', 'Open .mplusignore');
        if (open) await vscode.window.showTextDocument(file);
      }
    })),
    vscode.commands.registerCommand('mplus.readd', guard(async (uri?: vscode.Uri, uris?: vscode.Uri[]) => {
      let targets = targetsOf(uri, uris);
      if (!targets.length) {
        const st = await sidecar.refreshStatus();
        const forgotten = st?.forgotten.paths ?? [];
        if (!forgotten.length) {
          void vscode.window.showInformationMessage('M+: nothing is forgotten: every file of the workspace is in memory or being read.');
          return;
        }
        const picked = await vscode.window.showQuickPick(forgotten.map((p) => ({ label: p })), {
          title: 'Re-add to Memory', placeHolder: 'Forgotten files and folders: pick those M+ should read again', canPickMany: true,
        });
        targets = (picked ?? []).map((p) => vscode.Uri.file(sidecar.absPath(p.label)));
      }
      if (targets.length) await readd(targets);
    })),
  ];
}
