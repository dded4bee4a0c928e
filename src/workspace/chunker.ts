/**
 * Chunker: source text → chunks at syntactic boundaries, each with a one-line header naming the
 * file and the symbol path, each within a token budget, each identified by the sha256 of its text.
 *
 * Tree-sitter ABI finding (web-tree-sitter 0.27.2, checked on this machine):
 *   The grammars of `tree-sitter-wasms@0.1.13` (built with tree-sitter-cli 0.20.8, an old
 *   Emscripten) do NOT load: `Language.load` throws "need the dylink section to be first" /
 *   a bare `Error` from `getDylinkMetadata`, because they carry the legacy `dylink` custom section
 *   and the 0.27 runtime (new Emscripten) only reads `dylink.0`. This holds for all 36 of them.
 *   `@vscode/tree-sitter-wasm@0.3.1` (no dependencies, built with tree-sitter-cli 0.25) ships
 *   grammars with `dylink.0` and language ABI 14/15, and all 16 load and parse with
 *   web-tree-sitter 0.27.2: bash, c-sharp, cpp, css, go, ini, java, javascript, php, powershell,
 *   python, regex, ruby, rust, tsx, typescript. That package is the default `wasmDir`.
 *   (Its own `tree-sitter.js` runtime is not used; we use web-tree-sitter's.)
 *   tree-sitter-wasms is therefore only a dev dependency (a test proves the finding); languages
 *   the VS Code set lacks (C, Kotlin, …) are chunked by lines.
 *
 * Splitting: top-level declarations are units (leading comments and attributes go with the
 * declaration that follows them; lines are never shared between units). A unit over budget is
 * split into the children of its body (class members, impl items, statements), recursively; a unit
 * with no body is split by lines, and a single line over budget by characters (the only cut that is
 * not at a line end). Merging: fragments of one declaration (pieces of a split function) fill up to
 * `maxTokens`; distinct declarations are merged only while both sides are under `minTokens` (so an
 * edit to one function re-feeds little). Headers carry no line numbers, so an unchanged piece of code keeps its
 * id when lines above it move.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Language, Node, Parser } from 'web-tree-sitter';
import { LANGUAGES, LEADING, chunkHeader, clean, extOf, mergePaths, sha256Hex, symbolOf, symbolText, unwrap } from './symbols';

export { LANGUAGES, chunkHeader, sha256Hex, symbolOf } from './symbols';

export interface Chunk {
  /** rel path of the file (posix) */
  file: string;
  /** 1-based, inclusive */
  startLine: number;
  endLine: number;
  /** UTF-8 byte offsets in the file, end exclusive */
  startByte: number;
  endByte: number;
  /** e.g. "class Foo > method bar", or "" */
  symbol: string;
  /** header + code: exactly what gets injected */
  text: string;
  /** sha256 hex of text */
  id: string;
}

export interface ChunkBudget {
  countTokens: (s: string) => number;
  maxTokens: number;
  minTokens: number;
}

export interface ChunkerOptions {
  /** Folder with tree-sitter-<lang>.wasm grammars (default: @vscode/tree-sitter-wasm's). */
  wasmDir?: string;
  /** Only load these languages (ids of LANGUAGES); default all. */
  languages?: string[];
  onLog?: (level: 'info' | 'warn', msg: string) => void;
}

interface Unit {
  /** 0-based line indexes, inclusive */
  start: number;
  end: number;
  path: string[];
  node?: Node;
}

interface Piece {
  start: number;
  end: number;
  path: string[];
  /** code text (no header) */
  code: string;
  startByte: number;
  endByte: number;
  /** a piece cut inside a line: never merged */
  partial: boolean;
  tokens: number;
}

function endRow(n: Node): number {
  const e = n.endPosition;
  return e.column === 0 && e.row > n.startPosition.row ? e.row - 1 : e.row;
}

class FileChunker {
  readonly lines: string[];
  readonly lineStartByte: number[];
  readonly lineBytes: number[];
  readonly last: number;

  constructor(readonly rel: string, text: string, readonly budget: ChunkBudget, readonly lang: string | undefined) {
    const raw = text.split('\n');
    if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
    this.lineStartByte = new Array(raw.length);
    this.lineBytes = new Array(raw.length);
    let b = 0;
    for (let i = 0; i < raw.length; i++) {
      this.lineStartByte[i] = b;
      this.lineBytes[i] = Buffer.byteLength(raw[i], 'utf8');
      b += this.lineBytes[i] + 1;
    }
    this.lines = raw.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    this.last = raw.length - 1;
    if (budget.maxTokens < 1) throw new Error(`chunk budget too small: maxTokens=${budget.maxTokens}`);
  }

  header(p: string[]): string {
    const sym = symbolText(p);
    const h = chunkHeader(this.rel, sym);
    // A header that eats half the budget drops its symbol.
    if (this.budget.countTokens(h) * 2 > this.budget.maxTokens) return chunkHeader(this.rel, '');
    return h;
  }

  count(p: string[], code: string): number {
    return this.budget.countTokens(this.header(p) + '\n' + code);
  }

  linesText(s: number, e: number): string {
    return this.lines.slice(s, e + 1).join('\n');
  }

  piece(u: Unit): Piece {
    const code = this.linesText(u.start, u.end);
    // Far over budget (more than 16 characters a token would be needed to fit): do not tokenize
    // the whole text at every level of the recursion, it is split anyway.
    const hopeless = code.length > this.budget.maxTokens * 16;
    return {
      start: u.start, end: u.end, path: u.path, code,
      startByte: this.lineStartByte[u.start], endByte: this.lineStartByte[u.end] + this.lineBytes[u.end],
      partial: false, tokens: hopeless ? this.budget.maxTokens + 1 : this.count(u.path, code),
    };
  }

  /** Partitions lines [s, e] among nodes: each unit runs to its node's last line. */
  partition(nodes: Node[], s: number, e: number, parentPath: string[]): Unit[] {
    const units: Unit[] = [];
    // Inside a function body local variables are not symbols.
    const inFunction = parentPath.length > 0 && /^(function|method|fn|def|func|constructor|const|let|var) /.test(parentPath[parentPath.length - 1]);
    const symOf = (n: Node) => {
      if (!this.lang) return '';
      if (inFunction && /^(lexical_declaration|variable_declaration|let_declaration|short_var_declaration|expression_statement)$/.test(unwrap(n).type)) return '';
      return symbolOf(n, this.lang);
    };
    let cursor = s;
    for (const n of nodes) {
      const ne = Math.min(endRow(n), e);
      if (ne < cursor) {
        // shares lines with the previous unit
        const prev = units[units.length - 1];
        if (prev) {
          const sym = symOf(n);
          if (sym && prev.path.length > parentPath.length && !prev.path[prev.path.length - 1].includes(sym)) {
            prev.path = [...prev.path.slice(0, -1), `${prev.path[prev.path.length - 1]}, ${sym}`];
          } else if (sym && prev.path.length === parentPath.length) prev.path = [...parentPath, sym];
        }
        continue;
      }
      if (LEADING.has(n.type)) continue; // comments/attributes: the next unit starts at `cursor`
      const sym = symOf(n);
      units.push({ start: cursor, end: ne, path: sym ? [...parentPath, sym] : parentPath, node: n });
      cursor = ne + 1;
    }
    if (units.length === 0) return [{ start: s, end: e, path: parentPath }];
    units[units.length - 1].end = e;
    return units;
  }

  /** Children to split a too-big node into. */
  bodyChildren(node: Node): Node[] {
    let n = unwrap(node);
    for (let depth = 0; depth < 6; depth++) {
      const body = n.childForFieldName('body');
      const kids = (body ?? n).namedChildren.filter((c): c is Node => c !== null);
      if (body) {
        // the body may itself be a single block (e.g. arrow function body)
        if (kids.length === 1 && kids[0].namedChildCount > 1 && endRow(kids[0]) > kids[0].startPosition.row &&
          (!this.lang || symbolOf(kids[0], this.lang) === '')) { n = kids[0]; continue; }
        return kids;
      }
      if (kids.length === 1) { n = kids[0]; continue; }
      // Prefer the biggest child when only one spans several lines (e.g. `x = {…}`).
      const multi = kids.filter((c) => endRow(c) > c.startPosition.row);
      if (multi.length === 1 && kids.every((c) => c === multi[0] || endRow(c) === c.startPosition.row) &&
        multi[0].namedChildCount > 0 && !(endRow(multi[0]) === endRow(n) && multi[0].startPosition.row === n.startPosition.row && multi[0].namedChildCount === kids.length)) {
        const inner = multi[0];
        const f = inner.childForFieldName('body');
        if (f || inner.namedChildCount > 1) { n = inner; continue; }
      }
      return kids;
    }
    return [];
  }

  split(u: Unit, depth: number): Piece[] {
    const p = this.piece(u);
    if (p.tokens <= this.budget.maxTokens) return [p];
    if (u.node && depth < 24) {
      const kids = this.bodyChildren(u.node);
      const subs = kids.length > 0 ? this.partition(kids, u.start, u.end, u.path) : [];
      if (subs.length > 1 || (subs.length === 1 && subs[0].node && subs[0].node.id !== u.node.id)) {
        return this.merge(subs.flatMap((s) => this.split(s, depth + 1)));
      }
    }
    return this.splitLines(u);
  }

  /** Greedy by lines; a single line over budget is cut by characters. */
  splitLines(u: Unit): Piece[] {
    const out: Piece[] = [];
    const max = this.budget.maxTokens;
    const headerTokens = this.budget.countTokens(this.header(u.path) + '\n');
    let s = u.start;
    while (s <= u.end) {
      let e = s;
      let est = headerTokens + this.budget.countTokens(this.lines[s]);
      if (est > max || this.count(u.path, this.lines[s]) > max) {
        out.push(...this.splitLine(s, u.path));
        s++;
        continue;
      }
      while (e + 1 <= u.end) {
        const t = this.budget.countTokens(this.lines[e + 1]) + 1;
        if (est + t > max) break;
        est += t;
        e++;
      }
      // estimates may undercount: shrink until exact count fits
      let code = this.linesText(s, e);
      let tokens = this.count(u.path, code);
      while (tokens > max && e > s) {
        e--;
        code = this.linesText(s, e);
        tokens = this.count(u.path, code);
      }
      out.push({
        start: s, end: e, path: u.path, code, startByte: this.lineStartByte[s],
        endByte: this.lineStartByte[e] + this.lineBytes[e], partial: false, tokens,
      });
      s = e + 1;
    }
    return out;
  }

  splitLine(i: number, p: string[]): Piece[] {
    const line = this.lines[i];
    const out: Piece[] = [];
    let from = 0;
    while (from < line.length) {
      // largest prefix of line[from..] that fits (binary search on characters)
      let lo = 1;
      let hi = line.length - from;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (this.count(p, line.slice(from, from + mid)) <= this.budget.maxTokens) lo = mid; else hi = mid - 1;
      }
      let to = from + lo;
      // do not split a surrogate pair
      if (to < line.length && /[\uD800-\uDBFF]/.test(line[to - 1]) && to - 1 > from) to--;
      const code = line.slice(from, to);
      const tokens = this.count(p, code);
      if (tokens > this.budget.maxTokens) throw new Error(`chunk budget too small for the header of ${this.rel} (maxTokens=${this.budget.maxTokens})`);
      const sb = this.lineStartByte[i] + Buffer.byteLength(line.slice(0, from), 'utf8');
      out.push({ start: i, end: i, path: p, code, startByte: sb, endByte: sb + Buffer.byteLength(code, 'utf8'), partial: true, tokens });
      from = to;
    }
    if (out.length === 0) out.push({ start: i, end: i, path: p, code: '', startByte: this.lineStartByte[i], endByte: this.lineStartByte[i], partial: false, tokens: 0 });
    return out;
  }

  /** Merges adjacent small pieces (each under minTokens) while the result fits maxTokens. */
  merge(pieces: Piece[]): Piece[] {
    const { minTokens, maxTokens } = this.budget;
    const out: Piece[] = [];
    const paths = new Map<Piece, string[][]>();
    const join = (a: Piece, b: Piece): Piece | undefined => {
      if (a.partial || b.partial || b.start !== a.end + 1) return undefined;
      const ps = [...(paths.get(a) ?? [a.path]), ...(paths.get(b) ?? [b.path])];
      const mp = mergePaths(ps);
      const code = a.code + '\n' + b.code;
      const tokens = this.count(mp, code);
      if (tokens > maxTokens) return undefined;
      const m: Piece = { start: a.start, end: b.end, path: mp, code, startByte: a.startByte, endByte: b.endByte, partial: false, tokens };
      paths.set(m, ps);
      return m;
    };
    let cur: Piece | undefined;
    for (const p of pieces) {
      if (!cur) { cur = p; continue; }
      // Fragments of one declaration fill up to the budget; distinct declarations merge only
      // while small (so an edit to one re-feeds little).
      const sameDecl = cur.path.length > 0 && !paths.has(cur) && cur.path.join('\u0000') === p.path.join('\u0000');
      const fragments = sameDecl || (paths.has(cur) && (paths.get(cur) as string[][]).every((q) => q.join('\u0000') === p.path.join('\u0000')) && p.path.length > 0);
      if (fragments || (cur.tokens < minTokens && p.tokens < minTokens)) {
        const m = join(cur, p);
        if (m) { cur = m; continue; }
      }
      out.push(cur);
      cur = p;
    }
    if (cur) {
      const prev = out[out.length - 1];
      if (prev && cur.tokens < minTokens && !(paths.get(prev) === undefined && prev.tokens >= minTokens)) {
        const m = join(prev, cur);
        if (m) { out[out.length - 1] = m; cur = undefined; }
      }
      if (cur) out.push(cur);
    }
    return out;
  }

  /** Units for text without a grammar: paragraphs (blank-line separated; markdown headings start one). */
  textUnits(): Unit[] {
    const units: Unit[] = [];
    const md = ['md', 'markdown', 'mdx', 'rst', 'txt'].includes(extOf(this.rel));
    let start = 0;
    let heading: string[] = [];
    for (let i = 1; i <= this.last; i++) {
      const prevBlank = this.lines[i - 1].trim() === '';
      const blank = this.lines[i].trim() === '';
      const isHeading = md && /^#{1,6}\s/.test(this.lines[i]);
      if (!blank && (prevBlank || isHeading)) {
        units.push({ start, end: i - 1, path: heading });
        start = i;
      }
      if (isHeading) heading = [clean(this.lines[i].replace(/^#+\s*/, ''))];
      else if (!blank && prevBlank && !md) heading = [];
    }
    units.push({ start, end: this.last, path: heading });
    if (md && /^#{1,6}\s/.test(this.lines[0] ?? '')) units[0].path = [clean(this.lines[0].replace(/^#+\s*/, ''))];
    return units;
  }

  run(root: Node | undefined): Chunk[] {
    if (this.last < 0 || this.lines.every((l) => l.trim() === '')) return [];
    let units: Unit[];
    if (root) {
      const kids = root.namedChildren.filter((c): c is Node => c !== null);
      units = this.partition(kids, 0, this.last, []);
    } else {
      units = this.textUnits();
    }
    const pieces = this.merge(units.flatMap((u) => this.split(u, 0)));
    const chunks: Chunk[] = [];
    for (const p of pieces) {
      if (p.code.trim() === '') continue;
      const text = this.header(p.path) + '\n' + p.code;
      chunks.push({
        file: this.rel, startLine: p.start + 1, endLine: p.end + 1, startByte: p.startByte, endByte: p.endByte,
        symbol: symbolText(p.path), text, id: sha256Hex(text),
      });
    }
    return chunks;
  }
}

function defaultWasmDirs(): string[] {
  const dirs: string[] = [];
  // Only the VS Code grammar set: tree-sitter-wasms' grammars cannot load in web-tree-sitter 0.27
  // (see the top of this file), so it is a dev dependency kept for the test that proves it.
  for (const [pkg, sub] of [['@vscode/tree-sitter-wasm/package.json', 'wasm']] as const) {
    try { dirs.push(path.join(path.dirname(require.resolve(pkg)), sub)); } catch { /* not installed */ }
  }
  return dirs;
}

let parserInit: Promise<void> | undefined;

function initParser(): Promise<void> {
  if (!parserInit) {
    let wasm: string | undefined;
    try { wasm = require.resolve('web-tree-sitter/web-tree-sitter.wasm'); } catch { wasm = undefined; }
    parserInit = Parser.init(wasm ? { locateFile: () => wasm as string } : undefined);
  }
  return parserInit;
}

export class Chunker {
  private readonly parsers = new Map<string, Parser>();
  private readonly byExt = new Map<string, string>();

  private constructor() {}

  /** Loads the grammars (all of LANGUAGES unless `languages` narrows them). */
  static async create(opts: ChunkerOptions = {}): Promise<Chunker> {
    await initParser();
    const c = new Chunker();
    const dirs = opts.wasmDir ? [opts.wasmDir] : defaultWasmDirs();
    const ids = opts.languages ?? Object.keys(LANGUAGES);
    for (const id of ids) {
      const spec = LANGUAGES[id];
      if (!spec) throw new Error(`unknown language '${id}' (known: ${Object.keys(LANGUAGES).join(', ')})`);
      let lang: Language | undefined;
      const errors: string[] = [];
      for (const d of dirs) {
        const file = path.join(d, `tree-sitter-${spec.wasm}.wasm`);
        if (!fs.existsSync(file)) continue;
        try {
          lang = await Language.load(file);
          break;
        } catch (e) {
          errors.push(`${file}: ${(e as Error).message || 'incompatible grammar (ABI/dylink)'}`);
        }
      }
      if (!lang) {
        opts.onLog?.('warn', `no usable tree-sitter grammar for ${id}; line chunking instead${errors.length ? ` (${errors.join('; ')})` : ''}`);
        continue;
      }
      const p = new Parser();
      p.setLanguage(lang);
      c.parsers.set(id, p);
      for (const e of spec.exts) c.byExt.set(e, id);
    }
    return c;
  }

  /** Language ids with a loaded grammar. */
  get languages(): string[] {
    return [...this.parsers.keys()];
  }

  /** The language id used for a path, or undefined (line chunking). */
  languageOf(rel: string): string | undefined {
    return this.byExt.get(extOf(rel));
  }

  chunk(file: { rel: string; text: string }, budget: ChunkBudget): Chunk[] {
    const lang = this.languageOf(file.rel);
    const fc = new FileChunker(file.rel, file.text, budget, lang);
    if (!lang) return fc.run(undefined);
    const parser = this.parsers.get(lang) as Parser;
    const tree = parser.parse(file.text);
    if (!tree) return fc.run(undefined);
    try {
      return fc.run(tree.rootNode);
    } finally {
      tree.delete();
    }
  }

  /**
   * Runs `visit` on the syntax tree of a file in a loaded language (the tree is freed after);
   * returns undefined when the path has no grammar.
   */
  withTree<T>(file: { rel: string; text: string }, visit: (root: Node, lang: string) => T): T | undefined {
    const lang = this.languageOf(file.rel);
    const tree = lang ? (this.parsers.get(lang) as Parser).parse(file.text) : null;
    if (!lang || !tree) return undefined;
    try {
      return visit(tree.rootNode, lang);
    } finally {
      tree.delete();
    }
  }

  /** Frees the parsers. */
  dispose(): void {
    for (const p of this.parsers.values()) p.delete();
    this.parsers.clear();
    this.byExt.clear();
  }
}
