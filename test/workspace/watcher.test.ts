import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { MultiRootIgnoreMatcher } from '../../src/workspace/ignore';
import { ChangeBatch, WorkspaceWatcher } from '../../src/workspace/watcher';
import { rmDir, tmpDir } from '../helpers/tmp';

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const backend of ['chokidar', 'dirs'] as const) describe(`workspace/watcher (${backend})`, function () {
  this.timeout(30000);
  let root: string;
  let w: WorkspaceWatcher | undefined;
  let batches: ChangeBatch[];
  let errors: Error[];
  let matcher: MultiRootIgnoreMatcher;

  beforeEach(async () => {
    root = tmpDir('watch');
    fs.mkdirSync(path.join(root, 'src'));
    fs.mkdirSync(path.join(root, 'node_modules', 'dep'), { recursive: true });
    fs.writeFileSync(path.join(root, 'node_modules', 'dep', 'index.js'), 'x\n');
    fs.writeFileSync(path.join(root, '.gitignore'), 'logs/\n');
    fs.mkdirSync(path.join(root, 'logs'));
    fs.writeFileSync(path.join(root, 'src', 'a.ts'), 'export const a = 1;\n');
    batches = [];
    errors = [];
    matcher = new MultiRootIgnoreMatcher([root]);
    w = await WorkspaceWatcher.start([root], {
      debounceMs: 150,
      backend,
      isIgnored: matcher.isIgnored,
      onBatch: (b) => batches.push(b),
      onError: (e) => errors.push(e),
    });
  });

  afterEach(async () => {
    await w?.close();
    w = undefined;
    rmDir(root);
  });

  const all = (k: 'changed' | 'deleted') => new Set(batches.flatMap((b) => b[k]));

  it('reports create, change, delete and rename as debounced batches of abs paths', async () => {
    const b = path.join(root, 'src', 'b.ts');
    fs.writeFileSync(b, 'export const b = 1;\n');
    await waitFor(() => all('changed').has(b), 5000, 'create');
    assert.deepStrictEqual(batches[0], { changed: [b], deleted: [], deletedDirs: [], ignoreFilesChanged: false });

    batches.length = 0;
    fs.writeFileSync(path.join(root, 'src', 'a.ts'), 'export const a = 2;\n');
    await waitFor(() => all('changed').has(path.join(root, 'src', 'a.ts')), 5000, 'change');

    batches.length = 0;
    fs.unlinkSync(b);
    await waitFor(() => all('deleted').has(b), 5000, 'delete');
    assert.deepStrictEqual(batches.flatMap((x) => x.changed), []);

    batches.length = 0;
    const a = path.join(root, 'src', 'a.ts');
    const renamed = path.join(root, 'src', 'renamed.ts');
    fs.renameSync(a, renamed);
    await waitFor(() => all('deleted').has(a) && all('changed').has(renamed), 5000, 'rename');
    assert.ok(!all('changed').has(a));
    assert.ok(!all('deleted').has(renamed));
    assert.deepStrictEqual(errors, []);
  });

  it('coalesces a burst of 1000 writes into few batches, each path once', async () => {
    const dir = path.join(root, 'src', 'burst');
    fs.mkdirSync(dir);
    const want: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const p = path.join(dir, `f${i}.ts`);
      fs.writeFileSync(p, `export const v = ${i};\n`);
      want.push(p);
    }
    await waitFor(() => want.every((p) => all('changed').has(p)), 20000, 'all 1000 files');
    await sleep(400);
    assert.ok(batches.length <= 5, `${batches.length} batches`); // without debouncing: ~1000
    const flat = batches.flatMap((b) => b.changed);
    assert.strictEqual(new Set(flat).size, flat.length, 'each path once');
    assert.strictEqual(flat.filter((p) => p.startsWith(dir + path.sep)).length, 1000);
  });

  it('never reports (nor watches) ignored dirs; flags ignore-file changes', async () => {
    fs.writeFileSync(path.join(root, 'node_modules', 'dep', 'index.js'), 'y\n');
    fs.mkdirSync(path.join(root, 'node_modules', 'new'));
    fs.writeFileSync(path.join(root, 'node_modules', 'new', 'x.js'), 'x\n');
    fs.writeFileSync(path.join(root, 'logs', 'today.log'), 'x\n');
    fs.writeFileSync(path.join(root, '.env'), 'SECRET=1\n');
    const marker = path.join(root, 'src', 'marker.ts');
    fs.writeFileSync(marker, 'x\n');
    await waitFor(() => all('changed').has(marker), 5000, 'marker');
    await sleep(300);
    const reported = [...all('changed'), ...all('deleted')];
    assert.deepStrictEqual(reported.filter((p) => p.includes('node_modules') || p.includes(`${path.sep}logs`) || p.endsWith('.env')), []);
    const watched = (w as WorkspaceWatcher).watchedDirs();
    assert.ok(!watched.some((d) => d.includes('node_modules')), watched.join('\n'));
    assert.ok(watched.includes(path.join(root, 'src')));

    batches.length = 0;
    fs.writeFileSync(path.join(root, '.gitignore'), 'logs/\nsrc/\n');
    await waitFor(() => batches.some((b) => b.ignoreFilesChanged), 5000, 'ignore file change');
    assert.ok(all('changed').has(path.join(root, '.gitignore')));
  });

  it('reports a deleted directory and its files', async () => {
    const d = path.join(root, 'src', 'sub');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'x.ts'), 'x\n');
    await waitFor(() => all('changed').has(path.join(d, 'x.ts')), 5000, 'x.ts');
    batches.length = 0;
    fs.rmSync(d, { recursive: true });
    await waitFor(() => batches.some((b) => b.deletedDirs.includes(d)), 5000, 'dir deletion');
    await sleep(200);
    assert.ok(all('deleted').has(path.join(d, 'x.ts')));
  });

  it('picks up a new folder tree and its files, not a new ignored folder', async () => {
    const deep = path.join(root, 'src', 'new', 'deeper');
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'n.ts'), 'x\n');
    fs.mkdirSync(path.join(root, 'src', 'node_modules', 'p'), { recursive: true });
    fs.writeFileSync(path.join(root, 'src', 'node_modules', 'p', 'i.js'), 'x\n');
    await waitFor(() => all('changed').has(path.join(deep, 'n.ts')), 5000, 'new deep file');
    await sleep(100);
    fs.writeFileSync(path.join(deep, 'm.ts'), 'x\n');
    await waitFor(() => all('changed').has(path.join(deep, 'm.ts')), 5000, 'file in new dir');
    assert.deepStrictEqual([...all('changed')].filter((p) => p.includes('node_modules')), []);
    assert.ok(!(w as WorkspaceWatcher).watchedDirs().some((d) => d.includes('node_modules')));
  });

  it('a renamed folder arrives as its old files deleted and its new files changed; an atomic save as changed', async () => {
    const from = path.join(root, 'src', 'old');
    fs.mkdirSync(from);
    fs.writeFileSync(path.join(from, 'k.ts'), 'x\n');
    await waitFor(() => all('changed').has(path.join(from, 'k.ts')), 5000, 'k.ts');
    await sleep(250);
    batches.length = 0;
    const to = path.join(root, 'src', 'new');
    fs.renameSync(from, to);
    await waitFor(() => all('deleted').has(path.join(from, 'k.ts')) && all('changed').has(path.join(to, 'k.ts')), 5000, 'dir rename');
    batches.length = 0;
    const target = path.join(to, 'k.ts');
    fs.writeFileSync(path.join(to, '.k.ts.tmp'), 'y\n');
    fs.renameSync(path.join(to, '.k.ts.tmp'), target);
    await waitFor(() => all('changed').has(target), 5000, 'atomic save');
    await sleep(250);
    assert.ok(!all('deleted').has(target));
  });

  it('refresh() after an ignore-file change watches re-included folders and drops newly ignored ones', async () => {
    assert.ok(!(w as WorkspaceWatcher).watchedDirs().includes(path.join(root, 'logs')));
    fs.writeFileSync(path.join(root, '.gitignore'), 'src/\n');
    await waitFor(() => batches.some((b) => b.ignoreFilesChanged), 5000, 'ignore file change');
    matcher.reload();
    await (w as WorkspaceWatcher).refresh();
    const dirs = (w as WorkspaceWatcher).watchedDirs();
    assert.ok(dirs.includes(path.join(root, 'logs')), dirs.join('\n'));
    assert.ok(!dirs.includes(path.join(root, 'src')), dirs.join('\n'));
    batches.length = 0;
    fs.writeFileSync(path.join(root, 'logs', 'now.txt'), 'x\n');
    fs.writeFileSync(path.join(root, 'src', 'hidden.ts'), 'x\n');
    await waitFor(() => all('changed').has(path.join(root, 'logs', 'now.txt')), 5000, 'file in re-included folder');
    await sleep(250);
    assert.ok(!all('changed').has(path.join(root, 'src', 'hidden.ts')));
  });

  it('close() stops reporting', async () => {
    await w?.close();
    fs.writeFileSync(path.join(root, 'src', 'late.ts'), 'x\n');
    await sleep(400);
    assert.deepStrictEqual(batches, []);
  });
});
