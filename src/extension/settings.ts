/**
 * Reads the `mplus.*` settings. The model path, the node binary and the store location choose
 * what the sidecar loads and executes, so they are machine-scoped in package.json: a workspace's
 * .vscode/settings.json cannot point them at attacker files. This reader additionally ignores
 * workspace values for those keys (defence in depth when a host ignores `scope`).
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { DeviceRequest, Precision, isDeviceRequest, isPrecision } from '../sidecar/protocol';
import { storeDirUnder } from '../sidecar/storeDir';

export const SECTION = 'mplus';

export interface Settings {
  modelPath: string;
  nodePath: string;
  device: DeviceRequest;
  precision: Precision;
  storePath: string;
  storeBudgetGB: number;
  ignore: string[];
  feedingEnabled: boolean;
  maxFiles: number | undefined;
  maxTokens: number;
}

/** The user/machine value of a setting, never the workspace one. */
export function machineValue<T>(cfg: vscode.WorkspaceConfiguration, key: string, dflt: T): T {
  const i = cfg.inspect<T>(key);
  return (i?.globalValue ?? i?.defaultValue ?? dflt) as T;
}

export function readSettings(): Settings {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const device = cfg.get<string>('device', 'auto');
  const precision = cfg.get<string>('precision', 'f32');
  const ignore = cfg.get<unknown>('ignore', []);
  const maxFiles = cfg.get<number>('feeding.maxFiles', 0);
  return {
    modelPath: expandHome(machineValue(cfg, 'modelPath', '').trim()),
    nodePath: expandHome(machineValue(cfg, 'nodePath', '').trim()),
    device: isDeviceRequest(device) ? device : 'auto',
    precision: isPrecision(precision) ? precision : 'f32',
    storePath: expandHome(machineValue(cfg, 'storePath', '').trim()),
    storeBudgetGB: Math.max(0, Number(cfg.get<number>('storeBudgetGB', 0)) || 0),
    ignore: Array.isArray(ignore) ? ignore.filter((x): x is string => typeof x === 'string') : [],
    feedingEnabled: cfg.get<boolean>('feeding.enabled', true),
    maxFiles: Number.isInteger(maxFiles) && maxFiles > 0 ? maxFiles : undefined,
    maxTokens: Math.min(4096, Math.max(1, Math.floor(Number(cfg.get<number>('answer.maxTokens', 256)) || 256))),
  };
}

function expandHome(p: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(process.env.HOME ?? '', p.slice(1));
  return p;
}

/**
 * Where this workspace's memory store lives: `mplus.storePath/<workspace hash>` when the user set
 * a parent folder (one store per workspace: stores are locked by one sidecar), else the
 * extension's per-workspace storage, else (no folder open) null.
 */
export function storeDirFor(s: Settings, context: vscode.ExtensionContext, folders: readonly string[]): string | null {
  if (!folders.length) return null;
  if (s.storePath) return storeDirUnder(s.storePath, folders);
  if (context.storageUri) return path.join(context.storageUri.fsPath, 'store');
  return null;
}

/** Settings whose change needs a sidecar restart. */
export const RESTART_KEYS = ['modelPath', 'nodePath', 'device', 'precision', 'storePath', 'storeBudgetGB', 'ignore', 'feeding.maxFiles'];
