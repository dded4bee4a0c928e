import * as assert from 'assert';
import * as path from 'path';
import { Chunk, Chunker, chunkHeader, sha256Hex } from '../../src/workspace/chunker';
import { planFileDeletion, planFileUpdate } from '../../src/workspace/planner';

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const quarter = (s: string) => Math.ceil(s.length / 4);

const TS = `import * as fs from 'fs';
import { helper } from './helper';

/** A counter. */
export class Counter {
  private n = 0;

  constructor(start: number) {
    this.n = start;
  }

  /** Adds one. */
  increment(): number {
    this.n += 1;
    return this.n;
  }

  reset(): void {
    this.n = 0;
  }
}

export function makeCounter(): Counter {
  return new Counter(helper());
}

interface Options {
  verbose: boolean;
}
`;

const PY = `import os


class Greeter:
    """Says hello."""

    def __init__(self, name):
        self.name = name

    @staticmethod
    def shout(text):
        return text.upper()


def main():
    g = Greeter(os.environ.get("USER", "you"))
    print(Greeter.shout(g.name))
`;

const GO = `package server

import "fmt"

// Server serves.
type Server struct {
	addr string
}

// Start starts the server.
func (s *Server) Start() error {
	fmt.Println("listening on", s.addr)
	return nil
}

func New(addr string) *Server {
	return &Server{addr: addr}
}
`;

const RS = `use std::fmt;

/// A point.
#[derive(Debug, Clone)]
pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    pub fn new(x: i32, y: i32) -> Self {
        Point { x, y }
    }

    pub fn manhattan(&self) -> i32 {
        self.x.abs() + self.y.abs()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}
`;

function summary(chunks: Chunk[]): Array<[number, number, string]> {
  return chunks.map((c) => [c.startLine, c.endLine, c.symbol]);
}

function lines(text: string, c: Chunk): string {
  return text.split('\n').slice(c.startLine - 1, c.endLine).join('\n');
}

/** Every line of the file is in exactly one chunk, in order, and each chunk is header + its lines. */
function assertCovers(text: string, rel: string, chunks: Chunk[]): void {
  const n = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
  let next = 1;
  for (const c of chunks) {
    assert.strictEqual(c.startLine, next, `chunk starts at ${c.startLine}, expected ${next}`);
    assert.ok(c.endLine >= c.startLine);
    // (a header that would take half the budget drops its symbol)
    const body = `\n${lines(text, c).replace(/\r/g, '')}`;
    assert.ok(c.text === chunkHeader(rel, c.symbol) + body || c.text === chunkHeader(rel, '') + body, c.text);
    assert.strictEqual(Buffer.from(text, 'utf8').subarray(c.startByte, c.endByte).toString('utf8'), lines(text, c));
    assert.strictEqual(c.id, sha256Hex(c.text));
    assert.strictEqual(c.file, rel);
    next = c.endLine + 1;
  }
  assert.strictEqual(next, n + 1, 'all lines covered');
}

describe('workspace/chunker', function () {
  let chunker: Chunker;
  before(async () => {
    chunker = await Chunker.create({ languages: ['typescript', 'tsx', 'javascript', 'python', 'go', 'rust'] });
  });
  after(() => chunker.dispose());

  it('loads the grammars with web-tree-sitter 0.27 (ABI-compatible wasm set)', () => {
    assert.deepStrictEqual(chunker.languages.sort(), ['go', 'javascript', 'python', 'rust', 'tsx', 'typescript']);
    assert.strictEqual(chunker.languageOf('a/b.tsx'), 'tsx');
    assert.strictEqual(chunker.languageOf('README.md'), undefined);
  });

  it('ABI finding: the tree-sitter-wasms grammars do not load in web-tree-sitter 0.27; such a language falls back to lines', async () => {
    const dir = path.join(path.dirname(require.resolve('tree-sitter-wasms/package.json')), 'out');
    const logs: string[] = [];
    const old = await Chunker.create({ wasmDir: dir, languages: ['go'], onLog: (_l, m) => logs.push(m) });
    assert.deepStrictEqual(old.languages, []);
    assert.ok(logs.some((m) => m.includes('no usable tree-sitter grammar for go')), logs.join('\n'));
    const chunks = old.chunk({ rel: 'server/server.go', text: GO }, { countTokens: words, maxTokens: 60, minTokens: 1 });
    assert.ok(chunks.length > 0 && chunks.every((c) => c.symbol === ''));
    old.dispose();
  });

  it('TypeScript: one chunk per top-level declaration with a roomy budget', () => {
    const chunks = chunker.chunk({ rel: 'src/counter.ts', text: TS }, { countTokens: words, maxTokens: 400, minTokens: 1 });
    assert.deepStrictEqual(summary(chunks), [
      [1, 1, ''],
      [2, 2, ''],
      [3, 21, 'class Counter'],
      [22, 25, 'function makeCounter'],
      [26, 29, 'interface Options'],
    ]);
    assert.ok(chunks[2].text.startsWith('// file: src/counter.ts — class Counter\n\n/** A counter. */\nexport class Counter {'));
    assertCovers(TS, 'src/counter.ts', chunks);
  });

  it('TypeScript: a class over budget splits into its members, symbols carry the path', () => {
    const budget = { countTokens: words, maxTokens: 22, minTokens: 1 };
    const chunks = chunker.chunk({ rel: 'src/counter.ts', text: TS }, budget);
    assert.deepStrictEqual(summary(chunks), [
      [1, 1, ''],
      [2, 2, ''],
      [3, 6, 'class Counter > field n'],
      [7, 10, 'class Counter > method constructor'],
      [11, 16, 'class Counter > method increment'],
      [17, 21, 'class Counter > method reset'],
      [22, 25, 'function makeCounter'],
      [26, 29, 'interface Options'],
    ]);
    for (const c of chunks) assert.ok(words(c.text) <= budget.maxTokens, `${words(c.text)} > ${budget.maxTokens}`);
    assertCovers(TS, 'src/counter.ts', chunks);
  });

  it('merges adjacent small pieces up to minTokens, never over maxTokens', () => {
    const chunks = chunker.chunk({ rel: 'src/counter.ts', text: TS }, { countTokens: words, maxTokens: 40, minTokens: 30 });
    assert.deepStrictEqual(summary(chunks), [
      [1, 2, ''],
      [3, 10, 'class Counter > field n, method constructor'],
      [11, 21, 'class Counter > method increment, method reset'],
      [22, 29, 'function makeCounter, interface Options'],
    ]);
    for (const c of chunks) assert.ok(words(c.text) <= 40);
    assertCovers(TS, 'src/counter.ts', chunks);
  });

  it('Python: classes, methods (decorated ones included) and functions', () => {
    const whole = chunker.chunk({ rel: 'app/greeter.py', text: PY }, { countTokens: words, maxTokens: 100, minTokens: 1 });
    assert.deepStrictEqual(summary(whole), [[1, 1, ''], [2, 12, 'class Greeter'], [13, 17, 'def main']]);
    assert.ok(whole[1].text.startsWith('# file: app/greeter.py — class Greeter\n'));
    const split = chunker.chunk({ rel: 'app/greeter.py', text: PY }, { countTokens: words, maxTokens: 16, minTokens: 1 });
    assert.deepStrictEqual(summary(split), [
      [1, 1, ''],
      [2, 5, 'class Greeter'],
      [6, 8, 'class Greeter > def __init__'],
      [9, 12, 'class Greeter > def shout'],
      [13, 17, 'def main'],
    ]);
    for (const c of split) assert.ok(words(c.text) <= 16);
    assertCovers(PY, 'app/greeter.py', split);
  });

  it('Go: types, methods with receivers, functions; doc comments go with their declaration', () => {
    const chunks = chunker.chunk({ rel: 'server/server.go', text: GO }, { countTokens: words, maxTokens: 60, minTokens: 1 });
    assert.deepStrictEqual(summary(chunks), [
      [1, 1, ''],
      [2, 3, ''],
      [4, 8, 'type Server'],
      [9, 14, 'method Server.Start'],
      [15, 18, 'func New'],
    ]);
    assert.ok(chunks[3].text.includes('// Start starts the server.\nfunc (s *Server) Start() error {'));
    assertCovers(GO, 'server/server.go', chunks);
  });

  it('Rust: attributes stay with their item; impls split into fns when over budget', () => {
    const whole = chunker.chunk({ rel: 'src/point.rs', text: RS }, { countTokens: words, maxTokens: 200, minTokens: 1 });
    assert.deepStrictEqual(summary(whole), [[1, 1, ''], [2, 8, 'struct Point'], [9, 18, 'impl Point'], [19, 24, 'impl fmt::Display for Point']]);
    assert.ok(whole[1].text.includes('/// A point.\n#[derive(Debug, Clone)]\npub struct Point {'));
    const split = chunker.chunk({ rel: 'src/point.rs', text: RS }, { countTokens: words, maxTokens: 28, minTokens: 1 });
    assert.deepStrictEqual(summary(split), [
      [1, 1, ''], [2, 8, 'struct Point'], [9, 13, 'impl Point > fn new'], [14, 18, 'impl Point > fn manhattan'],
      [19, 24, 'impl fmt::Display for Point'],
    ]);
    for (const c of split) assert.ok(words(c.text) <= 28);
    assertCovers(RS, 'src/point.rs', split);
  });

  it('every chunk fits maxTokens (chars/4) on a large generated file; long lines and leaves split', () => {
    const parts: string[] = [];
    for (let i = 0; i < 60; i++) {
      parts.push(`export function f${i}(a: number): number {\n${'  a = a * 3 + 1;\n'.repeat(i % 17)}  return a;\n}\n`);
    }
    parts.push(`export const table = [${Array.from({ length: 400 }, (_, i) => i).join(', ')}];\n`); // one long line
    parts.push(`export class Big {\n${Array.from({ length: 40 }, (_, i) => `  m${i}() { return ${i}; }\n`).join('')}}\n`);
    const text = parts.join('\n');
    for (const [max, min] of [[64, 16], [200, 50], [37, 1]] as const) {
      const chunks = chunker.chunk({ rel: 'gen.ts', text }, { countTokens: quarter, maxTokens: max, minTokens: min });
      for (const c of chunks) assert.ok(quarter(c.text) <= max, `chunk ${c.startLine}-${c.endLine} has ${quarter(c.text)} > ${max}`);
      // pieces of one long line share it; all others cover whole lines in order
      const whole = chunks.filter((c) => c.startLine !== c.endLine || lines(text, c) === c.text.slice(c.text.indexOf('\n') + 1));
      assert.ok(whole.length > 0);
      const longLine = chunks.filter((c) => c.text.includes('export const table') || c.text.includes(', 399]'));
      if (max < 200) assert.ok(longLine.length >= 1);
      const bigSyms = chunks.filter((c) => c.symbol.startsWith('class Big >'));
      assert.ok(bigSyms.length >= 2, 'class Big split into methods');
      // byte ranges are increasing and within the file
      let prevEnd = 0;
      for (const c of chunks) { assert.ok(c.startByte >= prevEnd); assert.ok(c.endByte <= Buffer.byteLength(text)); prevEnd = c.endByte; }
    }
  });

  it('line-based fallback for other languages and plain text (markdown headings name chunks)', () => {
    const md = '# Title\n\nIntro paragraph here.\n\n## Install\n\nnpm install thing\n\n## Use\n\nRun it.\n';
    const chunks = chunker.chunk({ rel: 'README.md', text: md }, { countTokens: words, maxTokens: 14, minTokens: 1 });
    assert.ok(chunks.length >= 2);
    assert.ok(chunks[0].text.startsWith('<!-- file: README.md — Title -->\n# Title'));
    assert.ok(chunks.some((c) => c.symbol === 'Install' || c.symbol.includes('Install')));
    for (const c of chunks) assert.ok(words(c.text) <= 14);
    assertCovers(md, 'README.md', chunks);
    const ini = Array.from({ length: 50 }, (_, i) => `key${i} = value ${i}`).join('\n');
    const c2 = chunker.chunk({ rel: 'conf/x.cfg', text: ini }, { countTokens: words, maxTokens: 30, minTokens: 1 });
    assert.ok(c2.length > 1);
    assert.ok(c2[0].text.startsWith('# file: conf/x.cfg\n'));
    assertCovers(ini, 'conf/x.cfg', c2);
    assert.deepStrictEqual(chunker.chunk({ rel: 'empty.ts', text: '\n\n' }, { countTokens: words, maxTokens: 10, minTokens: 1 }), []);
  });

  it('stable ids: identical content gives identical ids; moving code keeps the ids of untouched chunks', () => {
    const budget = { countTokens: words, maxTokens: 22, minTokens: 1 };
    const a = chunker.chunk({ rel: 'src/counter.ts', text: TS }, budget);
    const b = chunker.chunk({ rel: 'src/counter.ts', text: TS }, budget);
    assert.deepStrictEqual(a.map((c) => c.id), b.map((c) => c.id));
    // insert a function at the top: every old chunk keeps its id, line numbers shift
    const edited = TS.replace("import { helper } from './helper';\n", "import { helper } from './helper';\n\nfunction added() { return 42; }\n");
    const c = chunker.chunk({ rel: 'src/counter.ts', text: edited }, budget);
    const oldIds = new Set(a.map((x) => x.id));
    const kept = c.filter((x) => oldIds.has(x.id));
    assert.ok(kept.length >= a.length - 2, `${kept.length} of ${a.length} kept`);
    const inc = c.find((x) => x.symbol === 'class Counter > method increment');
    assert.ok(inc && oldIds.has(inc.id) && inc.startLine === 13);
    // the same text in another file is another chunk (the header names the file)
    const other = chunker.chunk({ rel: 'src/other.ts', text: TS }, budget);
    assert.ok(other.every((x) => !oldIds.has(x.id)));
    // CRLF and LF give the same ids
    const crlf = chunker.chunk({ rel: 'src/counter.ts', text: TS.replace(/\n/g, '\r\n') }, budget);
    assert.deepStrictEqual(crlf.map((x) => x.id), a.map((x) => x.id));
  });

  it('planner: only new ids are injected, vanished ids are stale', () => {
    const budget = { countTokens: words, maxTokens: 22, minTokens: 1 };
    const v1 = chunker.chunk({ rel: 'src/counter.ts', text: TS }, budget);
    const known = new Set(v1.map((c) => c.id));
    const same = planFileUpdate('src/counter.ts', v1, known);
    assert.deepStrictEqual([same.inject.length, same.staleIds.length, same.unchanged], [0, 0, v1.length]);
    const v2 = chunker.chunk({ rel: 'src/counter.ts', text: TS.replace('this.n += 1;', 'this.n += 2;') }, budget);
    const plan = planFileUpdate('src/counter.ts', v2, known);
    assert.strictEqual(plan.inject.length, 1);
    assert.strictEqual(plan.inject[0].symbol, 'class Counter > method increment');
    assert.deepStrictEqual(plan.staleIds, [v1.find((c) => c.symbol === 'class Counter > method increment')?.id]);
    assert.strictEqual(plan.unchanged, v1.length - 1);
    const fresh = planFileUpdate('src/counter.ts', v2, new Set());
    assert.strictEqual(fresh.inject.length, v2.length);
    // duplicates within a file are injected once
    const dup = planFileUpdate('src/counter.ts', [v2[0], v2[0]], new Set(['gone']));
    assert.deepStrictEqual([dup.inject.length, dup.staleIds], [1, ['gone']]);
    assert.deepStrictEqual(planFileDeletion(known).staleIds, [...known].sort());
    assert.throws(() => planFileUpdate('other.ts', v2, known), /another file/);
  });
});
