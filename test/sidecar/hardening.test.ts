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
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ask, ErrorCodes, Ingest, InitializeParams, Log, LogParams, Shutdown, Status } from '../../src/sidecar/protocol';
import { gone, killIfAlive, waitGone } from '../helpers/procs';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { rmDir, tmpDir } from '../helpers/tmp';
import { SECRET, writeFixtureRepo } from '../helpers/fixtureRepo';
import { SAMPLES } from '../workspace/secretSamples';

describe('sidecar hardening (real processes)', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('hard', { model: { preset: 'small', seed: 3 } });
  let repo: string;
  let store: string;
  let params: Omit<InitializeParams, 'protocolVersion'>;
  const cleanup: string[] = [];

  beforeEach(() => {
    repo = tmpDir('hard-repo');
    store = tmpDir('hard-store');
    cleanup.push(repo, store);
    writeFixtureRepo(repo, 40);
    params = { modelDir: ws.model, storeDir: store, device: 'cpu', workspaceFolders: [repo], seed: 1, watch: false };
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

  it('the watcher refeeds only through the read gate: symlink swaps, binary rewrites, growth and secrets never reach the engine', async () => {
    const feedLog = path.join(path.dirname(store), path.basename(store) + '-feed.jsonl');
    cleanup.push(feedLog);
    const outside = tmpDir('hard-outside');
    cleanup.push(outside);
    const MARK = 'OUTSIDE-THE-WORKSPACE-7731';
    fs.writeFileSync(path.join(outside, 'passwd'), `root:x:0:0:${MARK}:/root:/bin/bash\n`);
    const logs: LogParams[] = [];
    const h = spawnSidecar({ env: { MPLUS_FEED_LOG: feedLog } });
    h.connection.onNotification(Log, (p) => void logs.push(p));
    try {
      await initialize(h.connection, { ...params, watch: true });
      await h.connection.sendRequest(Ingest, { paths: 'all' });
      const fedBefore = fs.readFileSync(feedLog, 'utf8').length;
      // a known file swapped for a symlink out of the workspace
      fs.rmSync(path.join(repo, 'src/stock.ts'));
      fs.symlinkSync(path.join(outside, 'passwd'), path.join(repo, 'src/stock.ts'));
      // a known file that turns binary after its first 8 KiB, one that grows past 1 MiB
      fs.writeFileSync(path.join(repo, 'cmd/main.go'), 'package main\n' + '// pad\n'.repeat(1500) + '\u0000' + 'func Hidden() {}\n');
      fs.writeFileSync(path.join(repo, 'README.md'), '# big\n' + 'line of text\n'.repeat(90000));
      // a key pasted into a known file, a new key file under an innocent name
      fs.appendFileSync(path.join(repo, 'src/report.py'), '\n' + SAMPLES['home/.bashrc']);
      fs.writeFileSync(path.join(repo, 'deploy_key.txt'), SAMPLES['deploy_key.txt']);
      fs.writeFileSync(path.join(repo, 'src/fresh.ts'), 'export const fresh = 42;\n');
      const end = Date.now() + 60000;
      let st = await h.connection.sendRequest(Status);
      const settled = () => st.coverage.filesKnown === st.coverage.filesFed && !st.coverage.feeding && st.secretsKeptOut.count === 3
        && fs.readFileSync(feedLog, 'utf8').includes('"file":"src/fresh.ts"');
      while (Date.now() < end && !settled()) {
        await new Promise((r) => setTimeout(r, 200));
        st = await h.connection.sendRequest(Status);
      }
      assert.ok(Date.now() < end, `the watcher did not settle: ${JSON.stringify(st)}\n${logs.map((l) => l.message).join('\n')}`);
      const fed = fs.readFileSync(feedLog, 'utf8').slice(fedBefore).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string; text: string });
      assert.ok(fed.some((f) => f.file === 'src/fresh.ts'), 'the new file was fed: ' + fed.map((f) => f.file).join(','));
      for (const f of fed) {
        assert.ok(!f.text.includes(MARK), `${f.file}: a file outside the workspace reached the engine`);
        assert.ok(!f.text.includes('Hidden') && !f.text.includes('\u0000'), `${f.file}: a binary file reached the engine`);
        assert.ok(!/PRIVATE KEY|ghp_/.test(f.text), `${f.file}: a secret reached the engine`);
        assert.ok(!['README.md', 'cmd/main.go', 'src/stock.ts', 'src/report.py', 'deploy_key.txt'].includes(f.file), `${f.file} was fed`);
      }
      const kept = st.secretsKeptOut.files.map((f) => f.path).sort();
      assert.deepStrictEqual(kept, ['.env', 'deploy_key.txt', 'src/report.py'], JSON.stringify(st.secretsKeptOut));
      assert.ok(logs.some((l) => l.level === 'warn' && /deploy_key\.txt: not fed \(secret-content\): contains a private key/.test(l.message)));
      // what memory had of the refused files is forgotten
      const srcFile = JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8')).sources.file;
      const recs = JSON.parse(fs.readFileSync(path.join(store, srcFile), 'utf8')).records as Array<{ file: string; stale: boolean }>;
      for (const f of ['src/stock.ts', 'cmd/main.go', 'README.md', 'src/report.py']) assert.ok(!recs.some((r) => r.file === f && !r.stale), `${f} still live in memory`);
      assert.ok(!fs.readFileSync(feedLog, 'utf8').includes(SECRET));
      await shutdown(h);
    } finally {
      h.process.kill('SIGKILL');
    }
  });

  /** Raw bytes to a fresh sidecar's stdin; collects stdout frames and stderr. */
  function rawSidecar() {
    const c = spawn(process.execPath, [path.join(__dirname, '..', '..', 'src', 'sidecar', 'main.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = Buffer.alloc(0);
    let err = '';
    c.stdout!.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const frame = (body: string) => `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const replies = () => out.toString('utf8').split(/Content-Length: \d+\r\n\r\n/).filter(Boolean).map((b) => JSON.parse(b) as { id: unknown; error?: { code: number; message: string } });
    const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
    return { c, frame, replies, exited, err: () => err };
  }

  const waitUntil = async (cond: () => boolean, what: string, ms = 10000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('invalid JSON gets a parse error reply and the connection goes on; shutdown replies before the exit', async () => {
    const s = rawSidecar();
    try {
      s.c.stdin!.write(s.frame('{"jsonrpc":"2.0","id":1,"method":"mplus/status"'));
      s.c.stdin!.write(s.frame('[1,2]'));
      s.c.stdin!.write(s.frame('{"jsonrpc":"2.0","id":2,"method":"mplus/status"}'));
      await waitUntil(() => s.replies().length >= 3, 'three replies');
      const [parse, invalid, status] = s.replies();
      assert.strictEqual(parse.error?.code, -32700);
      assert.strictEqual(parse.id, null);
      assert.strictEqual(invalid.error?.code, -32600);
      assert.strictEqual(status.id, 2);
      assert.strictEqual(status.error?.code, ErrorCodes.NotInitialized, 'still serving');
      s.c.stdin!.write(s.frame('{"jsonrpc":"2.0","id":3,"method":"shutdown"}'));
      assert.strictEqual(await s.exited, 0);
      assert.ok(s.replies().some((r) => r.id === 3 && !r.error), 'shutdown was answered before the exit');
    } finally {
      s.c.kill('SIGKILL');
    }
    // the same through the client library: the request resolves, it is not cut off by the exit
    const h = spawnSidecar();
    await h.connection.sendRequest(Shutdown);
    assert.strictEqual(await h.exited, 0);
  });

  const framingErrors: Record<string, string | Buffer> = {
    'no Content-Length': 'Content-Type: application/json\r\n\r\n{}',
    'a non-numeric Content-Length': 'Content-Length: ten\r\n\r\n{}',
    'a negative Content-Length': 'Content-Length: -5\r\n\r\n{}',
    'a huge Content-Length': 'Content-Length: 99999999999\r\n\r\n{}',
    'binary garbage': Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7919) % 256)),
  };
  for (const [what, bytes] of Object.entries(framingErrors)) {
    it(`a frame with ${what}: logged, the connection closes, the sidecar exits`, async () => {
      const s = rawSidecar();
      try {
        s.c.stdin!.write(bytes);
        const code = await Promise.race([s.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10000))]);
        assert.strictEqual(code, 0, `exit: ${code}; stderr: ${s.err()}`);
        assert.match(s.err(), /framing error: .*closing the connection/);
      } finally {
        s.c.kill('SIGKILL');
      }
    });
  }

  it('a framing error after initialize releases the store (commit, unlock, exit)', async () => {
    const s = rawSidecar();
    try {
      s.c.stdin!.write(s.frame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { ...params, protocolVersion: 1 } })));
      await waitUntil(() => s.replies().some((r) => r.id === 1), 'initialize', 60000);
      assert.ok(fs.existsSync(path.join(store, 'lock')));
      s.c.stdin!.write('Content-Length: x\r\n\r\n');
      assert.strictEqual(await s.exited, 0);
      assert.ok(!fs.existsSync(path.join(store, 'lock')), 'the lock was released');
    } finally {
      s.c.kill('SIGKILL');
    }
  });

  it('a question over the token limit is refused naming the limit; a 1 MB question at once; the sidecar keeps serving', async () => {
    const h = spawnSidecar({ env: { MPLUS_MAX_QUESTION_TOKENS: '2000' } });
    try {
      await initialize(h.connection, params);
      const long = 'Where is the reorder level defined and who reads it? '.repeat(250); // ~3,000 tokens
      await assert.rejects(h.connection.sendRequest(Ask, { question: long, maxTokens: 2 }),
        (e: ResponseError<void>) => e.code === ErrorCodes.QuestionTooLong && /at most 2000 tokens are accepted \(the question length cap/.test(e.message));
      const t0 = Date.now();
      await assert.rejects(h.connection.sendRequest(Ask, { question: 'x'.repeat(1 << 20), maxTokens: 2 }),
        (e: ResponseError<void>) => e.code === ErrorCodes.QuestionTooLong && /1048576 characters/.test(e.message));
      assert.ok(Date.now() - t0 < 10000, 'refused without tokenizing');
      const ok = await h.connection.sendRequest(Ask, { question: long.slice(0, 2000), maxTokens: 2 });
      assert.ok(ok.tokens > 0, 'a question under the limit is answered');
      await shutdown(h);
    } finally {
      h.process.kill('SIGKILL');
    }
  });
});
