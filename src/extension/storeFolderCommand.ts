/**
 * *Select Memory Folder…*: a folder picker for where M+ keeps its memory stores (one subfolder per
 * workspace), checked by writing a probe file, then written to `mplus.storePath`. The fixing
 * action when the store's folder cannot be created or written (situation.ts 'storePlace').
 *
 * Why ConfigurationTarget.Global: `mplus.storePath` is machine-scoped, so Global lands in the
 * settings of the machine the extension (and its sidecar) runs on, also in remote windows, where
 * the Settings editor's user tab would not show the setting at all (see modelCommands.ts).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import { checkStoreParent } from '../sidecar/storeAccess';
import { SECTION, readSettings } from './settings';

export function registerStoreFolderCommand(log: vscode.LogOutputChannel): vscode.Disposable {
  return vscode.commands.registerCommand('mplus.selectStoreFolder', () => selectStoreFolder(log));
}

async function selectStoreFolder(log: vscode.LogOutputChannel): Promise<void> {
  const current = readSettings().storePath;
  for (;;) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false,
      title: 'Select the folder where M+ keeps its memory (a subfolder per workspace is created there)',
      openLabel: 'Keep Memory Here',
      defaultUri: vscode.Uri.file(current && isFolder(current) ? current : os.homedir()),
    });
    if (!picked?.length) return;
    const dir = picked[0].fsPath;
    const problem = checkStoreParent(dir);
    if (!problem) {
      // The settings change restarts M+ on the new folder (extension.ts, RESTART_KEYS).
      await vscode.workspace.getConfiguration(SECTION).update('storePath', dir, vscode.ConfigurationTarget.Global);
      log.info(`memory folder set to ${dir}`);
      void vscode.window.setStatusBarMessage(`M+ keeps its memory in ${dir}`, 5000);
      return;
    }
    log.warn(`not a usable memory folder: ${problem}`);
    const again = 'Pick Another Folder';
    if (await vscode.window.showErrorMessage(`${problem}.`, again) !== again) return;
  }
}

function isFolder(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
