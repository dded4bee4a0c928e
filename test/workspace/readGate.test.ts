/**
 * The read gate (src/workspace/readGate.ts) on real files: every rule applied to the file actually
 * opened — symlinks out of the root, swaps, FIFOs, size, NUL anywhere, secrets by name and by
 * content, and the one escape hatch (a `.mplusignore` rule naming the file).
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ReadGate } from '../../src/workspace/readGate';
import { findSecret } from '../../src/workspace/secrets';
import { REPO_ROOT, rmDir, tmpDir } from '../helpers/tmp';
import { LOOKALIKES, SAMPLES } from './secretSamples';

describe('read gate', () => {
  let root: string;
  let outside: string;
  const write = (rel: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  };
  beforeEach(() => {
    root = tmpDir('gate-root');
    outside = tmpDir('gate-outside');
    fs.writeFileSync(path.join(outside, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  });
  afterEach(() => [root, outside].forEach(rmDir));

  it('reads a text file; refuses what left the rules since discovery', () => {
    write('a.ts', 'export const a = 1;\n');
    const g = new ReadGate([root], { maxFileBytes: 64 * 1024 });
    const ok = g.read(path.join(root, 'a.ts'));
    assert.ok(ok.ok && ok.text === 'export const a = 1;\n' && ok.size === 20);
    // swapped for a symlink out of the root (the /etc/passwd attack)
    fs.rmSync(path.join(root, 'a.ts'));
    fs.symlinkSync(path.join(outside, 'passwd'), path.join(root, 'a.ts'));
    assert.deepStrictEqual(g.read(path.join(root, 'a.ts')), { ok: false, reason: 'outside-roots', detail: `-> ${fs.realpathSync(path.join(outside, 'passwd'))}` });
    // a symlink inside the root to a secret by name
    write('.env', 'X=1\n');
    fs.symlinkSync(path.join(root, '.env'), path.join(root, 'notes.md'));
    assert.strictEqual((g.read(path.join(root, 'notes.md')) as { reason: string }).reason, 'secret');
    // NUL far past the sniffed head
    write('b.txt', Buffer.concat([Buffer.from('x'.repeat(9000)), Buffer.from([0]), Buffer.from('tail\n')]));
    assert.deepStrictEqual(g.read(path.join(root, 'b.txt')), { ok: false, reason: 'binary', detail: 'NUL byte at offset 9000' });
    // grown past the size limit
    write('c.txt', 'y\n'.repeat(40000));
    assert.strictEqual((g.read(path.join(root, 'c.txt')) as { reason: string }).reason, 'too-large');
    // a FIFO: refused at once, never a blocking read
    execFileSync('mkfifo', [path.join(root, 'pipe.txt')]);
    assert.strictEqual((g.read(path.join(root, 'pipe.txt')) as { reason: string }).reason, 'not-a-regular-file');
    // gone, and outside every root
    assert.strictEqual((g.read(path.join(root, 'missing.ts')) as { reason: string }).reason, 'gone');
    assert.strictEqual((g.read(path.join(outside, 'passwd')) as { reason: string }).reason, 'outside-roots');
    // ignored by the path rules (a .gitignore written since)
    write('gen/x.ts', 'export {};\n');
    write('.gitignore', 'gen/\n');
    g.reload();
    assert.strictEqual((g.read(path.join(root, 'gen/x.ts')) as { reason: string }).reason, 'ignored');
  });

  it('secrets by content under any name; only a .mplusignore rule naming the file re-includes one', () => {
    for (const [rel, text] of Object.entries(SAMPLES)) write(rel, text);
    for (const [rel, text] of Object.entries(LOOKALIKES)) write(rel, text);
    const g = new ReadGate([root]);
    for (const rel of Object.keys(SAMPLES)) {
      const r = g.read(path.join(root, rel));
      assert.ok(!r.ok && r.reason === 'secret-content' && r.detail.includes(`!${rel}`), `${rel}: ${JSON.stringify(r)}`);
    }
    for (const rel of Object.keys(LOOKALIKES)) assert.ok(g.read(path.join(root, rel)).ok, `${rel} is not a secret`);
    write('.mplusignore', '!deploy_key.txt\ncerts/\n');
    g.reload();
    assert.ok(g.read(path.join(root, 'deploy_key.txt')).ok, 'named by .mplusignore: fed');
    assert.ok(!g.read(path.join(root, 'docker/config.json')).ok, 'still kept out');
  });

  it("this repository's own sources hold no secret by content", () => {
    const files = ['src/workspace/secrets.ts', 'src/workspace/readGate.ts', 'test/workspace/secretSamples.ts', 'test/workspace/readGate.test.ts', 'test/helpers/fixtureRepo.ts'];
    for (const f of files) assert.strictEqual(findSecret(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')), null, f);
  });
});
