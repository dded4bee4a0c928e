/**
 * Getting a model from inside VS Code: *Select Model Folder…* (a folder picker, checked, that
 * writes `mplus.modelPath`) and *Download Model…* (from the Hugging Face hub with a cancellable
 * progress notification, then the same setting).
 *
 * Why ConfigurationTarget.Global: `mplus.modelPath` is machine-scoped, and a machine-scoped
 * setting written to Global lands in the settings of the machine the extension runs on — the
 * user settings locally, the remote machine's settings in a Remote-SSH/WSL/Codespaces/code-server
 * window — which is where the sidecar reads it (settings.ts ignores workspace values). The folder
 * pickers browse that same machine, because this extension runs where the workspace is.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { DownloadProgress, ListingSummary, downloadModel } from './download/downloadModel';
import { DownloadCancelled, HubAuthError } from './download/http';
import { DEFAULT_REPO, checkRepoId, resolveEndpoint, tokenFromEnv } from './download/hubApi';
import { checkModelFolder } from './download/modelFolder';
import { SECTION, machineValue, readSettings } from './settings';

const TOKEN_SECRET = 'mplus.huggingFaceToken';

export function registerModelCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('mplus.selectModelFolder', () => selectModelFolder(log)),
    vscode.commands.registerCommand('mplus.downloadModel', (repo?: unknown) => downloadCommand(context, log, typeof repo === 'string' ? repo : undefined)),
  ];
}

/** Writes the model path where this machine's sidecar reads it (see the file comment). */
async function useModel(dir: string, log: vscode.LogOutputChannel): Promise<void> {
  await vscode.workspace.getConfiguration(SECTION).update('modelPath', dir, vscode.ConfigurationTarget.Global);
  log.info(`model folder set to ${dir}`);
}

async function selectModelFolder(log: vscode.LogOutputChannel): Promise<void> {
  const current = readSettings().modelPath;
  for (;;) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false,
      title: 'Select the M+ model folder (the one with config.json and the .safetensors files)',
      openLabel: 'Use This Model',
      defaultUri: vscode.Uri.file(current && fs.existsSync(current) ? current : os.homedir()),
    });
    if (!picked?.length) return;
    const dir = picked[0].fsPath;
    const check = checkModelFolder(dir);
    if (check.ok) {
      await useModel(dir, log);
      void vscode.window.showInformationMessage(`M+ will use the model in ${dir} (${gb(check.weightsBytes)} of weights).`, 'Open Ask View')
        .then((b) => b && vscode.commands.executeCommand('mplus.chatView.focus'));
      return;
    }
    log.warn(`not a model folder: ${check.problem}`);
    const b = await vscode.window.showErrorMessage(`M+ cannot use this folder: ${check.problem}`, 'Pick Another Folder', 'Download Model…');
    if (b === 'Download Model…') return void vscode.commands.executeCommand('mplus.downloadModel');
    if (b !== 'Pick Another Folder') return;
  }
}

async function downloadCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, repoArg?: string): Promise<void> {
  const repo = repoArg ?? await vscode.window.showInputBox({
    title: 'Download an M+ model from Hugging Face',
    prompt: 'Model repository id (owner/name)',
    value: DEFAULT_REPO,
    ignoreFocusOut: true,
    validateInput: (v) => { try { checkRepoId(v); return null; } catch (e) { return (e as Error).message; } },
  });
  if (!repo) return;
  const id = checkRepoId(repo);
  const name = id.split('/')[1];
  const parent = await vscode.window.showOpenDialog({
    canSelectFolders: true, canSelectFiles: false, canSelectMany: false,
    title: `Folder to download ${id} into (a subfolder "${name}" is created there)`,
    openLabel: 'Download Here',
    defaultUri: vscode.Uri.file(os.homedir()),
  });
  if (!parent?.length) return;
  const dest = path.join(parent[0].fsPath, name);
  let endpoint: string;
  try {
    endpoint = resolveEndpoint(machineValue(vscode.workspace.getConfiguration(SECTION), 'download.endpoint', ''));
  } catch (e) {
    void vscode.window.showErrorMessage(`M+: ${(e as Error).message}`, 'Open Settings')
      .then((b) => b && vscode.commands.executeCommand('workbench.action.openSettings', 'mplus.download.endpoint'));
    return;
  }
  let token = (await context.secrets.get(TOKEN_SECRET)) || tokenFromEnv();
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await runDownload(id, dest, endpoint, token, log);
      if (!r) return; // cancelled or declined
      const check = checkModelFolder(dest);
      if (!check.ok) {
        void vscode.window.showWarningMessage(`Downloaded ${id} to ${dest}, but M+ cannot use it: ${check.problem} Is ${id} an M+ checkpoint?`);
        return;
      }
      await useModel(dest, log);
      void vscode.window.showInformationMessage(`Downloaded ${id} (${gb(r.bytes)}) to ${dest}; M+ now uses it.`, 'Open Ask View')
        .then((b) => b && vscode.commands.executeCommand('mplus.chatView.focus'));
      return;
    } catch (e) {
      const msg = (e as Error).message;
      log.error(`download of ${id} failed: ${msg}`);
      if (e instanceof HubAuthError && attempt === 0) {
        const t = await vscode.window.showInputBox({
          title: `${id} needs a Hugging Face token`,
          prompt: 'A token with read access (huggingface.co/settings/tokens); kept in VS Code\'s secret storage',
          password: true, ignoreFocusOut: true,
        });
        if (!t?.trim()) return;
        token = t.trim();
        await context.secrets.store(TOKEN_SECRET, token);
        continue;
      }
      const b = await vscode.window.showErrorMessage(`M+ download of ${id} failed: ${msg}`, 'Try Again', 'Open Log');
      if (b === 'Try Again') continue;
      if (b === 'Open Log') log.show();
      return;
    }
  }
}

/** One download under a progress notification; null when the user cancelled or declined. */
async function runDownload(id: string, dest: string, endpoint: string, token: string | undefined, log: vscode.LogOutputChannel) {
  return vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification, title: `Downloading ${id}`, cancellable: true,
  }, async (progress, cancel) => {
    const ac = new AbortController();
    const sub = cancel.onCancellationRequested(() => ac.abort());
    let shownPct = 0;
    let lastReport = 0;
    const rate = new RateMeter();
    try {
      return await downloadModel({
        repo: id, dest, endpoint, token, signal: ac.signal, log: (l) => log.info(l),
        onListing: (l) => confirmSpace(l, dest),
        onProgress: (p) => {
          const now = Date.now();
          rate.add(now, p.doneBytes);
          if (p.phase !== 'done' && now - lastReport < 250) return; // a notification update per chunk would flood the UI
          lastReport = now;
          const pct = p.totalBytes ? Math.floor((100 * p.doneBytes) / p.totalBytes) : 0;
          progress.report({ increment: Math.max(0, pct - shownPct), message: progressLine(p, rate.eta(now, p.totalBytes - p.doneBytes)) });
          shownPct = Math.max(shownPct, pct);
        },
      });
    } catch (e) {
      if (e instanceof DownloadCancelled || e instanceof Declined) {
        if (e instanceof DownloadCancelled) {
          void vscode.window.showInformationMessage(`Download of ${id} cancelled. What arrived is kept in ${dest}; run Download Model… again to resume.`);
        }
        return null;
      }
      throw e;
    } finally {
      sub.dispose();
    }
  });
}

class Declined extends Error {}

/** Refuses up front when the disk cannot hold the files (rather than failing at 90 %). */
async function confirmSpace(l: ListingSummary, dest: string): Promise<void> {
  let free = Infinity;
  try {
    let d = dest;
    while (!fs.existsSync(d)) d = path.dirname(d);
    const s = fs.statfsSync(d);
    free = s.bavail * s.bsize;
  } catch { /* statfs unavailable: the download reports a full disk when it happens */ }
  if (l.missingBytes > free) {
    throw new Error(`${l.repo} needs ${gb(l.missingBytes)} more, but ${dest} has ${gb(free)} free: free some space or pick another folder.`);
  }
  const more = l.missingBytes < l.totalBytes ? ` (${gb(l.missingBytes)} still to fetch)` : '';
  const b = await vscode.window.showInformationMessage(
    `Download ${l.repo}: ${l.files} files, ${gb(l.totalBytes)}${more}, into ${dest}? ${gb(free)} free there.`,
    { modal: true }, 'Download');
  if (b !== 'Download') throw new Declined();
}

function progressLine(p: DownloadProgress, etaS: number | null): string {
  if (p.phase === 'listing') return 'listing the repository…';
  if (p.phase === 'done') return 'done';
  const what = p.phase === 'verifying' ? `checking ${p.file}` : p.file;
  const eta = etaS === null ? '' : `, about ${etaS < 90 ? `${Math.ceil(etaS)} s` : `${Math.ceil(etaS / 60)} min`} left`;
  return `${what} (file ${p.fileIndex + 1} of ${p.fileCount}) — ${gb(p.doneBytes)} of ${gb(p.totalBytes)}${eta}`;
}

/** Bytes per second over the last ~10 s, for an ETA that follows the network's current speed. */
class RateMeter {
  private samples: Array<[number, number]> = [];
  add(t: number, bytes: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && bytes < last[1]) this.samples = []; // a file restarted: the old samples mislead
    this.samples.push([t, bytes]);
    while (this.samples.length > 2 && t - this.samples[0][0] > 10_000) this.samples.shift();
  }
  eta(t: number, remaining: number): number | null {
    const first = this.samples[0];
    if (!first || t - first[0] < 2000) return null;
    const bps = (this.samples[this.samples.length - 1][1] - first[1]) / ((t - first[0]) / 1000);
    return bps > 0 ? remaining / bps : null;
  }
}

function gb(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unknown';
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}
