/** The extension's LogOutputChannel: our own messages, the sidecar's log notifications and stderr. */
import * as vscode from 'vscode';
import type { LogParams } from '../sidecar/protocol';

export const LOG_NAME = 'M+ Repository Memory';

export function createLog(): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel(LOG_NAME, { log: true });
}

/** Writes one sidecar `mplus/log` notification at its level. */
export function logFromSidecar(log: vscode.LogOutputChannel, p: LogParams): void {
  const msg = `[sidecar] ${p.message}`;
  switch (p.level) {
    case 'trace': log.trace(msg); break;
    case 'debug': log.debug(msg); break;
    case 'warn': log.warn(msg); break;
    case 'error': log.error(msg); break;
    default: log.info(msg);
  }
}
