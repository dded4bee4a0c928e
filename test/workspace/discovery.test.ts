import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { discover, sniffContent } from '../../src/workspace/discovery';
import { createIgnoreMatcher } from '../../src/workspace/ignore';
import { rmDir, tmpDir } from '../helpers/tmp';

function write(root: string, rel: string, content: string | Buffer = 'x\n'): string {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  return abs;
}

async function rels(root: string, opts: Parameters<typeof discover>[1] = {}): Promise<string[]> {
  const r = await discover([root], opts);
  return r.files.map((f) => f.rel).sort();
}

describe('workspace/discovery', () => {
  const dirs: string[] = [];
  const mk = (p: string) => { const d = tmpDir(p); dirs.push(d); return d; };
  after(() => dirs.forEach(rmDir));

  it('follows .gitignore with negation and nested .gitignore files rooted at their folder', async () => {
    const root = mk('disc-gi');
    write(root, '.gitignore', '*.txt\n!keep.txt\n/rootonly.md\ntmp/\n');
    write(root, 'a.txt');
    write(root, 'keep.txt');
    write(root, 'rootonly.md');
    write(root, 'src/rootonly.md'); // '/rootonly.md' is anchored at the root
    write(root, 'src/main.ts', 'export const a = 1;\n');
    write(root, 'src/b.txt');
    write(root, 'tmp/x.ts');
    write(root, 'src/tmp/y.ts'); // 'tmp/' matches at any depth
    write(root, 'pkg/.gitignore', 'secret_*.ts\n!*.txt\n/local.ts\n');
    write(root, 'pkg/secret_a.ts');
    write(root, 'pkg/ok.ts');
    write(root, 'pkg/n.txt'); // re-included by the nested .gitignore
    write(root, 'pkg/local.ts'); // anchored at pkg/
    write(root, 'pkg/sub/local.ts'); // not anchored there
    assert.deepStrictEqual(await rels(root), [
      '.gitignore', 'keep.txt', 'pkg/.gitignore', 'pkg/n.txt', 'pkg/ok.ts', 'pkg/sub/local.ts', 'src/main.ts', 'src/rootonly.md',
    ]);
  });

  it('.mplusignore excludes more and re-includes gitignored paths', async () => {
    const root = mk('disc-mi');
    write(root, '.gitignore', 'generated/\n*.gen.ts\n');
    write(root, '.mplusignore', '# feed the generated API, not the docs\n!generated/\ndocs/\n!special.gen.ts\n');
    write(root, 'generated/api.ts', 'export {};\n');
    write(root, 'generated/deep/x.ts', 'export {};\n');
    write(root, 'a.gen.ts');
    write(root, 'special.gen.ts');
    write(root, 'docs/readme.md');
    write(root, 'src/a.ts');
    assert.deepStrictEqual(await rels(root), [
      '.gitignore', '.mplusignore', 'generated/api.ts', 'generated/deep/x.ts', 'special.gen.ts', 'src/a.ts',
    ]);
  });

  it('honours .git/info/exclude and nested .mplusignore files rooted at their folder', async () => {
    const root = mk('disc-nested-mi');
    write(root, '.git/info/exclude', 'scratch.ts\n');
    write(root, 'scratch.ts');
    write(root, 'lib/.gitignore', '*.out.ts\n');
    write(root, 'lib/.mplusignore', '!keep.out.ts\n/local/\n');
    write(root, 'lib/a.out.ts');
    write(root, 'lib/keep.out.ts');
    write(root, 'lib/local/x.ts');
    write(root, 'local/y.ts'); // '/local/' in lib/.mplusignore is anchored at lib/
    assert.deepStrictEqual(await rels(root), ['lib/.gitignore', 'lib/.mplusignore', 'lib/keep.out.ts', 'local/y.ts']);
  });

  it('applies user globs, which can also negate', async () => {
    const root = mk('disc-user');
    write(root, 'a.ts');
    write(root, 'b.spec.ts');
    write(root, 'keep.spec.ts');
    assert.deepStrictEqual(await rels(root, { userIgnore: ['*.spec.ts', '!keep.spec.ts', ''] }), ['a.ts', 'keep.spec.ts']);
  });

  it('never discovers secrets, even when .gitignore negates them; only an explicit .mplusignore rule re-includes', async () => {
    const root = mk('disc-secret');
    write(root, '.gitignore', '!.env\n!*.pem\n');
    write(root, '.env', 'API_KEY=sk-123\n');
    write(root, 'app/.env.production', 'X=1\n');
    write(root, 'server.pem', '-----BEGIN ' + 'PRIVATE KEY-----\n'); // split: this file is fed when the repository feeds itself
    write(root, 'id_rsa', 'key\n');
    write(root, '.npmrc', '//registry/:_authToken=abc\n');
    write(root, 'credentials.json', '{}\n');
    write(root, 'config/.env.example', 'X=\n');
    write(root, 'main.py', 'print(1)\n');
    const first = await discover([root]);
    const found = first.files.map((f) => f.rel).sort();
    assert.deepStrictEqual(found, ['.gitignore', 'main.py']);
    const reasons = new Map(first.skipped.map((s) => [path.relative(root, s.path), s.reason]));
    assert.strictEqual(reasons.get('.env'), 'secret');
    assert.strictEqual(reasons.get('server.pem'), 'secret');
    assert.strictEqual(reasons.get('.npmrc'), 'secret');
    // re-including the folder is not enough; naming the file is
    write(root, '.mplusignore', '!config/\n!config/.env.example\n');
    assert.deepStrictEqual(await rels(root), ['.gitignore', '.mplusignore', 'config/.env.example', 'main.py']);
  });

  it('built-in defaults skip dependency/build dirs, lock files and minified files; .mplusignore can bring a dir back', async () => {
    const root = mk('disc-def');
    write(root, 'node_modules/x/index.js', 'module.exports = 1;\n');
    write(root, 'a/node_modules/y/index.js', 'module.exports = 1;\n');
    write(root, '.git/HEAD', 'ref: refs/heads/main\n');
    write(root, 'dist/app.js', 'x\n');
    write(root, 'target/debug/a.rs', 'x\n');
    write(root, '__pycache__/m.cpython-311.pyc', 'x\n');
    write(root, 'package-lock.json', '{}\n');
    write(root, 'Cargo.lock', '\n');
    write(root, 'web/app.min.js', 'x\n');
    write(root, 'web/app.js', 'x\n');
    write(root, '.gitignore', '!*/\n'); // a .gitignore cannot re-open node_modules
    assert.deepStrictEqual(await rels(root), ['.gitignore', 'web/app.js']);
    write(root, '.mplusignore', '!dist/\n');
    assert.deepStrictEqual(await rels(root), ['.gitignore', '.mplusignore', 'dist/app.js', 'web/app.js']);
  });

  it('sniffs binaries by content (NUL byte in a .txt) and by extension; minified and generated by content', async () => {
    const root = mk('disc-bin');
    write(root, 'data.txt', Buffer.from([0x68, 0x69, 0x00, 0x01, 0x02, 0x0a]));
    write(root, 'latin1.txt', Buffer.from(Array.from({ length: 400 }, (_, i) => 0x80 + (i % 100))));
    write(root, 'utf8.txt', 'héllo wörld — ünïcode ✓\n'.repeat(20));
    write(root, 'image.png', 'not really a png\n');
    write(root, 'bundle.js', 'var a=1;'.repeat(1500)); // one 12 000-char line
    write(root, 'gen.go', '// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n');
    write(root, 'ok.go', 'package x\n');
    write(root, 'empty.ts', '');
    const r = await discover([root]);
    assert.deepStrictEqual(r.files.map((f) => f.rel).sort(), ['empty.ts', 'ok.go', 'utf8.txt']);
    const reasons = Object.fromEntries(r.skipped.map((s) => [path.basename(s.path), s.reason]));
    assert.strictEqual(reasons['data.txt'], 'binary');
    assert.strictEqual(reasons['latin1.txt'], 'binary');
    assert.strictEqual(reasons['image.png'], 'binary');
    assert.strictEqual(reasons['bundle.js'], 'minified');
    assert.strictEqual(reasons['gen.go'], 'generated');
    // a multi-byte character cut at the sample end is not "invalid"
    const b = Buffer.from('abcdefghi\n'.repeat(820).slice(0, 8191) + 'é', 'utf8');
    assert.strictEqual(sniffContent(b, false), 'text');
  });

  it('caps file size, file count and total bytes', async () => {
    const root = mk('disc-cap');
    write(root, 'big.ts', 'x'.repeat(100) + '\n' + 'y\n'.repeat(600));
    write(root, 'a.ts', 'a\n');
    write(root, 'b.ts', 'b\n');
    write(root, 'c.ts', 'c\n');
    const r = await discover([root], { maxFileBytes: 1000 });
    assert.deepStrictEqual(r.files.map((f) => f.rel), ['a.ts', 'b.ts', 'c.ts']);
    assert.strictEqual(r.skipped.find((s) => s.path.endsWith('big.ts'))?.reason, 'too-large');
    assert.strictEqual(r.truncated, false);
    const logs: string[] = [];
    const r2 = await discover([root], { maxFileBytes: 1000, maxFiles: 2, onLog: (_l, m) => logs.push(m) });
    assert.deepStrictEqual(r2.files.map((f) => f.rel), ['a.ts', 'b.ts']);
    assert.strictEqual(r2.truncated, true);
    assert.ok(logs.some((m) => /stopped/.test(m)), logs.join('\n'));
    const r3 = await discover([root], { maxBytes: 5 });
    assert.deepStrictEqual(r3.files.map((f) => f.rel), ['a.ts', 'b.ts']);
    assert.strictEqual(r3.truncated, true);
    // sizes and mtimes are real
    assert.strictEqual(r.files[0].size, 2);
    assert.ok(Math.abs(r.files[0].mtimeMs - fs.statSync(path.join(root, 'a.ts')).mtimeMs) < 1);
    assert.strictEqual(r.files[0].abs, path.join(root, 'a.ts'));
    assert.strictEqual(r.files[0].root, root);
  });

  it('skips symlink loops with a log line, follows links inside the root once, skips links out of it', async () => {
    const root = mk('disc-link');
    const outside = mk('disc-link-out');
    write(outside, 'o.ts', 'export {};\n');
    write(root, 'a/b/file.ts', 'export {};\n');
    fs.symlinkSync(path.join(root, 'a'), path.join(root, 'a', 'b', 'loop'));
    fs.symlinkSync(root, path.join(root, 'self'));
    fs.symlinkSync(outside, path.join(root, 'out-link'));
    fs.symlinkSync(path.join(root, 'a', 'b', 'file.ts'), path.join(root, 'alias.ts'));
    fs.symlinkSync(path.join(root, 'missing.ts'), path.join(root, 'dangling.ts'));
    const logs: string[] = [];
    const r = await discover([root], { onLog: (l, m) => logs.push(`${l}: ${m}`) });
    assert.deepStrictEqual(r.files.map((f) => f.rel), ['a/b/file.ts']);
    const reasons = Object.fromEntries(r.skipped.map((s) => [path.relative(root, s.path), s.reason]));
    assert.strictEqual(reasons['a/b/loop'], 'symlink-loop');
    assert.strictEqual(reasons['self'], 'symlink-loop');
    assert.strictEqual(reasons['out-link'], 'symlink-outside-root');
    assert.strictEqual(reasons['alias.ts'], 'duplicate-file');
    assert.strictEqual(reasons['dangling.ts'], 'broken-symlink');
    assert.ok(logs.some((m) => m.startsWith('warn') && m.includes('symlink-loop')), logs.join('\n'));
  });

  it('skips unreadable files with a warning', async function () {
    if (process.getuid?.() === 0) this.skip(); // root reads everything
    const root = mk('disc-perm');
    write(root, 'ok.ts', 'x\n');
    const bad = write(root, 'bad.ts', 'x\n');
    fs.chmodSync(bad, 0o000);
    const logs: string[] = [];
    const r = await discover([root], { onLog: (l, m) => logs.push(`${l}: ${m}`) });
    assert.deepStrictEqual(r.files.map((f) => f.rel), ['ok.ts']);
    assert.ok(logs.some((m) => m.startsWith('warn') && m.includes('bad.ts')));
  });

  it('skips FIFOs and other special files without blocking', async function () {
    const root = mk('disc-fifo');
    write(root, 'ok.ts', 'x\n');
    const { execFileSync } = await import('child_process');
    try { execFileSync('mkfifo', [path.join(root, 'pipe.txt')]); } catch { this.skip(); }
    const r = await discover([root]);
    assert.deepStrictEqual(r.files.map((f) => f.rel), ['ok.ts']);
    assert.strictEqual(r.skipped.find((s) => s.path.endsWith('pipe.txt'))?.reason, 'not-a-regular-file');
  });

  it('walks several roots, each file once', async () => {
    const a = mk('disc-ra');
    const b = mk('disc-rb');
    write(a, 'x.ts');
    write(b, 'y.ts');
    write(a, 'nested/z.ts');
    const r = await discover([a, b, path.join(a, 'nested')]);
    assert.deepStrictEqual(r.files.map((f) => [f.root, f.rel]), [[a, 'x.ts'], [a, 'nested/z.ts'], [b, 'y.ts']]);
  });

  it('createIgnoreMatcher answers for abs paths (ancestors included) and reloads after an ignore file changes', () => {
    const root = mk('disc-matcher');
    write(root, '.gitignore', 'logs/\n');
    write(root, 'logs/a.txt');
    write(root, 'src/a.ts');
    const m = createIgnoreMatcher(root);
    assert.strictEqual(m.isIgnored(path.join(root, 'logs')), true);
    assert.strictEqual(m.isIgnored(path.join(root, 'logs', 'a.txt')), true);
    assert.strictEqual(m.isIgnored(path.join(root, 'node_modules', 'p', 'i.js')), true);
    assert.strictEqual(m.isIgnored(path.join(root, 'src', 'a.ts')), false);
    assert.strictEqual(m.isIgnored(path.join(root, '.env')), true);
    assert.strictEqual(m.isIgnored(root), false);
    assert.strictEqual(m.isIgnored(path.join(path.dirname(root), 'elsewhere.ts')), true);
    fs.writeFileSync(path.join(root, '.gitignore'), 'src/\n');
    assert.strictEqual(m.isIgnored(path.join(root, 'logs', 'a.txt')), true, 'cached until reload');
    m.reload();
    assert.strictEqual(m.isIgnored(path.join(root, 'logs', 'a.txt')), false);
    assert.strictEqual(m.isIgnored(path.join(root, 'src', 'a.ts')), true);
  });
});
