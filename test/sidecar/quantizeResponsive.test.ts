/**
 * Quantizing a checkpoint at load takes minutes at full size; it runs in a worker thread, so the
 * sidecar keeps answering meanwhile: a status request sent while the quantized-weights cache is
 * being written is answered (NotInitialized, saying what the start is doing) before "initialize"
 * answers, and the quantization's progress arrives as log lines. On the small fixture quantizing
 * to int8 takes seconds, long enough to ask in the middle of it.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { ResponseError } from 'vscode-jsonrpc/node';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { ErrorCodes, Log, Status } from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

describe('sidecar: quantization off the event loop', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('quant-responsive', { model: { preset: 'small', seed: 6 }, repo: 0 });

  it('answers status while it quantizes, and reports progress', async () => {
    const cache = ws.fresh('quant-cache');
    const logs: string[] = [];
    const h = spawnSidecar({ env: { MPLUS_QUANT_CACHE: cache }, onStderr: () => undefined });
    h.connection.onNotification(Log, (p) => void logs.push(p.message));
    try {
      let initAt = 0;
      const init = initialize(h.connection, { modelDir: ws.model, storeDir: ws.fresh('store'), device: 'cpu', workspaceFolders: [ws.repo], watch: false, seed: 1, precision: 'int8' })
        .then((r) => ((initAt = performance.now()), r));
      // The cache's temporary file appears when quantizing starts (this process's loop is free to look).
      const writing = () => fs.readdirSync(cache, { recursive: true }).map(String).some((f) => f.includes('.tmp-'));
      const t0 = Date.now();
      while (!writing()) {
        assert.ok(Date.now() - t0 < 120000, 'quantization never started');
        await new Promise((r) => setTimeout(r, 10));
      }
      let statusAt = 0;
      await assert.rejects(h.connection.sendRequest(Status).finally(() => (statusAt = performance.now())), (e: unknown) =>
        e instanceof ResponseError && e.code === ErrorCodes.NotInitialized && /starting \(quantizing/.test(e.message));
      assert.ok(writing(), 'answered while the cache was still being written');
      await init;
      assert.ok(statusAt > 0 && statusAt < initAt, 'status was answered before initialize');
      assert.ok(logs.some((m) => /^quantizing to int8: \d+ of \d+ weights$/.test(m)), logs.join('\n'));
      assert.ok(logs.some((m) => /linear layers at int8/.test(m)));
      const st = await h.connection.sendRequest(Status);
      assert.notStrictEqual(st.state, 'error');
      await shutdown(h);
    } finally {
      h.process.kill('SIGKILL');
    }
  });
});
