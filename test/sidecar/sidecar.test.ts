/**
 * The real sidecar process (node out/src/sidecar/main.js) on the small fixture checkpoint and a
 * fixture repository, driven over its stdio protocol exactly as the extension and CLI drive it.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { writeFixture } from '../../tools/fixture';
import { SidecarHandle, initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import {
  AnswerSources, AnswerToken, Ask, Cancel, ErrorCodes, Fed, FedParams, Forget, Ingest, Initialize, InitializeParams, Log, LogParams, Progress, ProgressParams,
  Rebuild, SetPaused, Source, Status, StoreErrorData,
} from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';
import { rmDir, tmpDir } from '../helpers/tmp';
import { SECRET, writeFixtureRepo } from '../helpers/fixtureRepo';

interface Running {
  h: SidecarHandle;
  progress: ProgressParams[];
  tokens: Map<string, string[]>;
  sources: Map<string, Source[]>;
  logs: LogParams[];
  fed: FedParams[];
  stderr: string[];
}

/** Polls `cond` until true; fails after `ms` or when the sidecar has died. */
async function waitFor(r: Running, cond: () => boolean, what: string, ms = 60000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (r.h.process.exitCode !== null || r.h.process.signalCode !== null) assert.fail(`sidecar exited while waiting for ${what}: ${r.stderr.slice(-5).join('\n')}`);
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

function start(env: NodeJS.ProcessEnv = {}): Running {
  const stderr: string[] = [];
  const h = spawnSidecar({ env, onStderr: (l) => stderr.push(l) });
  const r: Running = { h, progress: [], tokens: new Map(), sources: new Map(), logs: [], fed: [], stderr };
  h.connection.onNotification(Progress, (p) => void r.progress.push(p));
  h.connection.onNotification(AnswerToken, (p) => void r.tokens.set(p.askId, [...(r.tokens.get(p.askId) ?? []), p.text]));
  h.connection.onNotification(AnswerSources, (p) => void r.sources.set(p.askId, p.sources));
  h.connection.onNotification(Log, (p) => void r.logs.push(p));
  h.connection.onNotification(Fed, (p) => void r.fed.push(p));
  return r;
}

describe('sidecar process over the protocol (small fixture model, real repository)', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('sidecar', { model: { preset: 'small', seed: 3 } });
  let repo: string;
  let store: string;
  let params: Omit<InitializeParams, 'protocolVersion'>;
  const cleanup: string[] = [];

  beforeEach(() => {
    repo = tmpDir('sidecar-repo');
    store = tmpDir('sidecar-store');
    cleanup.push(repo, store);
    writeFixtureRepo(repo);
    params = { modelDir: ws.model, storeDir: store, device: 'cpu', workspaceFolders: [repo], seed: 1, watch: false };
  });
  after(() => cleanup.forEach(rmDir));

  /** What the engine received, decoded from its token ids (MPLUS_FEED_LOG). */
  function fedRecords(feedLog: string): { file: string; startLine: number; endLine: number; tokens: number; text: string }[] {
    return fs.readFileSync(feedLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  }

  it('ingests with progress, answers with streamed tokens and sources at real lines, status, forget', async () => {
    const feedLog = path.join(store, '..', path.basename(store) + '-feed.jsonl');
    cleanup.push(feedLog);
    const r = start({ MPLUS_FEED_LOG: feedLog });
    try {
      const init = await initialize(r.h.connection, params);
      assert.strictEqual(init.device.used, 'cpu');
      assert.strictEqual(init.model.layers, 4);
      const ing = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.strictEqual(ing.cancelled, false);
      assert.strictEqual(ing.filesDone, 6, 'README, .gitignore, ts, py, go, rs (no .env, build/, png)');
      assert.ok(ing.chunksInjected >= 5 && ing.tokensInjected > 100, JSON.stringify(ing));
      assert.ok(r.progress.length > 0 && r.progress.at(-1)!.filesDone === 6);
      // what reached the engine: every fed file, never the secret's file nor its content
      const fed = fedRecords(feedLog);
      assert.strictEqual(fed.length, ing.chunksInjected);
      assert.strictEqual(fed.reduce((a, f) => a + f.tokens, 0), ing.tokensInjected);
      assert.deepStrictEqual([...new Set(fed.map((f) => f.file))].sort(), ['.gitignore', 'README.md', 'cmd/main.go', 'lib/src/lib.rs', 'src/report.py', 'src/stock.ts']);
      assert.ok(fed.every((f) => !f.text.includes(SECRET) && !f.text.includes('API_KEY')));
      const st = await r.h.connection.sendRequest(Status);
      assert.deepStrictEqual(st.coverage, { filesFed: 6, filesKnown: 6, feeding: false });
      assert.strictEqual(st.memory.injections, ing.chunksInjected);
      assert.deepStrictEqual(st.queue, { pendingFiles: 0, pendingChunks: 0 });
      // the estimate counts the workspace's own text: near what was actually fed
      assert.strictEqual(st.estimate.files, 6);
      assert.ok(st.estimate.tokens > ing.tokensInjected / 2 && st.estimate.tokens < ing.tokensInjected * 2, `${st.estimate.tokens} vs ${ing.tokensInjected} fed`);
      assert.ok(st.estimate.storeBytes > 0);
      assert.strictEqual(r.progress.at(-1)!.etaSeconds, 0, 'done: nothing left');

      const ans = await r.h.connection.sendRequest(Ask, { question: 'Where is the reorder level defined?', askId: 'q1', maxTokens: 12 });
      assert.strictEqual(ans.askId, 'q1');
      assert.ok(ans.tokens > 0 && ans.tokens <= 12);
      assert.strictEqual((r.tokens.get('q1') ?? []).join(''), ans.answer, 'the streamed pieces are the answer');
      assert.ok(ans.sources.length > 0, 'a question draws on memory written by files');
      assert.deepStrictEqual(r.sources.get('q1'), ans.sources);
      for (const s of ans.sources) {
        const lines = fs.readFileSync(path.join(repo, s.path), 'utf8').split('\n');
        assert.ok(s.startLine >= 1 && s.endLine >= s.startLine && s.endLine <= lines.length, `${s.path}:${s.startLine}-${s.endLine}`);
        assert.strictEqual(s.absPath, path.join(repo, s.path));
      }
      const total = ans.sources.reduce((a, s) => a + s.weight, 0);
      assert.ok(total > 0.5 && total <= 1 + 1e-9);

      // the secret never reached the sidecar's memory: no chunk names .env
      const sourcesFile = fs.readdirSync(store).find((f) => f.startsWith('sources-'))!;
      const text = fs.readFileSync(path.join(store, sourcesFile), 'utf8');
      assert.ok(!text.includes('.env') && !text.includes(SECRET));

      const fg = await r.h.connection.sendRequest(Forget, { paths: ['src/stock.ts'] });
      assert.strictEqual(fg.filesForgotten, 1);
      const st2 = await r.h.connection.sendRequest(Status);
      assert.strictEqual(st2.coverage.filesFed, 5);
      const ans2 = await r.h.connection.sendRequest(Ask, { question: 'What does Warehouse do?', maxTokens: 4 });
      assert.ok(ans2.sources.every((s) => s.path !== 'src/stock.ts'), 'a forgotten file is never cited');
      await shutdown(r.h);
      assert.strictEqual(await r.h.exited, 0);
    } finally {
      r.h.process.kill('SIGKILL');
    }
  });

  it('a re-ingest after an edit feeds only the changed chunks; a deleted file’s memory goes', async () => {
    const r = start();
    try {
      await initialize(r.h.connection, params);
      const first = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      fs.appendFileSync(path.join(repo, 'cmd/main.go'), '\n// Audit logs every restock.\nfunc Audit(sku string) string {\n\treturn "audit " + sku\n}\n');
      fs.rmSync(path.join(repo, 'src/report.py'));
      const again = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.ok(again.chunksInjected >= 1 && again.chunksInjected < first.chunksInjected, JSON.stringify(again));
      assert.ok(again.chunksSkipped >= first.chunksInjected - 3);
      const st = await r.h.connection.sendRequest(Status);
      assert.strictEqual(st.coverage.filesFed, 5);
      const ans = await r.h.connection.sendRequest(Ask, { question: 'How is a report rendered?', maxTokens: 3 });
      assert.ok(ans.sources.every((s) => s.path !== 'src/report.py'), 'sources never name a deleted file');
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
  });

  it('watches the workspace: a saved edit is refed (changed chunks only), a deleted file is forgotten', async () => {
    const feedLog = path.join(store, '..', path.basename(store) + '-feed.jsonl');
    cleanup.push(feedLog);
    const r = start({ MPLUS_FEED_LOG: feedLog });
    try {
      await initialize(r.h.connection, { ...params, watch: true });
      const first = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      const before = (await r.h.connection.sendRequest(Status)).memory.injections;
      fs.appendFileSync(path.join(repo, 'lib/src/lib.rs'), '\n/// Insurance for fragile parcels.\npub fn insurance(cents: u32) -> u32 {\n    cents / 50\n}\n');
      await waitFor(r, () => r.logs.some((l) => /refreshed 1 changed file/.test(l.message)), 'the refresh after a save', 30000);
      // the client is told which save is now in memory: the file's path and its mtime as saved
      const saved = fs.statSync(path.join(repo, 'lib/src/lib.rs')).mtimeMs;
      await waitFor(r, () => r.fed.some((p) => p.files.some((f) => f.absPath === path.join(repo, 'lib/src/lib.rs') && f.mtimeMs === saved)), 'the Fed notification', 10000);
      const after = (await r.h.connection.sendRequest(Status)).memory.injections;
      assert.ok(after > before && after - before < first.chunksInjected, `refed ${after - before} chunk(s) of ${first.chunksInjected}`);
      fs.rmSync(path.join(repo, 'src/report.py'));
      await waitFor(r, () => r.logs.some((l) => /forgot 1 file/.test(l.message)), 'the deletion', 30000);
      const stDel = await r.h.connection.sendRequest(Status);
      assert.strictEqual(stDel.coverage.filesFed, 5, JSON.stringify(stDel) + r.logs.map((l) => l.message).join("\n"));
      // a new secret file appears: never fed
      fs.writeFileSync(path.join(repo, '.env.local'), `TOKEN=${SECRET}\n`);
      fs.writeFileSync(path.join(repo, 'src/new.ts'), 'export const created = true;\n');
      let st = await r.h.connection.sendRequest(Status);
      for (let i = 0; i < 300 && (st.coverage.filesFed < 6 || st.coverage.feeding); i++) {
        await new Promise((res) => setTimeout(res, 100));
        st = await r.h.connection.sendRequest(Status);
      }
      assert.strictEqual(st.coverage.filesFed, 6, 'the new file was fed');
      assert.strictEqual(st.coverage.filesKnown, 6, '.env.local is not even known');
      const srcFile = JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8')).sources.file;
      const text = fs.readFileSync(path.join(store, srcFile), 'utf8');
      assert.ok(text.includes('src/new.ts') && !text.includes('.env'));
      const fedAll = fedRecords(feedLog);
      assert.ok(fedAll.some((f) => f.file === 'src/new.ts' && f.text.includes('created = true')), 'the new file reached the engine');
      assert.ok(fedAll.every((f) => !f.file.startsWith('.env') && !f.text.includes(SECRET)), 'the secret never reached the engine');
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
  });

  it('cancels mid-ingest (committing what it fed) and mid-answer; pause holds feeding', async () => {
    writeFixtureRepo(repo, 40);
    const r = start();
    try {
      await initialize(r.h.connection, params);
      const cts = new CancellationTokenSource();
      const job = r.h.connection.sendRequest(Ingest, { paths: 'all' }, cts.token);
      await waitFor(r, () => r.progress.some((p) => p.chunksDone >= 3), 'three chunks fed');
      // a question during ingestion is answered between two injections, from memory as it is
      const during = await r.h.connection.sendRequest(Ask, { question: 'What is fed so far?', maxTokens: 2 });
      assert.strictEqual(during.coverage.feeding, true, 'answered while feeding');
      assert.ok(during.coverage.filesFed < during.coverage.filesKnown, JSON.stringify(during.coverage));
      const c = await r.h.connection.sendRequest(Cancel, { target: 'ingest' });
      assert.strictEqual(c.cancelled, 1);
      const res = await job;
      assert.strictEqual(res.cancelled, true);
      assert.ok(res.filesDone < 45);
      const st = await r.h.connection.sendRequest(Status);
      assert.strictEqual(st.memory.injections, res.chunksInjected, 'what was fed is committed');

      // mid-answer: cancel after the first streamed token
      const ask = r.h.connection.sendRequest(Ask, { question: 'List every pipeline stage.', askId: 'long', maxTokens: 400, temperature: 1 });
      await waitFor(r, () => !!r.tokens.get('long')?.length, 'the first answer token');
      await r.h.connection.sendRequest(Cancel, { target: { askId: 'long' } });
      const a = await ask;
      assert.strictEqual(a.cancelled, true);
      assert.ok(a.tokens < 400);

      // pause: an ingest waits, resume lets it finish
      await r.h.connection.sendRequest(SetPaused, { paused: true });
      const paused = r.h.connection.sendRequest(Ingest, { paths: ['src/stock.ts'] });
      await new Promise((res) => setTimeout(res, 300));
      assert.strictEqual((await r.h.connection.sendRequest(Status)).state, 'paused');
      await r.h.connection.sendRequest(SetPaused, { paused: false });
      assert.strictEqual((await paused).cancelled, false);
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
  });

  it('Forget sticks: a forgotten file or folder is not fed again after a restart, a save or a full ingest, until re-added', async () => {
    const feedLog = path.join(store, '..', path.basename(store) + '-feed.jsonl');
    const feedLog2 = feedLog.replace(/\.jsonl$/, '-2.jsonl');
    cleanup.push(feedLog, feedLog2);
    const r = start({ MPLUS_FEED_LOG: feedLog });
    try {
      await initialize(r.h.connection, params);
      await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      const fg = await r.h.connection.sendRequest(Forget, { paths: ['src/stock.ts', path.join(repo, 'lib')] });
      assert.strictEqual(fg.filesForgotten, 2);
      const st = await r.h.connection.sendRequest(Status);
      assert.deepStrictEqual(st.forgotten, { count: 2, paths: ['lib', 'src/stock.ts'] });
      assert.deepStrictEqual(st.coverage, { filesFed: 4, filesKnown: 4, feeding: false }, 'forgotten files are not counted as missing');
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
    // Changed since: without the record, a restart would see it as new and feed it.
    fs.appendFileSync(path.join(repo, 'src/stock.ts'), '\nexport const RESTOCK_DAYS = 3;\n');
    const r2 = start({ MPLUS_FEED_LOG: feedLog2 });
    try {
      const init = await initialize(r2.h.connection, { ...params, watch: true });
      assert.deepStrictEqual(init.status.forgotten.paths, ['lib', 'src/stock.ts'], 'the forgotten list was committed with the store');
      const ing = await r2.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.strictEqual(ing.chunksInjected, 0, 'nothing to feed: the rest is unchanged, the forgotten files stay out');
      // a save of the forgotten file, then of a remembered one: only the latter is fed
      fs.appendFileSync(path.join(repo, 'src/stock.ts'), '\nexport const RESTOCK_HOURS = 72;\n');
      fs.appendFileSync(path.join(repo, 'README.md'), '\nReorders go out daily.\n');
      await waitFor(r2, () => r2.fed.some((p) => p.files.some((f) => f.absPath === path.join(repo, 'README.md'))), 'the README refresh', 30000);
      const fed = fs.existsSync(feedLog2) ? fedRecords(feedLog2) : [];
      assert.deepStrictEqual([...new Set(fed.map((f) => f.file))], ['README.md'], 'only the remembered file was fed');
      let st = await r2.h.connection.sendRequest(Status);
      assert.deepStrictEqual([st.coverage.filesFed, st.coverage.filesKnown], [4, 4]);
      // Re-add one file of the forgotten folder, then the forgotten file: both fed, the list empties.
      const back = await r2.h.connection.sendRequest(Ingest, { paths: ['lib/src/lib.rs'] });
      assert.ok(back.chunksInjected > 0);
      st = await r2.h.connection.sendRequest(Status);
      assert.deepStrictEqual(st.forgotten.paths, ['src/stock.ts']);
      await r2.h.connection.sendRequest(Ingest, { paths: [path.join(repo, 'src/stock.ts')] });
      st = await r2.h.connection.sendRequest(Status);
      assert.deepStrictEqual(st.forgotten, { count: 0, paths: [] });
      assert.deepStrictEqual(st.coverage, { filesFed: 6, filesKnown: 6, feeding: false });
      assert.ok(fedRecords(feedLog2).some((f) => f.file === 'src/stock.ts' && f.text.includes('RESTOCK_HOURS')), 're-added as it is now');
      await shutdown(r2.h);
    } finally {
      r2.h.process.kill('SIGKILL');
    }
  });

  it('kill -9 mid-ingest: a new sidecar reopens the last commit and resumes without refeeding it', async () => {
    writeFixtureRepo(repo, 40);
    const r = start({ MPLUS_COMMIT_EVERY: '4' });
    await initialize(r.h.connection, params);
    const job = r.h.connection.sendRequest(Ingest, { paths: 'all' }).catch(() => null);
    await waitFor(r, () => r.progress.some((p) => p.chunksDone >= 14), 'fourteen chunks fed');
    // mid-feeding, status says what is left and progress what is being read and how long it takes
    const mid = await r.h.connection.sendRequest(Status);
    assert.ok(mid.coverage.feeding && mid.queue.pendingFiles > 0 && mid.queue.pendingFiles < 46 && mid.queue.pendingChunks > 0, JSON.stringify(mid.queue));
    const last = r.progress.at(-1)!;
    assert.ok(last.currentFile && last.etaSeconds !== null && last.etaSeconds > 0, JSON.stringify(last));
    r.h.process.kill('SIGKILL');
    await r.h.exited;
    await job;
    const manifest = JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8'));
    const committed = JSON.parse(fs.readFileSync(path.join(store, manifest.sources.file), 'utf8')) as { injections: number; records: Array<{ hash: string; stale: boolean }> };
    assert.ok(committed.injections >= 4, `something was committed before the kill (${committed.injections})`);
    r.h.connection.dispose();

    const r2 = start();
    try {
      const init = await initialize(r2.h.connection, params);
      assert.strictEqual(init.status.memory.injections, committed.injections, 'nothing committed is lost');
      const res = await r2.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.strictEqual(res.cancelled, false);
      assert.ok(res.chunksSkipped >= committed.records.filter((x) => !x.stale).length - 1, `skipped ${res.chunksSkipped} of ${committed.records.length} committed`);
      const st = await r2.h.connection.sendRequest(Status);
      assert.strictEqual(st.coverage.filesFed, st.coverage.filesKnown);
      await shutdown(r2.h);
    } finally {
      r2.h.process.kill('SIGKILL');
    }
  });

  it('malformed requests get JSON-RPC errors and the process lives; versions and stores are checked', async () => {
    const r = start();
    try {
      await assert.rejects(r.h.connection.sendRequest(Status), (e: ResponseError<void>) => e.code === ErrorCodes.NotInitialized);
      await assert.rejects(r.h.connection.sendRequest(Initialize, { ...params, protocolVersion: 999 }), (e: ResponseError<void>) => e.code === ErrorCodes.VersionMismatch && /mismatch/.test(e.message));
      await assert.rejects(r.h.connection.sendRequest(Initialize, { ...params, protocolVersion: 1, modelDir: path.join(repo, 'nope') }), (e: ResponseError<void>) => e.code === ErrorCodes.BadModel && e.message.includes('nope'));
      await assert.rejects(r.h.connection.sendRequest(Initialize, { ...params, protocolVersion: 1, device: 'tpu' as never }), (e: ResponseError<void>) => e.code === -32602);
      await initialize(r.h.connection, params);
      await assert.rejects(r.h.connection.sendRequest(Ask, { question: '' }), (e: ResponseError<void>) => e.code === -32602);
      await assert.rejects(r.h.connection.sendRequest(Ask, { question: 'x', maxTokens: -3 }), /maxTokens/);
      await assert.rejects(r.h.connection.sendRequest(Ingest, { paths: 42 as never }), /paths/);
      await assert.rejects(r.h.connection.sendRequest(Forget, { paths: ['/etc/passwd'] }), /outside the workspace/);
      await assert.rejects(r.h.connection.sendRequest('mplus/nonsense', {}), (e: ResponseError<void>) => e.code === -32601);
      const st = await r.h.connection.sendRequest(Status);
      assert.strictEqual(st.state, 'idle', 'still serving');

      // a second sidecar on the same store is refused (one writer per store)
      const r2 = start();
      await assert.rejects(initialize(r2.h.connection, params), (e: ResponseError<void>) => e.code === ErrorCodes.Busy && /in use by pid/.test(e.message));
      r2.h.process.kill('SIGKILL');

      // closing stdin shuts down cleanly (commit, exit 0)
      r.h.process.stdin!.end();
      assert.strictEqual(await r.h.exited, 0);
    } finally {
      r.h.process.kill('SIGKILL');
    }
  });

  it('a store from another model is refused, or moved aside when a rebuild is asked for', async () => {
    const r = start();
    await initialize(r.h.connection, params);
    await shutdown(r.h);
    const other = tmpDir('sidecar-model2');
    cleanup.push(other);
    writeFixture({ out: other, preset: 'small', seed: 4, dtype: 'f32' });
    const r2 = start();
    try {
      await assert.rejects(initialize(r2.h.connection, { ...params, modelDir: other }), (e: ResponseError<void>) => e.code === ErrorCodes.BadStore && /another model/.test(e.message) && /Rebuild/.test(e.message));
      const init = await initialize(r2.h.connection, { ...params, modelDir: other, rebuildStore: true });
      assert.match(init.storeNotice ?? '', /moved to .*broken/);
      await shutdown(r2.h);
    } finally {
      r2.h.process.kill('SIGKILL');
      for (const f of fs.readdirSync(path.dirname(store))) if (f.startsWith(path.basename(store) + '.broken-')) cleanup.push(path.join(path.dirname(store), f));
    }
  });

  it('a store folder that cannot be written is StoreUnwritable in plain words; a damaged manifest is BadStore with the problem alone, moved aside only on rebuildStore', async () => {
    const file = path.join(store, 'in-the-way');
    fs.writeFileSync(file, 'a file where the store folder should be\n');
    const blocked = path.join(file, 'ws');
    const good = path.join(store, 'ws');
    const r = start();
    try {
      await assert.rejects(initialize(r.h.connection, { ...params, storeDir: blocked, rebuildStore: true }),
        (e: ResponseError<unknown>) => e.code === ErrorCodes.StoreUnwritable && e.message === `M+ cannot keep this workspace's memory in ${blocked}: ${file} is a file, not a folder`);
      // the process lives on and initializes on a usable folder
      await initialize(r.h.connection, { ...params, storeDir: good });
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
    fs.writeFileSync(path.join(good, 'manifest.json'), '{ "format": "mplus-store", ');
    const r2 = start();
    try {
      await assert.rejects(initialize(r2.h.connection, { ...params, storeDir: good }),
        (e: ResponseError<unknown>) => e.code === ErrorCodes.BadStore && (e.data as StoreErrorData).problem === 'manifest is not valid JSON' && e.message.includes(path.join(good, 'manifest.json')));
      assert.ok(fs.existsSync(path.join(good, 'manifest.json')), 'a refused store is left where it is');
      const init = await initialize(r2.h.connection, { ...params, storeDir: good, rebuildStore: true });
      assert.match(init.storeNotice ?? '', /manifest is not valid JSON.*moved to .*ws\.broken-/);
      assert.strictEqual(init.status.memory.injections, 0);
      await shutdown(r2.h);
    } finally {
      r2.h.process.kill('SIGKILL');
    }
  });

  it('Rebuild moves the store aside under the sidecar\'s lock and starts memory empty; requireStore refuses a folder without one', async () => {
    const r = start();
    try {
      // No store yet: refused before the model loads.
      await assert.rejects(initialize(r.h.connection, { ...params, requireStore: true }), (e: ResponseError<void>) => e.code === ErrorCodes.NoStore && /holds no memory store/.test(e.message));
      await initialize(r.h.connection, params);
      const ing = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.ok(ing.chunksInjected > 0);
      const fedCommits = fs.readdirSync(store).length;
      const rb = await r.h.connection.sendRequest(Rebuild);
      assert.ok(rb.movedTo && path.basename(rb.movedTo).startsWith(path.basename(store) + '.rebuilt-'), `moved to ${rb.movedTo}`);
      cleanup.push(rb.movedTo!);
      // Moved, not deleted: the old store is complete, and no longer locked by anyone.
      assert.ok(fs.existsSync(path.join(rb.movedTo!, 'manifest.json')));
      assert.ok(fs.readdirSync(rb.movedTo!).length >= fedCommits - 1);
      assert.ok(!fs.existsSync(path.join(rb.movedTo!, 'lock')));
      assert.strictEqual(rb.status.memory.injections, 0);
      assert.strictEqual(rb.status.coverage.filesFed, 0);
      // The fresh store is this sidecar's (locked) and feeds again from scratch.
      assert.ok(fs.existsSync(path.join(store, 'lock')));
      const again = await r.h.connection.sendRequest(Ingest, { paths: 'all' });
      assert.strictEqual(again.chunksSkipped, 0);
      assert.strictEqual(again.chunksInjected, ing.chunksInjected);
      const st = await r.h.connection.sendRequest(Status);
      assert.strictEqual(st.memory.injections, again.chunksInjected);
      await shutdown(r.h);
    } finally {
      r.h.process.kill('SIGKILL');
    }
    // The requireStore check passes now that a store exists.
    const r2 = start();
    try {
      const init = await initialize(r2.h.connection, { ...params, requireStore: true, paused: true });
      assert.ok(init.status.memory.injections > 0);
      await shutdown(r2.h);
    } finally {
      r2.h.process.kill('SIGKILL');
    }
  });
});
