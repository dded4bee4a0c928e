/**
 * The extension's side of the default model (src/sidecar/defaultModel.ts decides): with
 * `mplus.modelPath` unset, the checkpoint bundled in the .vsix (`models/mplus-lookup/`) is used and
 * the user is told what it is — "a small model for lookup questions" — once per window. A
 * configured path always wins; with neither, settings pass through unchanged (the "no model"
 * state as before).
 */
import * as vscode from 'vscode';
import { resolveModel } from '../sidecar/defaultModel';
import type { Settings } from './settings';

let announced = false;

export function withDefaultModel(s: Settings, log: { info(message: string): void }): Settings {
  if (s.modelPath) return s;
  const m = resolveModel([]);
  if (!m) return s;
  const what = `${m.label ?? 'the bundled model'} (bundled: ${m.dir}); set mplus.modelPath to use another checkpoint`;
  log.info(`no model configured: using ${what}`);
  if (!announced) {
    announced = true;
    vscode.window.setStatusBarMessage(`M+: using ${m.label ?? 'the bundled model'}`, 15000);
  }
  return { ...s, modelPath: m.dir };
}
