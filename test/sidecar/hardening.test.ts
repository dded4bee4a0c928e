/**
 * Hostile input and dead clients against the real sidecar process (small fixture model): a client
 * that dies mid-work never leaves the sidecar running or the store locked; framing errors are
 * answered or logged and the connection closes cleanly; `shutdown` replies before the exit.
 */
import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { writeFixture } from '../../src/model/fixture';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { ErrorCodes, Ingest, InitializeParams, Shutdown, Status } from '../../src/sidecar/protocol';
import { gone, killIfAlive, waitGone } from '../helpers/procs';
import { rmDir, tmpDir } from '../helpers/tmp';
import { writeFixtureRepo } from './fixtureRepo';

describe('sidecar hardening (real processes)', function () {
  this.timeout(300000);
  let model: string;
  let repo: string;
  let store: string;
  let params: Omit<InitializeParams, 'protocolVersion'>;
  const cleanup: string[] = [];

  before(() => {
    model = tmpDir('hard-model');
    writeFixture({ out: model, preset: 'small', seed: 3, dtype: 'f32' });
    cleanup.push(model);
  });
  beforeEach(() => {
    repo = tmpDir('hard-repo');
    store = tmpDir('hard-store');
    cleanup.push(repo, store);
    writeFixtureRepo(repo, 40);
    params = { modelDir: model, storeDir: store, device: 'cpu', workspaceFolders: [repo], seed: 1, watch: false };
  });
  after(() => cleanup.forEach(rmDir));

  /** Starts deadClient.js, waits until its sidecar is busy, SIGKILLs the client; returns the sidecar pid. */
  async function killClientWhileBusy(what: 'ingest' | 'ask'): Promise<number> {
    const client = spawn(process.execPath, [path.join(__dirname, 'deadClient.js'), JSON.stringify(params), what], {
      env: { ...process.env, MPLUS_COMMIT_EVERY: '4' }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    client.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const end = Date.now() + 120000;
    while (!/\bbusy\b/.test(out)) {
      if (client.exitCode !== null || Date.now() > end) assert.fail(`the client did not get busy: ${out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const pid = Number(/sidecar (\d+)/.exec(out)![1]);
    client.kill('SIGKILL');
    await new Promise((r) => client.once('exit', r));
    return pid;
  }

  for (const what of ['ingest', 'ask'] as const) {
    it(`a client killed mid-${what}: the sidecar commits, releases the lock and exits within seconds`, async () => {
      if (what === 'ask') {
        const h = spawnSidecar();
        await initialize(h.connection, params);
        await h.connection.sendRequest(Ingest, { paths: ['src/stock.ts'] });
        await shutdown(h);
      }
      const pid = await killClientWhileBusy(what);
      try {
        assert.ok(await waitGone(pid, 20000), `sidecar ${pid} still runs 20 s after its client died`);
        assert.ok(!fs.existsSync(path.join(store, 'lock')), 'the store lock was released');
        // the store reopens at once, with what the dead client's sidecar fed committed
        const h = spawnSidecar();
        try {
          const init = await initialize(h.connection, params);
          assert.ok(init.status.memory.injections >= (what === 'ingest' ? 3 : 1), JSON.stringify(init.status.memory));
          await shutdown(h);
        } finally {
          h.process.kill('SIGKILL');
        }
      } finally {
        killIfAlive(pid);
      }
    });
  }

  it('a sidecar whose stdin stays open but whose parent died exits (parent watch)', async () => {
    // The client hands the sidecar's stdin to a long-lived grandchild, so no EOF ever arrives.
    const script = `
      const { spawn } = require('child_process');
      const c = spawn(process.execPath, [${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'sidecar', 'main.js'))}], { stdio: ['pipe', 'ignore', 'ignore'] });
      const keeper = spawn('sleep', ['60'], { stdio: [c.stdin, 'ignore', 'ignore'], detached: true });
      keeper.unref();
      console.log(c.pid + ' ' + keeper.pid);
      setInterval(() => {}, 1000);`;
    const client = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    while (!/\d+ \d+/.test(out)) await new Promise((r) => setTimeout(r, 25));
    const [pid, keeper] = out.trim().split(' ').map(Number);
    try {
      await new Promise((r) => setTimeout(r, 500));
      client.kill('SIGKILL');
      assert.ok(await waitGone(pid, 10000), 'the orphaned sidecar exited');
    } finally {
      killIfAlive(pid);
      killIfAlive(keeper);
    }
  });
});
