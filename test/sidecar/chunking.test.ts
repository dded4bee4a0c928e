/**
 * The feeder chunks to the checkpoint's own budget (chunking.json, src/model/chunking.ts): a model
 * trained on short byte-measured chunks is fed exactly such chunks, through the real sidecar; a
 * malformed file stops the start with its name.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CHUNKING_FILE } from '../../src/model/chunking';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ingest } from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

describe('sidecar: the checkpoint\'s chunking', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('chunking', { model: { preset: 'small', seed: 3 }, repo: 0 });
  const write = (dir: string, text: string) => fs.writeFileSync(path.join(dir, CHUNKING_FILE), text);

  it('the sidecar feeds a checkpoint\'s own chunk sizes, and refuses to start on a malformed file', async () => {
    const fed = async (model: string) => {
      const feedLog = path.join(ws.fresh('log'), 'feed.jsonl');
      const h = spawnSidecar({ env: { MPLUS_FEED_LOG: feedLog } });
      try {
        await initialize(h.connection, { modelDir: model, storeDir: ws.fresh('store'), device: 'cpu', workspaceFolders: [ws.repo], seed: 1, watch: false });
        await h.connection.sendRequest(Ingest, { paths: 'all' });
        await shutdown(h);
      } finally {
        h.process.kill('SIGKILL');
      }
      return fs.readFileSync(feedLog, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    };
    const byTokens = await fed(ws.model);
    const bytesModel = ws.fresh('bytes-model');
    for (const f of fs.readdirSync(ws.model)) fs.copyFileSync(path.join(ws.model, f), path.join(bytesModel, f));
    write(bytesModel, '{"unit": "bytes", "max": 160, "min": 40}');
    const byBytes = await fed(bytesModel);
    const longest = (xs: string[]) => Math.max(...xs.map((t) => Buffer.byteLength(t, 'utf8')));
    assert.ok(longest(byTokens) > 160, `the default budget makes longer chunks (${longest(byTokens)} bytes)`);
    assert.ok(longest(byBytes) <= 160, `every chunk within 160 bytes (longest ${longest(byBytes)})`);
    assert.ok(byBytes.length > byTokens.length, `more, smaller chunks (${byBytes.length} vs ${byTokens.length})`);

    write(bytesModel, '{"unit": "bytes"}');
    const h = spawnSidecar();
    try {
      await assert.rejects(
        initialize(h.connection, { modelDir: bytesModel, storeDir: ws.fresh('store'), device: 'cpu', workspaceFolders: [ws.repo], seed: 1, watch: false }),
        (e: Error) => e.message.includes(CHUNKING_FILE) && /"max" must be/.test(e.message));
    } finally {
      h.process.kill('SIGKILL');
    }
  });
});
