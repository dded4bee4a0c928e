/**
 * `initialize.precision` and the CLI's `--precision`: the real sidecar runs the model with int8
 * weights (quantized into the cache outside the checkpoint, then reused), answers, and says so in
 * its log; a precision it does not know is refused by name, by the sidecar and by the CLI.
 */
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ask, Ingest, Log, Precision } from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { REPO_ROOT } from '../helpers/tmp';

describe('sidecar: weights at a chosen precision', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('sidecar-precision', { model: { preset: 'small', seed: 3 }, repo: 4 });
  let cache: string;
  before(() => (cache = ws.fresh('quant-cache')));

  async function session(store: string, precision: unknown) {
    const logs: string[] = [];
    const h = spawnSidecar({ env: { MPLUS_QUANT_CACHE: cache }, onStderr: () => undefined });
    h.connection.onNotification(Log, (p) => void logs.push(p.message));
    try {
      // An unknown value on purpose in the refusal test: the wire carries whatever a client sends.
      await initialize(h.connection, { modelDir: ws.model, storeDir: store, device: 'cpu', workspaceFolders: [ws.repo], watch: false, seed: 1, precision: precision as Precision });
      const fed = await h.connection.sendRequest(Ingest, { paths: 'all' });
      const ask = await h.connection.sendRequest(Ask, { question: 'What does this repository do?', maxTokens: 3 });
      await shutdown(h);
      return { fed, ask, logs };
    } finally {
      h.process.kill('SIGKILL');
    }
  }

  it('int8: quantized once into the cache outside the model, reused, and the model answers', async () => {
    const first = await session(path.join(ws.root, 'store-a'), 'int8');
    assert.ok(first.fed.chunksInjected > 0);
    assert.ok(first.ask.tokens > 0, 'an answer was generated');
    assert.ok(first.logs.some((m) => /linear layers at int8/.test(m)), first.logs.join('\n'));
    const files = () => fs.readdirSync(cache, { recursive: true }).map(String).filter((f) => !fs.statSync(path.join(cache, f)).isDirectory());
    const built = files().map((f) => [f, fs.statSync(path.join(cache, f)).mtimeMs] as const);
    assert.ok(built.length > 0, 'the quantized weights were cached');
    assert.ok(!fs.readdirSync(ws.model).some((f) => /quant/i.test(f)), 'nothing written into the checkpoint folder');
    await session(path.join(ws.root, 'store-b'), 'int8');
    assert.deepStrictEqual(files().map((f) => [f, fs.statSync(path.join(cache, f)).mtimeMs]), built, 'the second start reused the cache');
  });

  it('an unknown precision is refused by name, by the sidecar and by the CLI', async () => {
    await assert.rejects(session(path.join(ws.root, 'store-c'), 'int3'), (e: unknown) =>
      e instanceof ResponseError && e.code === -32602 && /precision.*f32, bf16, int8, int4.*int3/.test(e.message));
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'mplus.js'), 'status', '--model', ws.model, '--precision', 'int3', ws.repo], { encoding: 'utf8' });
    assert.strictEqual(r.status, 2, r.stderr);
    assert.match(r.stderr, /--precision must be f32, bf16, int8, int4, got int3/);
  });
});
