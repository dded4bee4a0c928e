/** Sources of an answer (workspace file + 1-based line range) → editor locations. */
import * as path from 'path';
import * as vscode from 'vscode';
import type { Source } from '../sidecar/protocol';

/** The file of a source, or null when it does not resolve inside an open workspace folder. */
export function sourceUri(s: Source): vscode.Uri | null {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  let abs: string | null = s.absPath && path.isAbsolute(s.absPath) ? path.normalize(s.absPath) : null;
  if (!abs && folders.length) {
    const parts = s.path.split('/');
    if (folders.length === 1) abs = path.join(folders[0].uri.fsPath, ...parts);
    else {
      const f = folders.find((x) => x.name === parts[0]) ?? folders[0];
      abs = path.join(f.uri.fsPath, ...parts.slice(f.name === parts[0] ? 1 : 0));
    }
  }
  if (!abs) return null;
  const inside = folders.some((f) => {
    const rel = path.relative(f.uri.fsPath, abs!);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
  return inside ? vscode.Uri.file(abs) : null;
}

/** 1-based inclusive lines → a range over whole lines. */
export function sourceRange(s: Source): vscode.Range {
  const a = Math.max(0, s.startLine - 1);
  const b = Math.max(a, s.endLine - 1);
  return new vscode.Range(a, 0, b, Number.MAX_SAFE_INTEGER);
}

export function sourceLabel(s: Source): string {
  return s.startLine === s.endLine ? `${s.path}:${s.startLine}` : `${s.path}:${s.startLine}-${s.endLine}`;
}

/** Opens the source's file with its lines selected and revealed. */
export async function openSource(s: Source): Promise<void> {
  const uri = sourceUri(s);
  if (!uri) {
    void vscode.window.showWarningMessage(`M+: ${s.path} is not inside the open workspace.`);
    return;
  }
  const doc = await vscode.workspace.openTextDocument(uri);
  const r = doc.validateRange(sourceRange(s));
  await vscode.window.showTextDocument(doc, { selection: r, preview: true, viewColumn: vscode.ViewColumn.One });
  vscode.window.activeTextEditor?.revealRange(r, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}
