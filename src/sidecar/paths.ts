/**
 * Names of workspace files as memory and users see them. One root: the posix path relative to
 * it ("src/a.ts"). Several roots: prefixed with the root folder's name ("api/src/a.ts"), as VS
 * Code shows multi-root paths. Provenance stores these keys; sources resolve them back.
 */
import * as path from 'path';

export class WorkspacePaths {
  private readonly names: string[];

  constructor(readonly roots: string[]) {
    this.names = roots.map((r) => path.basename(r));
  }

  /** Key for a file under root `root` with posix relative path `rel`. */
  key(root: string, rel: string): string {
    if (this.roots.length === 1) return rel;
    const i = this.roots.indexOf(root);
    return `${this.names[i]}/${rel}`;
  }

  /** Key of an absolute path, or null when it lies outside every root. */
  keyOfAbs(abs: string): string | null {
    for (const r of this.roots) {
      const rel = path.relative(r, abs);
      if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) return this.key(r, rel.split(path.sep).join('/'));
    }
    return null;
  }

  /** Key of a user-given path: absolute, or relative to the (first) root, or a key itself. */
  keyOfInput(p: string): string | null {
    if (path.isAbsolute(p)) return this.keyOfAbs(path.normalize(p));
    const norm = p.split(path.sep).join('/').replace(/^\.\/+/, '').replace(/\/+$/, '');
    if (this.roots.length === 1) return norm === '.' ? '' : norm;
    return norm;
  }

  /** Absolute path of a key. */
  abs(key: string): string {
    if (this.roots.length === 1) return path.join(this.roots[0], ...key.split('/'));
    const [name, ...rest] = key.split('/');
    const i = this.names.indexOf(name);
    return path.join(this.roots[Math.max(0, i)], ...rest);
  }

  /** True when `key` is `prefix` or inside the folder `prefix` ('' = everything). */
  static within(key: string, prefix: string): boolean {
    return prefix === '' || key === prefix || key.startsWith(prefix.endsWith('/') ? prefix : prefix + '/');
  }
}
