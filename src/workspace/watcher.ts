/**
 * WorkspaceWatcher: chokidar over the workspace roots, events debounced into batches.
 *
 * - `isIgnored` is handed to chokidar as its `ignored` function, so an ignored directory
 *   (node_modules, .git, a gitignored build folder) is never walked nor watched.
 * - A batch holds absolute paths, each once: `changed` (added or modified) and `deleted`; a rename
 *   arrives as the old path deleted and the new one changed; a path deleted and re-created within
 *   one batch (atomic save) is `changed`.
 * - Events are gathered until `debounceMs` pass without one, or `maxWaitMs` after the first, so a
 *   burst (a branch switch touching thousands of files) comes as one or a few batches.
 * - `ignoreFilesChanged` is set when a `.gitignore`/`.mplusignore` (or `.git/info/exclude`)
 *   changed: the consumer should reload its matcher and run discovery again, since files that were
 *   ignored were never watched.
 * - Backends: 'chokidar' (default) holds one OS watch per directory AND per file (chokidar 4 has no
 *   fsevents and watches files one by one): about N inotify watches and ~6 KiB of RSS per file.
 *   'dirs' holds one non-recursive `fs.watch` per (not ignored) directory, which on Linux inotify
 *   and on macOS/Windows reports changes of the files inside: for 100k files in 2k folders, 2k
 *   watches. Same batches, same filtering; see tools/bench/discover.ts for the numbers of both.
 */
import * as fs from 'fs';
import * as path from 'path';
import { watch, FSWatcher } from 'chokidar';
import { isIgnoreFilePath } from './ignore';

export interface ChangeBatch {
  changed: string[];
  deleted: string[];
  /** directories removed (their files are also in `deleted` when the watcher knew them) */
  deletedDirs: string[];
  ignoreFilesChanged: boolean;
}

export interface WatcherOptions {
  /** quiet time before a batch is emitted; default 300 ms */
  debounceMs?: number;
  /** longest a batch is held while events keep coming; default max(2000, 4 × debounceMs) */
  maxWaitMs?: number;
  /** true for paths never to watch or report; `isDir` is given when known */
  isIgnored: (abs: string, isDir?: boolean) => boolean;
  onBatch: (b: ChangeBatch) => void;
  onError?: (e: Error) => void;
  /** 'chokidar' (default) or 'dirs' (one fs.watch per directory; far cheaper on big trees) */
  backend?: 'chokidar' | 'dirs';
}

/** The backend a WorkspaceWatcher drives: reports raw events, closes. */
interface Backend {
  close(): Promise<void>;
  watchedDirs(): string[];
}

/** How a backend is (re)started. */
type BackendFactory = () => Promise<Backend>;

type Kind = 'changed' | 'deleted' | 'deletedDir';

export class WorkspaceWatcher {
  private pending = new Map<string, Kind>();
  private ignoreFilesChanged = false;
  private timer: NodeJS.Timeout | undefined;
  private firstAt = 0;
  private closed = false;
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;

  private backend!: Backend;
  private factory!: BackendFactory;

  private constructor(readonly roots: string[], private readonly opts: WatcherOptions) {
    this.debounceMs = opts.debounceMs ?? 300;
    this.maxWaitMs = opts.maxWaitMs ?? Math.max(2000, 4 * this.debounceMs);
  }

  static async start(roots: string[], opts: WatcherOptions): Promise<WorkspaceWatcher> {
    const absRoots = roots.map((r) => path.resolve(r));
    const w = new WorkspaceWatcher(absRoots, opts);
    w.factory = opts.backend === 'dirs'
      ? () => DirWatcher.start(absRoots, opts, (p, k) => w.record(p, k))
      : () => WorkspaceWatcher.startChokidar(absRoots, opts, (p, k) => w.record(p, k));
    w.backend = await w.factory();
    return w;
  }

  /**
   * Re-applies `isIgnored` to the whole tree (call after the matcher reloaded ignore files): folders
   * that became ignored stop being watched, folders that were re-included start being watched.
   * Events during the switch are reported (possibly twice, never lost).
   */
  async refresh(): Promise<void> {
    if (this.closed) return;
    const next = await this.factory();
    if (this.closed) { await next.close(); return; }
    const old = this.backend;
    this.backend = next;
    await old.close();
  }

  private static async startChokidar(absRoots: string[], opts: WatcherOptions, record: (p: string, k: Kind) => void): Promise<Backend> {
    const rootSet = new Set(absRoots);
    const ignored = (p: string, stats?: { isDirectory(): boolean }): boolean => {
      const abs = path.resolve(p);
      if (rootSet.has(abs)) return false;
      // Ignore files themselves are always reported (their own path rules may exclude them).
      if (isIgnoreFilePath(abs)) return false;
      try {
        return opts.isIgnored(abs, stats ? stats.isDirectory() : undefined);
      } catch (e) {
        opts.onError?.(e as Error);
        return false;
      }
    };
    const fsw = watch(absRoots, {
      ignored,
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      atomic: false,
      awaitWriteFinish: false,
      alwaysStat: false,
    });
    fsw.on('add', (p) => record(p, 'changed'));
    fsw.on('change', (p) => record(p, 'changed'));
    fsw.on('unlink', (p) => record(p, 'deleted'));
    fsw.on('unlinkDir', (p) => record(p, 'deletedDir'));
    fsw.on('error', (e) => opts.onError?.(e instanceof Error ? e : new Error(String(e))));
    await new Promise<void>((resolve) => fsw.once('ready', () => resolve()));
    return {
      close: () => fsw.close(),
      watchedDirs: () => Object.keys(fsw.getWatched()),
    };
  }

  private record(p: string, kind: Kind): void {
    if (this.closed) return;
    const abs = path.resolve(p);
    if (isIgnoreFilePath(abs)) this.ignoreFilesChanged = true;
    this.pending.set(abs, kind);
    const now = Date.now();
    if (this.timer === undefined) this.firstAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstAt + this.maxWaitMs - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Emits what is pending now (also used by close). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0 && !this.ignoreFilesChanged) return;
    const b: ChangeBatch = { changed: [], deleted: [], deletedDirs: [], ignoreFilesChanged: this.ignoreFilesChanged };
    for (const [p, k] of this.pending) {
      if (k === 'changed') b.changed.push(p);
      else if (k === 'deleted') b.deleted.push(p);
      else b.deletedDirs.push(p);
    }
    b.changed.sort();
    b.deleted.sort();
    b.deletedDirs.sort();
    this.pending.clear();
    this.ignoreFilesChanged = false;
    try {
      this.opts.onBatch(b);
    } catch (e) {
      this.opts.onError?.(e as Error);
    }
  }

  /** Directories being watched (absolute). */
  watchedDirs(): string[] {
    return this.backend.watchedDirs();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    await this.backend.close();
  }
}

/**
 * One non-recursive fs.watch per directory. Knows each watched directory's entries, so a vanished
 * name is told apart as a file or a directory (whose known files are all reported deleted).
 */
class DirWatcher implements Backend {
  private readonly watchers = new Map<string, fs.FSWatcher>();
  /** dir → names of its files (not subdirectories) */
  private readonly files = new Map<string, Set<string>>();
  private closed = false;

  private constructor(private readonly opts: WatcherOptions, private readonly record: (p: string, k: Kind) => void,
    private readonly rootSet: Set<string>) {}

  static async start(roots: string[], opts: WatcherOptions, record: (p: string, k: Kind) => void): Promise<DirWatcher> {
    const d = new DirWatcher(opts, record, new Set(roots));
    let last = Date.now();
    for (const r of roots) {
      const stack = [r];
      while (stack.length > 0) {
        const dir = stack.pop() as string;
        for (const sub of d.addDir(dir, false)) stack.push(sub);
        if (Date.now() - last > 10) { await new Promise<void>((res) => setImmediate(res)); last = Date.now(); }
      }
    }
    return d;
  }

  private ignored(abs: string, isDir: boolean): boolean {
    if (this.rootSet.has(abs)) return false;
    if (isIgnoreFilePath(abs)) return false;
    try {
      return this.opts.isIgnored(abs, isDir);
    } catch (e) {
      this.opts.onError?.(e as Error);
      return false;
    }
  }

  /** Watches dir, records its files; returns its (not ignored) subdirectories. */
  private addDir(dir: string, report: boolean): string[] {
    if (this.closed || this.watchers.has(dir)) return [];
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.onError?.(e as Error);
      return [];
    }
    let w: fs.FSWatcher;
    try {
      w = fs.watch(dir, { persistent: true }, (_ev, name) => this.onEvent(dir, name === null ? null : String(name)));
    } catch (e) {
      this.opts.onError?.(e as Error);
      return [];
    }
    w.on('error', (e) => {
      // the directory itself went away: its parent reports it
      if ((e as NodeJS.ErrnoException).code !== 'EPERM' && (e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.onError?.(e);
      this.removeDir(dir, false);
    });
    this.watchers.set(dir, w);
    const names = new Set<string>();
    this.files.set(dir, names);
    const subdirs: string[] = [];
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!this.ignored(abs, true)) subdirs.push(abs);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if (this.ignored(abs, false)) continue;
        names.add(e.name);
        if (report) this.record(abs, 'changed');
      }
    }
    return subdirs;
  }

  /** Stops watching dir and everything under it; reports them deleted when asked. */
  private removeDir(dir: string, report: boolean): void {
    const prefix = dir + path.sep;
    for (const [d, w] of [...this.watchers]) {
      if (d !== dir && !d.startsWith(prefix)) continue;
      w.close();
      this.watchers.delete(d);
      const names = this.files.get(d);
      this.files.delete(d);
      if (report) {
        for (const n of names ?? []) this.record(path.join(d, n), 'deleted');
        this.record(d, 'deletedDir');
      }
    }
  }

  private onEvent(dir: string, name: string | null): void {
    if (this.closed) return;
    if (name === null) {
      // unknown entry: rescan the directory
      this.rescan(dir);
      return;
    }
    const abs = path.join(dir, name);
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(abs); } catch { st = undefined; }
    const names = this.files.get(dir);
    if (st === undefined) {
      if (this.watchers.has(abs)) this.removeDir(abs, true);
      else if (names?.has(name)) { names.delete(name); this.record(abs, 'deleted'); }
      return;
    }
    if (st.isDirectory()) {
      if (this.watchers.has(abs) || this.ignored(abs, true)) return;
      // a new directory: watch it and report what is already inside
      const stack = [abs];
      while (stack.length > 0) {
        const d = stack.pop() as string;
        for (const sub of this.addDir(d, true)) stack.push(sub);
      }
      return;
    }
    if (this.ignored(abs, false)) return;
    if (this.watchers.has(abs)) this.removeDir(abs, true); // a directory replaced by a file
    names?.add(name);
    this.record(abs, 'changed');
  }

  private rescan(dir: string): void {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { this.removeDir(dir, true); return; }
    const present = new Set(entries.map((e) => e.name));
    for (const n of [...(this.files.get(dir) ?? [])]) if (!present.has(n)) this.onEvent(dir, n);
    for (const e of entries) this.onEvent(dir, e.name);
  }

  watchedDirs(): string[] {
    return [...this.watchers.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.files.clear();
  }
}
