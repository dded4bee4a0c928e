/**
 * Adding a rule to a workspace folder's `.mplusignore` (Forget's "Also add to .mplusignore"): the
 * file is created when missing, the rule anchored at the folder root (`/src/a.ts`, `/build/`) so
 * it names exactly what was forgotten, and nothing is written when the rule is already there.
 * No `vscode` import: tested directly.
 */
import * as fs from 'fs';
import * as path from 'path';

export const IGNORE_FILE = '.mplusignore';

/** The rule for `rel` (posix, relative to the folder) in .gitignore syntax, special characters escaped. */
export function ignoreRule(rel: string, isDir: boolean): string {
  const escaped = rel.split('/').map((s) => s.replace(/([\\*?[\]!#])/g, '\\$1').replace(/^(\s)/, '\\$1').replace(/(\s)$/, '\\$1')).join('/');
  return `/${escaped}${isDir ? '/' : ''}`;
}

/** Appends the rule for `abs` to `folder`'s .mplusignore; returns the rule and whether it was new. */
export function addIgnoreRule(folder: string, abs: string): { file: string; rule: string; added: boolean } {
  const rel = path.relative(folder, abs).split(path.sep).join('/');
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${abs} is not inside the workspace folder ${folder}`);
  const isDir = fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory() ?? false;
  const rule = ignoreRule(rel, isDir);
  const file = path.join(folder, IGNORE_FILE);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (text.split(/\r?\n/).some((l) => l.trim() === rule)) return { file, rule, added: false };
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  const header = text === '' ? '# Files M+ never reads (.gitignore syntax)\n' : '';
  fs.appendFileSync(file, `${sep}${header}${rule}\n`);
  return { file, rule, added: true };
}
