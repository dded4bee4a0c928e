/**
 * Which paths of a workspace root are fed to memory: a layered gitignore evaluator.
 *
 * Layers, later wins (each ignore file is rooted at its own directory, like git):
 *   1. every `.gitignore` from the root down to the path's directory (plus `.git/info/exclude`)
 *   2. the built-in defaults (`defaults.ts`: dependency/build dirs, lock files, generated files);
 *      they beat `.gitignore`, so a `!*\/` in a .gitignore never walks into node_modules
 *   3. every `.mplusignore` from the root down (same syntax; `!pattern` re-includes anything
 *      the layers above excluded, e.g. a gitignored `generated/` folder)
 *   4. the user's globs (settings), same syntax
 *   5. secrets (`SECRET_PATTERNS`): excluded whatever 1–4 say, unless a `.mplusignore` rule
 *      re-includes that very path (`!config/.env.example`); re-including its folder is not enough.
 *
 * Within a layer the verdict is git's: the last matching rule wins and a path inside an excluded
 * directory is excluded. Across layers a directory verdict carries to its contents: `!gen/` in
 * `.mplusignore` re-includes `gen/` and everything in it that the same layer does not exclude
 * again. As in git, a file cannot be re-included while its directory stays excluded: to take
 * `dist/app.js` only, write `!dist/` then `dist/*` then `!dist/app.js`.
 */
import * as fs from 'fs';
import * as path from 'path';
import ignore, { Ignore } from 'ignore';
import { DEFAULT_EXCLUDES, GITIGNORE, MPLUSIGNORE, SECRET_PATTERNS } from './defaults';

export type ExcludeReason = 'gitignore' | 'default' | 'mplusignore' | 'user-ignore' | 'secret';

export interface Verdict {
  excluded: boolean;
  /** Why it is excluded (the last layer that decided), undefined when included. */
  reason?: ExcludeReason;
}

interface DirRules {
  git?: Ignore;
  mplus?: Ignore;
}

export interface IgnoreMatcherOptions {
  userIgnore?: string[];
  /** Called when an ignore file cannot be read (other than "does not exist"). */
  onLog?: (level: 'info' | 'warn', msg: string) => void;
}

/** The ignore files that change what is discovered. */
export function isIgnoreFileName(name: string): boolean {
  return name === GITIGNORE || name === MPLUSIGNORE;
}

/** True for an ignore file path (abs or rel), including `.git/info/exclude`. */
export function isIgnoreFilePath(p: string): boolean {
  const n = p.replace(/\\/g, '/');
  return isIgnoreFileName(n.slice(n.lastIndexOf('/') + 1)) || n.endsWith('.git/info/exclude');
}

function toPosix(p: string): string {
  return path.sep === '/' ? p : p.split(path.sep).join('/');
}

function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/**
 * A fixed rule list without negations (defaults, secrets), fast: rules without an inner slash match
 * a name at any depth, so their verdict is cached per name; the few path rules go through `ignore`.
 * A path is excluded when it or an ancestor directory matches.
 */
class StaticLayer {
  private readonly names: Ignore;
  private readonly paths: Ignore | undefined;
  private readonly nameCache = new Map<string, boolean>();
  private readonly dirCache = new Map<string, boolean>();

  constructor(patterns: readonly string[]) {
    const isNameRule = (p: string) => !p.replace(/\/$/, '').includes('/');
    if (patterns.some((p) => p.startsWith('!'))) throw new Error('StaticLayer: negations are not supported');
    this.names = ignore().add(patterns.filter(isNameRule));
    const pathRules = patterns.filter((p) => !isNameRule(p));
    this.paths = pathRules.length > 0 ? ignore().add(pathRules) : undefined;
  }

  private nameMatches(name: string, isDir: boolean): boolean {
    const key = isDir ? name + '/' : name;
    let v = this.nameCache.get(key);
    if (v === undefined) {
      v = this.names.test(key).ignored;
      if (this.nameCache.size > 50000) this.nameCache.clear();
      this.nameCache.set(key, v);
    }
    return v;
  }

  private dirMatches(dirRel: string): boolean {
    if (dirRel === '') return false;
    let v = this.dirCache.get(dirRel);
    if (v === undefined) {
      v = this.dirMatches(parentRel(dirRel)) || this.nameMatches(dirRel.slice(dirRel.lastIndexOf('/') + 1), true) ||
        (this.paths?.test(dirRel + '/').ignored ?? false);
      this.dirCache.set(dirRel, v);
    }
    return v;
  }

  ignores(rel: string, isDir: boolean): boolean {
    if (isDir) return this.dirMatches(rel);
    return this.dirMatches(parentRel(rel)) || this.nameMatches(rel.slice(rel.lastIndexOf('/') + 1), false) ||
      (this.paths?.test(rel).ignored ?? false);
  }
}

/**
 * The matcher for one workspace root. Ignore files are read lazily (once per directory) and cached;
 * `reload()` forgets them all, `invalidateDir()` one directory's.
 */
export class IgnoreMatcher {
  readonly root: string;
  private readonly defaults: StaticLayer;
  private readonly secrets: StaticLayer;
  private readonly user: Ignore | undefined;
  private readonly onLog?: (level: 'info' | 'warn', msg: string) => void;
  private dirRules = new Map<string, DirRules>();
  /** Final decision per directory rel ('' = root). */
  private dirVerdicts = new Map<string, Verdict>();

  constructor(root: string, opts: IgnoreMatcherOptions = {}) {
    this.root = path.resolve(root);
    this.defaults = new StaticLayer(DEFAULT_EXCLUDES);
    this.secrets = new StaticLayer(SECRET_PATTERNS);
    const user = (opts.userIgnore ?? []).map((s) => s.trim()).filter((s) => s.length > 0);
    this.user = user.length > 0 ? ignore().add(user) : undefined;
    this.onLog = opts.onLog;
  }

  /** Forget every cached ignore file and decision (call after an ignore file changed). */
  reload(): void {
    this.dirRules.clear();
    this.dirVerdicts.clear();
  }

  /** Forget one directory's ignore files (rel posix, '' = root) and every cached decision. */
  invalidateDir(dirRel: string): void {
    this.dirRules.delete(dirRel);
    this.dirVerdicts.clear();
  }

  /**
   * Hands the contents of a directory's ignore files to the cache (discovery already listed the
   * directory, so it knows which exist). Pass undefined for "absent".
   */
  primeDir(dirRel: string, gitText: string | undefined, mplusText: string | undefined): void {
    this.dirRules.set(dirRel, this.makeRules(dirRel, gitText, mplusText));
  }

  private makeRules(dirRel: string, gitText: string | undefined, mplusText: string | undefined): DirRules {
    const r: DirRules = {};
    if (dirRel === '') {
      const exclude = this.readText(path.join(this.root, '.git', 'info', 'exclude'));
      if (exclude !== undefined) gitText = exclude + '\n' + (gitText ?? '');
    }
    if (gitText !== undefined && gitText.trim() !== '') r.git = ignore().add(gitText);
    if (mplusText !== undefined && mplusText.trim() !== '') r.mplus = ignore().add(mplusText);
    return r;
  }

  private readText(abs: string): string | undefined {
    try {
      return fs.readFileSync(abs, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') {
        this.onLog?.('warn', `cannot read ${abs}: ${(e as Error).message}`);
      }
      return undefined;
    }
  }

  private rulesFor(dirRel: string): DirRules {
    let r = this.dirRules.get(dirRel);
    if (r === undefined) {
      const dirAbs = dirRel === '' ? this.root : path.join(this.root, dirRel);
      r = this.makeRules(dirRel, this.readText(path.join(dirAbs, GITIGNORE)), this.readText(path.join(dirAbs, MPLUSIGNORE)));
      this.dirRules.set(dirRel, r);
    }
    return r;
  }

  /** Chain of [dirRel, rules] from the root down to dirRel (inclusive). */
  private chain(dirRel: string): Array<[string, DirRules]> {
    const dirs: string[] = [''];
    if (dirRel !== '') {
      const parts = dirRel.split('/');
      for (let i = 1; i <= parts.length; i++) dirs.push(parts.slice(0, i).join('/'));
    }
    return dirs.map((d) => [d, this.rulesFor(d)]);
  }

  /**
   * One layer's verdict on `rel` (relative to the layer's directory): git's own, and, when the
   * layer says nothing about the path itself, a re-include of the nearest ancestor directory the
   * layer re-includes.
   */
  private static layerVerdict(ig: Ignore, rel: string, isDir: boolean): 'ignored' | 'unignored' | undefined {
    const t = ig.test(isDir ? rel + '/' : rel);
    if (t.ignored) return 'ignored';
    if (t.unignored) return 'unignored';
    let p = parentRel(rel);
    while (p !== '') {
      const a = ig.test(p + '/');
      if (a.unignored) return 'unignored';
      if (a.ignored) return 'ignored';
      p = parentRel(p);
    }
    return undefined;
  }

  /**
   * The verdict on a path relative to the root (posix). Does not look at ancestors: callers that
   * walk the tree only ask about children of included directories; `isIgnored` checks ancestors.
   */
  decide(rel: string, isDir: boolean): Verdict {
    if (rel === '') return { excluded: false };
    const dirRel = parentRel(rel);
    const chain = this.chain(dirRel);
    const sub = (d: string) => (d === '' ? rel : rel.slice(d.length + 1));
    let excluded = false;
    let reason: ExcludeReason | undefined;
    const apply = (v: 'ignored' | 'unignored' | undefined, why: ExcludeReason) => {
      if (v === 'ignored') { excluded = true; reason = why; } else if (v === 'unignored') { excluded = false; reason = undefined; }
    };
    for (const [d, r] of chain) if (r.git) apply(IgnoreMatcher.layerVerdict(r.git, sub(d), isDir), 'gitignore');
    apply(this.defaults.ignores(rel, isDir) ? 'ignored' : undefined, 'default');
    let explicitMplus = false;
    for (const [d, r] of chain) {
      if (!r.mplus) continue;
      const v = IgnoreMatcher.layerVerdict(r.mplus, sub(d), isDir);
      apply(v, 'mplusignore');
      if (v !== undefined) explicitMplus = r.mplus.test(isDir ? sub(d) + '/' : sub(d)).unignored;
    }
    if (this.user) apply(IgnoreMatcher.layerVerdict(this.user, rel, isDir), 'user-ignore');
    if (!explicitMplus && this.secrets.ignores(rel, isDir)) {
      return { excluded: true, reason: 'secret' };
    }
    return excluded ? { excluded, reason } : { excluded: false };
  }

  /**
   * Whether a `.mplusignore` rule re-includes this very file (`!path`): the only way a secret —
   * by name or by content (secrets.ts) — is fed. Same evaluation as `decide`.
   */
  explicitlyIncluded(rel: string): boolean {
    const dirRel = parentRel(rel);
    const sub = (d: string) => (d === '' ? rel : rel.slice(d.length + 1));
    let explicit = false;
    for (const [d, r] of this.chain(dirRel)) {
      if (!r.mplus) continue;
      if (IgnoreMatcher.layerVerdict(r.mplus, sub(d), false) !== undefined) explicit = r.mplus.test(sub(d)).unignored;
    }
    return explicit;
  }

  /** Decision for a directory including all its ancestors (cached). */
  dirVerdict(dirRel: string): Verdict {
    if (dirRel === '') return { excluded: false };
    const cached = this.dirVerdicts.get(dirRel);
    if (cached) return cached;
    const parent = this.dirVerdict(parentRel(dirRel));
    const v = parent.excluded ? parent : this.decide(dirRel, true);
    this.dirVerdicts.set(dirRel, v);
    return v;
  }

  /** Relative posix path of abs under the root, or undefined when outside it. */
  relOf(abs: string): string | undefined {
    const r = path.relative(this.root, path.resolve(abs));
    if (r === '') return '';
    if (r.startsWith('..') || path.isAbsolute(r)) return undefined;
    return toPosix(r);
  }

  /**
   * Whether a path (absolute, under this root) is excluded, its ancestors included. When `isDir`
   * is not given the path is stat'ed (a path that no longer exists counts as a file).
   */
  isIgnored(abs: string, isDir?: boolean): boolean {
    const rel = this.relOf(abs);
    if (rel === undefined) return true;
    if (rel === '') return false;
    if (this.dirVerdict(parentRel(rel)).excluded) return true;
    if (isDir === undefined) {
      try { isDir = fs.statSync(abs).isDirectory(); } catch { isDir = false; }
    }
    return isDir ? this.dirVerdict(rel).excluded : this.decide(rel, false).excluded;
  }
}

/** `createIgnoreMatcher(root)`: the matcher the watcher and discovery share. */
export function createIgnoreMatcher(root: string, opts: IgnoreMatcherOptions = {}): IgnoreMatcher {
  return new IgnoreMatcher(root, opts);
}

/** A matcher over several roots: a path under none of them is ignored. */
export class MultiRootIgnoreMatcher {
  readonly matchers: IgnoreMatcher[];
  constructor(roots: string[], opts: IgnoreMatcherOptions = {}) {
    this.matchers = roots.map((r) => new IgnoreMatcher(r, opts));
  }
  reload(): void {
    for (const m of this.matchers) m.reload();
  }
  isIgnored = (abs: string, isDir?: boolean): boolean => {
    let best: IgnoreMatcher | undefined;
    for (const m of this.matchers) {
      const rel = m.relOf(abs);
      if (rel !== undefined && (!best || m.root.length > best.root.length)) best = m;
    }
    return best ? best.isIgnored(abs, isDir) : true;
  };
}
