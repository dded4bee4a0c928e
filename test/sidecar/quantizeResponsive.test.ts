/**
 * Quantizing a checkpoint at load takes minutes at full size; it runs in a worker thread, so the
 * sidecar keeps answering meanwhile: a status request sent while the quantized-weights cache is
 * being written is answered (NotInitialized, saying what the start is doing) before "initialize"
 * answers, and the quantization's progress arrives as log lines; a shutdown meanwhile stops the
 * quantization instead of waiting for it. On the small fixture quantizing to int8 takes seconds,
 * long enough to ask in the middle of it.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { ErrorCodes, Log, Status } from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

describe('sidecar: quantization off the event loop', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('quant-responsive', { model: { preset: 'small', seed: 6 }, repo: 0 });

  const cacheFiles = (cache: string) => fs.readdirSync(cache, { recursive: true }).map(String).filter((f) => !fs.statSync(path.join(cache, f)).isDirectory());
  const writing = (cache: string) => cacheFiles(cache).some((f) => f.includes('.tmp-'));

  /** Starts a sidecar at int8 with an empty cache; resolves once the cache is being written. */
  async function startQuantizing() {
    const cache = ws.fresh('quant-cache');
    const logs: string[] = [];
    const h = spawnSidecar({ env: { MPLUS_QUANT_CACHE: cache }, onStderr: () => undefined });
    h.connection.onNotification(Log, (p) => void logs.push(p.message));
    let initAt = 0;
    const init = initialize(h.connection, { modelDir: ws.model, storeDir: ws.fresh('store'), device: 'cpu', workspaceFolders: [ws.repo], watch: false, seed: 1, precision: 'int8' })
      .then((r) => ((initAt = performance.now()), r));
    init.catch(() => undefined); // the shutdown test expects it to fail
    // The cache's temporary file appears when quantizing starts (this process's loop is free to look).
    const t0 = Date.now();
    while (!writing(cache)) {
      assert.ok(Date.now() - t0 < 120000, 'quantization never started');
      await new Promise((r) => setTimeout(r, 10));
    }
    return { h, cache, logs, init, initAt: () => initAt };
  }

  it('answers status while it quantizes, and reports progress', async () => {
    const { h, cache, logs, init, initAt } = await startQuantizing();
    try {
      let statusAt = 0;
      await assert.rejects(h.connection.sendRequest(Status).finally(() => (statusAt = performance.now())), (e: unknown) =>
        e instanceof ResponseError && e.code === ErrorCodes.NotInitialized && /starting \(quantizing/.test(e.message));
      assert.ok(writing(cache), 'answered while the cache was still being written');
      await init;
      assert.ok(statusAt > 0 && statusAt < initAt(), 'status was answered before initialize');
      assert.ok(logs.some((m) => /^quantizing to int8: \d+ of \d+ weights$/.test(m)), logs.join('\n'));
      assert.ok(logs.some((m) => /linear layers at int8/.test(m)));
      const st = await h.connection.sendRequest(Status);
      assert.notStrictEqual(st.state, 'error');
      await shutdown(h);
    } finally {
      h.process.kill('SIGKILL');
    }
  });

  it('a shutdown while quantizing stops it: the sidecar exits, leaving no cache and no temporary file', async () => {
    const { h, cache, init } = await startQuantizing();
    try {
      await shutdown(h);
      await assert.rejects(init);
      assert.strictEqual(h.process.exitCode, 0);
      assert.deepStrictEqual(cacheFiles(cache), [], 'nothing written under the cache: the build stopped and its temporary file went');
    } finally {
      h.process.kill('SIGKILL');
    }
  });
});
