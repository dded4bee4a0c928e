/**
 * Ingestion order: the files the user is looking at first, then the files the rest of the
 * repository depends on most (in-repo import-graph in-degree, from cheap regexes over
 * import / require / from / use / mod statements), then everything else by path.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { WorkspaceFile } from './discovery';

export interface OrderHints {
  /** open/recent files, most important first; absolute paths or paths relative to their root */
  focus?: string[];
  /** file text for the import scan (default: read from disk, null when unreadable) */
  readText?: (f: WorkspaceFile) => string | null;
}

const JS_EXTS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs'];
const JS_RE = /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
const PY_RE = /^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+([\w., \t*()]+)|import[ \t]+([\w., \t]+))/gm;
const GO_BLOCK_RE = /^import\s*\(([\s\S]*?)\)/gm;
const GO_LINE_RE = /^import\s+(?:\w+\s+|\.\s+|_\s+)?"([^"]+)"/gm;
const RS_MOD_RE = /^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/gm;
const RS_USE_RE = /^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+((?:crate|super|self)(?:::\w+)+)/gm;
const C_INCLUDE_RE = /^\s*#\s*include\s*"([^"]+)"/gm;

function posixDir(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function norm(p: string): string {
  return path.posix.normalize(p).replace(/^\.\//, '');
}

function defaultRead(f: WorkspaceFile): string | null {
  try {
    if (f.size > 512 * 1024) return null;
    return fs.readFileSync(f.abs, 'utf8');
  } catch {
    return null;
  }
}

/** Key of a file: root index + rel. */
type Key = string;

/** In-repo import-graph in-degree: for each file, how many other discovered files import it. */
export function importCentrality(files: WorkspaceFile[], readText: (f: WorkspaceFile) => string | null = defaultRead): Map<WorkspaceFile, number> {
  const rootIdx = new Map<string, number>();
  for (const f of files) if (!rootIdx.has(f.root)) rootIdx.set(f.root, rootIdx.size);
  const key = (f: WorkspaceFile): Key => `${rootIdx.get(f.root)}\u0000${f.rel}`;
  // Per root: rel → file.
  const byRel = new Map<string, Map<string, WorkspaceFile>>();
  for (const f of files) {
    let m = byRel.get(f.root);
    if (!m) byRel.set(f.root, (m = new Map()));
    m.set(f.rel, f);
  }
  // Python: dotted module suffix → files; Go: dir → files; Rust: rel path suffix lookups use byRel.
  const pyIndex = new Map<string, WorkspaceFile[]>();
  const dirFiles = new Map<string, WorkspaceFile[]>();
  for (const f of files) {
    if (f.rel.endsWith('.py') || f.rel.endsWith('.pyi')) {
      let mod = f.rel.replace(/\.pyi?$/, '').replace(/\/__init__$/, '');
      const parts = mod.split('/');
      for (let i = 0; i < parts.length; i++) {
        mod = parts.slice(i).join('.');
        const l = pyIndex.get(mod) ?? [];
        l.push(f);
        pyIndex.set(mod, l);
      }
    }
    if (f.rel.endsWith('.go')) {
      const d = `${rootIdx.get(f.root)}\u0000${posixDir(f.rel)}`;
      const l = dirFiles.get(d) ?? [];
      l.push(f);
      dirFiles.set(d, l);
    }
  }
  const goDirsByRoot = new Map<number, string[]>();
  for (const k of dirFiles.keys()) {
    const [ri, d] = k.split('\u0000');
    const l = goDirsByRoot.get(Number(ri)) ?? [];
    l.push(d);
    goDirsByRoot.set(Number(ri), l);
  }

  const importers = new Map<Key, Set<Key>>();
  const addEdge = (from: WorkspaceFile, to: WorkspaceFile | undefined) => {
    if (!to || to === from) return;
    const k = key(to);
    let s = importers.get(k);
    if (!s) importers.set(k, (s = new Set()));
    s.add(key(from));
  };

  for (const f of files) {
    const ext = path.posix.extname(f.rel).toLowerCase();
    const scanned = JS_EXTS.includes(ext) || ext === '.py' || ext === '.pyi' || ext === '.go' || ext === '.rs' ||
      ['.c', '.h', '.cc', '.cpp', '.hpp', '.cxx', '.hh'].includes(ext) || ext === '.vue' || ext === '.svelte';
    if (!scanned) continue;
    const text = readText(f);
    if (text === null) continue;
    const rels = byRel.get(f.root) as Map<string, WorkspaceFile>;
    const dir = posixDir(f.rel);
    if (JS_EXTS.includes(ext) || ext === '.vue' || ext === '.svelte') {
      for (const m of text.matchAll(JS_RE)) {
        const spec = m[1] ?? m[2] ?? m[3] ?? m[4];
        if (!spec || !spec.startsWith('.')) continue;
        addEdge(f, resolveJs(norm(path.posix.join(dir, spec)), rels));
      }
    } else if (ext === '.py' || ext === '.pyi') {
      for (const m of text.matchAll(PY_RE)) {
        if (m[1] !== undefined) {
          const from = m[1];
          const dots = /^\.*/.exec(from)?.[0].length ?? 0;
          const names = m[2].replace(/[()]/g, '').split(',').map((s) => s.trim().split(/\s+/)[0]).filter((s) => s && s !== '*');
          if (dots > 0) {
            let base = dir;
            for (let i = 1; i < dots; i++) base = posixDir(base);
            const modPath = from.slice(dots).replace(/\./g, '/');
            const target = modPath ? (base ? `${base}/${modPath}` : modPath) : base;
            const cands = [`${target}.py`, `${target}/__init__.py`, ...names.flatMap((n) => [`${target}/${n}.py`, `${target}/${n}/__init__.py`])];
            for (const c of cands) addEdge(f, rels.get(norm(c)));
          } else {
            const hit = pyIndex.get(from);
            for (const t of hit ?? []) if (t.root === f.root) addEdge(f, t);
            for (const n of names) for (const t of pyIndex.get(`${from}.${n}`) ?? []) if (t.root === f.root) addEdge(f, t);
          }
        } else if (m[3] !== undefined) {
          for (const part of m[3].split(',')) {
            const mod = part.trim().split(/\s+/)[0];
            for (const t of pyIndex.get(mod) ?? []) if (t.root === f.root) addEdge(f, t);
          }
        }
      }
    } else if (ext === '.go') {
      const specs: string[] = [];
      for (const m of text.matchAll(GO_BLOCK_RE)) for (const q of m[1].matchAll(/"([^"]+)"/g)) specs.push(q[1]);
      for (const m of text.matchAll(GO_LINE_RE)) specs.push(m[1]);
      const ri = rootIdx.get(f.root) as number;
      for (const spec of specs) {
        for (const d of goDirsByRoot.get(ri) ?? []) {
          if (d !== '' && (spec === d || spec.endsWith('/' + d))) {
            for (const t of dirFiles.get(`${ri}\u0000${d}`) ?? []) addEdge(f, t);
          }
        }
      }
    } else if (ext === '.rs') {
      const base = path.posix.basename(f.rel);
      const modDir = ['lib.rs', 'main.rs', 'mod.rs'].includes(base) ? dir : (dir ? `${dir}/${base.slice(0, -3)}` : base.slice(0, -3));
      for (const m of text.matchAll(RS_MOD_RE)) {
        const p = modDir ? `${modDir}/${m[1]}` : m[1];
        addEdge(f, rels.get(`${p}.rs`) ?? rels.get(`${p}/mod.rs`));
      }
      const srcIdx = f.rel.lastIndexOf('src/');
      const crateSrc = f.rel.startsWith('src/') ? 'src' : srcIdx > 0 ? f.rel.slice(0, srcIdx + 3) : 'src';
      for (const m of text.matchAll(RS_USE_RE)) {
        const segs = m[1].split('::');
        let baseDir = segs[0] === 'crate' ? crateSrc : segs[0] === 'super' ? posixDir(modDir) : modDir;
        const rest = segs.slice(1);
        for (let k = rest.length; k >= 1; k--) {
          const p = [baseDir, ...rest.slice(0, k)].filter(Boolean).join('/');
          const t = rels.get(`${p}.rs`) ?? rels.get(`${p}/mod.rs`);
          if (t) { addEdge(f, t); break; }
        }
        baseDir = '';
      }
    } else {
      for (const m of text.matchAll(C_INCLUDE_RE)) addEdge(f, rels.get(norm(path.posix.join(dir, m[1]))));
    }
  }

  const out = new Map<WorkspaceFile, number>();
  for (const f of files) out.set(f, importers.get(key(f))?.size ?? 0);
  return out;
}

export function orderFiles(files: WorkspaceFile[], hints: OrderHints = {}): WorkspaceFile[] {
  const centrality = importCentrality(files, hints.readText ?? defaultRead);
  const rootIdx = new Map<string, number>();
  for (const f of files) if (!rootIdx.has(f.root)) rootIdx.set(f.root, rootIdx.size);
  const key = (f: WorkspaceFile): Key => `${rootIdx.get(f.root)}\u0000${f.rel}`;
  // Focus first, in the given order.
  const focusRank = new Map<Key, number>();
  const focus = hints.focus ?? [];
  for (let i = 0; i < focus.length; i++) {
    const want = focus[i].replace(/\\/g, '/');
    for (const f of files) {
      const k = key(f);
      if (focusRank.has(k)) continue;
      if (f.abs.replace(/\\/g, '/') === want || f.rel === want.replace(/^\.\//, '')) focusRank.set(k, i);
    }
  }
  const central = (f: WorkspaceFile) => centrality.get(f) ?? 0;
  const decorated = files.map((f, i) => ({ f, i, k: key(f), fr: focusRank.get(key(f)), c: central(f) }));
  decorated.sort((a, b) => {
    if (a.fr !== undefined || b.fr !== undefined) {
      if (a.fr === undefined) return 1;
      if (b.fr === undefined) return -1;
      if (a.fr !== b.fr) return a.fr - b.fr;
    }
    if (a.c !== b.c) return b.c - a.c;
    return a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i;
  });
  return decorated.map((d) => d.f);
}

function resolveJs(target: string, rels: Map<string, WorkspaceFile>): WorkspaceFile | undefined {
  const direct = rels.get(target);
  if (direct) return direct;
  // TypeScript's node16 style: './a.js' means './a.ts'.
  const stripped = target.replace(/\.(m|c)?js$/, '');
  for (const base of stripped === target ? [target] : [stripped, target]) {
    for (const e of JS_EXTS) {
      const hit = rels.get(base + e);
      if (hit) return hit;
    }
    for (const e of JS_EXTS) {
      const hit = rels.get(`${base}/index${e}`);
      if (hit) return hit;
    }
  }
  return undefined;
}

