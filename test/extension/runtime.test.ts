/** The sidecar runtime check (src/extension/runtime.ts) against real binaries and scripts. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { RuntimeError, resolveRuntime } from '../../src/extension/runtime';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('sidecar runtime check', () => {
  let dir: string;
  before(() => (dir = tmpDir('runtime')));
  after(() => rmDir(dir));

  const script = (name: string, body: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return f;
  };

  it('empty nodePath: the editor runtime as Node', async () => {
    const r = await resolveRuntime('');
    assert.strictEqual(r.execPath, process.execPath);
    assert.strictEqual(r.env.ELECTRON_RUN_AS_NODE, '1');
  });

  it('a real Node binary is accepted with its version', async () => {
    const r = await resolveRuntime(process.execPath);
    assert.strictEqual(r.execPath, process.execPath);
    assert.match(r.description, new RegExp(`Node ${process.versions.node}`));
  });

  it('missing, a folder, not Node, too old: one clear error naming the setting and the fix', async () => {
    const fix = /mplus\.nodePath .*(set mplus\.nodePath to a Node\.js ≥ 20 binary|clear it)/;
    await assert.rejects(resolveRuntime(path.join(dir, 'nope')), (e: Error) => e instanceof RuntimeError && /does not exist/.test(e.message) && fix.test(e.message));
    await assert.rejects(resolveRuntime(dir), (e: Error) => e instanceof RuntimeError && /is not a file/.test(e.message));
    await assert.rejects(resolveRuntime(script('fails', 'exit 3')), (e: Error) => e instanceof RuntimeError && /does not run as Node\.js/.test(e.message));
    await assert.rejects(resolveRuntime(script('python', 'echo Python 3.11')), (e: Error) => e instanceof RuntimeError && /instead of a Node\.js version/.test(e.message));
    await assert.rejects(resolveRuntime(script('old', 'echo 16.20.2')), (e: Error) => e instanceof RuntimeError && /is Node 16\.20\.2, M\+ needs 20 or newer/.test(e.message));
    const notExec = path.join(dir, 'plain');
    fs.writeFileSync(notExec, 'x');
    await assert.rejects(resolveRuntime(notExec), (e: Error) => e instanceof RuntimeError && /does not run/.test(e.message));
  });
});
