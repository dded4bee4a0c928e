/**
 * M+ Repository Memory: the VS Code side. Wires the sidecar manager, the status bar, the chat
 * view, the `@mplus` chat participant and the commands together; nothing else happens here.
 */
import * as vscode from 'vscode';
import { ChatViewProvider, VIEW_ID } from './chatView';
import { registerAskAboutFile } from './askAboutFile';
import { registerChatParticipant } from './chatParticipant';
import { registerCommands } from './commands';
import { createLog } from './log';
import { registerLmTool } from './lmTool';
import { registerModelCommands } from './modelCommands';
import { RESTART_KEYS, SECTION } from './settings';
import { SidecarManager } from './sidecarManager';
import { StatusBar } from './statusBar';
import { registerStoreFolderCommand } from './storeFolderCommand';
import { registerTestHooks } from './testHooks';
import { ViewStateStore } from './viewState';

let sidecar: SidecarManager | null = null;

export function activate(context: vscode.ExtensionContext): void {
  const log = createLog();
  const state = new ViewStateStore();
  sidecar = new SidecarManager(context, log, state);
  const sc = sidecar;
  const chatView = new ChatViewProvider(context.extensionUri, sc, state, log);
  context.subscriptions.push(
    log, state, sc, chatView,
    new StatusBar(state, () => sc.requirements()),
    vscode.window.registerWebviewViewProvider(VIEW_ID, chatView, { webviewOptions: { retainContextWhenHidden: true } }),
    ...registerCommands(sc, chatView, state, log),
    ...registerModelCommands(context, log),
    registerStoreFolderCommand(log),
    registerAskAboutFile(),
    ...registerTestHooks(chatView),
  );
  const participant = registerChatParticipant(sc, state, context.extensionUri, log);
  if (participant) context.subscriptions.push(participant);
  const tool = registerLmTool(sc, log);
  if (tool) context.subscriptions.push(tool);

  let focusTimer: NodeJS.Timeout | null = null;
  const focusSoon = () => {
    if (focusTimer) clearTimeout(focusTimer);
    focusTimer = setTimeout(() => sc.sendFocus(), 300);
  };
  context.subscriptions.push(
    vscode.window.onDidChangeActiveTextEditor(focusSoon),
    vscode.window.onDidChangeVisibleTextEditors(focusSoon),
    vscode.workspace.onDidSaveTextDocument((d) => sc.noteSaved(d)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      log.info('workspace trusted: starting to feed it');
      void sc.restart();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void sc.restart()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (RESTART_KEYS.some((k) => e.affectsConfiguration(`${SECTION}.${k}`))) {
        log.info('M+ settings changed: restarting the sidecar');
        void sc.restart();
      } else if (e.affectsConfiguration(`${SECTION}.feeding.enabled`)) {
        void sc.restart();
      }
    }),
    { dispose: () => { if (focusTimer) clearTimeout(focusTimer); } },
  );
  const setPhase = () => void vscode.commands.executeCommand('setContext', 'mplus.phase', state.get().phase);
  context.subscriptions.push(state.onDidChange(setPhase));
  setPhase();
  log.info(`M+ Repository Memory ${context.extension.packageJSON.version} activated (VS Code ${vscode.version}, ${process.platform}-${process.arch})`);
  void sc.start();
}

export async function deactivate(): Promise<void> {
  const s = sidecar;
  sidecar = null;
  await s?.stop();
}
