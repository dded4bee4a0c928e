import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { discover } from '../../src/workspace/discovery';
import { importCentrality, orderFiles } from '../../src/workspace/order';
import { rmDir, tmpDir } from '../helpers/tmp';

function write(root: string, rel: string, content: string): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
}

describe('workspace/order', () => {
  let root: string;
  before(() => {
    root = tmpDir('order');
    // TypeScript: util is imported by three files (one via require, one node16 style './util.js'), types by two.
    write(root, 'src/util.ts', 'export const u = 1;\n');
    write(root, 'src/types/index.ts', 'export type T = number;\n');
    write(root, 'src/a.ts', "import { u } from './util';\nimport type { T } from './types';\n");
    write(root, 'src/b.ts', "import { u } from './util.js';\nexport * from './types/index';\n");
    write(root, 'src/c.js', "const { u } = require('./util');\nimport('./missing');\n");
    write(root, 'src/zz.ts', "import * as fs from 'fs';\n");
    // Python: core imported by two modules (absolute and relative)
    write(root, 'py/pkg/__init__.py', '');
    write(root, 'py/pkg/core.py', 'X = 1\n');
    write(root, 'py/pkg/a.py', 'from .core import X\n');
    write(root, 'py/pkg/b.py', 'from pkg.core import X\nimport os\n');
    // Go: package dir imported by main
    write(root, 'go/internal/store/store.go', 'package store\n');
    write(root, 'go/cmd/main.go', 'package main\n\nimport (\n\t"fmt"\n\t"example.com/app/go/internal/store"\n)\n');
    // Rust: mod and use
    write(root, 'rs/src/lib.rs', 'mod geom;\npub use crate::geom::Point;\n');
    write(root, 'rs/src/geom.rs', 'pub struct Point;\n');
    write(root, 'rs/src/main.rs', 'use crate::geom::Point;\n');
  });
  after(() => rmDir(root));

  it('counts in-repo importers per file from import/require/from/use/mod statements', async () => {
    const { files } = await discover([root]);
    const c = new Map([...importCentrality(files)].map(([f, n]) => [f.rel, n]));
    assert.strictEqual(c.get('src/util.ts'), 3);
    assert.strictEqual(c.get('src/types/index.ts'), 2);
    assert.strictEqual(c.get('src/a.ts'), 0);
    assert.strictEqual(c.get('py/pkg/core.py'), 2);
    assert.strictEqual(c.get('go/internal/store/store.go'), 1);
    assert.strictEqual(c.get('rs/src/geom.rs'), 2);
  });

  it('puts focus files first (abs or rel, in the given order), then by centrality, then by path', async () => {
    const { files } = await discover([root]);
    const shuffled = [...files].reverse();
    const order = orderFiles(shuffled, { focus: ['src/zz.ts', path.join(root, 'src', 'c.js'), 'not/there.ts'] }).map((f) => f.rel);
    assert.deepStrictEqual(order.slice(0, 6), ['src/zz.ts', 'src/c.js', 'src/util.ts', 'py/pkg/core.py', 'rs/src/geom.rs', 'src/types/index.ts']);
    const rest = order.slice(6);
    const central = importCentrality(files);
    const restCentral = rest.map((r) => central.get(files.find((f) => f.rel === r)!) ?? 0);
    assert.ok(restCentral.every((n, i) => i === 0 || restCentral[i - 1] >= n));
    const zeros = rest.filter((_, i) => restCentral[i] === 0);
    assert.deepStrictEqual(zeros, [...zeros].sort());
    assert.strictEqual(order.length, files.length);
    // deterministic whatever the input order
    assert.deepStrictEqual(orderFiles(files, {}).map((f) => f.rel), orderFiles(shuffled, {}).map((f) => f.rel));
  });

  it('uses readText when given (no disk reads)', () => {
    const mk = (rel: string) => ({ root: '/r', rel, abs: `/r/${rel}`, size: 1, mtimeMs: 0 });
    const files = [mk('a.ts'), mk('b.ts'), mk('c.ts')];
    const text: Record<string, string> = { 'a.ts': "import './c';", 'b.ts': "import x from './c';", 'c.ts': '' };
    const order = orderFiles(files, { readText: (f) => text[f.rel] ?? null });
    assert.deepStrictEqual(order.map((f) => f.rel), ['c.ts', 'a.ts', 'b.ts']);
  });
});
