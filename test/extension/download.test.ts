/**
 * Model download from the Hugging Face hub, against a real HTTP hub on 127.0.0.1 (never the
 * internet): listing, redirects to another origin, Range resume, dropped connections, corrupted
 * bytes, cancellation, tokens and the endpoint override.
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { downloadModel, DownloadProgress } from '../../src/extension/download/downloadModel';
import { DownloadCancelled, HubAuthError, HubError } from '../../src/extension/download/http';
import { checkRepoId, listRepo, resolveEndpoint, safeRelPath } from '../../src/extension/download/hubApi';
import { rmDir, tmpDir } from '../helpers/tmp';
import { HubFileSpec, LocalHub } from './localHub';

const REPO = 'test-org/mplus-tiny';

function makeFiles(): HubFileSpec[] {
  const rnd = (n: number, seed: string) => {
    const out = Buffer.alloc(n);
    for (let o = 0, i = 0; o < n; i++) o += crypto.createHash('sha256').update(`${seed}${i}`).digest().copy(out, o);
    return out;
  };
  return [
    { path: 'config.json', content: Buffer.from('{"model_type":"llama","num_hidden_layers":2}\n'), lfs: false },
    { path: 'tokenizer.json', content: Buffer.from('{"model":{"type":"BPE"}}\n'), lfs: false },
    { path: 'model-00001-of-00002.safetensors', content: rnd(3 << 20, 'a'), lfs: true },
    { path: 'model-00002-of-00002.safetensors', content: rnd(1 << 20, 'b'), lfs: true },
    { path: 'sub dir/notes.md', content: Buffer.from('# notes\n'), lfs: false },
  ];
}

describe('extension: model download from a local Hugging Face hub', function () {
  let hub: LocalHub;
  let dir: string;

  beforeEach(async () => {
    hub = new LocalHub(REPO, makeFiles());
    await hub.start();
    dir = tmpDir('download');
  });
  afterEach(async () => {
    await hub.stop();
    rmDir(dir);
  });

  const dest = () => path.join(dir, 'mplus-tiny');
  const run = (extra: Partial<Parameters<typeof downloadModel>[0]> = {}) =>
    downloadModel({ repo: REPO, dest: dest(), endpoint: hub.hubUrl, retryDelayMs: 5, ...extra });
  const assertAllFiles = () => {
    for (const f of hub.files) {
      const p = path.join(dest(), ...f.path.split('/'));
      assert.ok(fs.existsSync(p), `${f.path} is missing`);
      assert.ok(fs.readFileSync(p).equals(f.content), `${f.path} differs from the hub's`);
      assert.ok(!fs.existsSync(`${p}.part`), `${f.path}.part was left behind`);
    }
  };
  const cdnGets = (file: string) => {
    const sha = LocalHub.sha256(hub.files.find((f) => f.path === file)!.content);
    return hub.requests.filter((r) => r.server === 'cdn' && r.url.includes(sha));
  };

  it('lists the repository at one commit across pages and downloads every file, verified', async () => {
    const seen: DownloadProgress[] = [];
    const r = await run({ onProgress: (p) => seen.push(p) });
    assertAllFiles();
    assert.strictEqual(r.commit, hub.commit);
    assert.strictEqual(r.files, 5);
    assert.strictEqual(r.bytes, hub.files.reduce((s, f) => s + f.content.length, 0));
    assert.strictEqual(r.reused, 0);
    // the tree listing was paginated and fetched at the commit, not at "main"
    const tree = hub.requests.filter((q) => q.url.includes('/tree/'));
    assert.ok(tree.length >= 3, `expected several tree pages, saw ${tree.length}`);
    assert.ok(tree.every((q) => q.url.includes(hub.commit)));
    // progress: monotonic over the whole download, ending at the total
    const bytes = seen.filter((p) => p.phase !== 'listing').map((p) => p.doneBytes);
    for (let i = 1; i < bytes.length; i++) assert.ok(bytes[i] >= bytes[i - 1], `progress went back: ${bytes[i - 1]} → ${bytes[i]}`);
    const last = seen[seen.length - 1];
    assert.deepStrictEqual([last.phase, last.doneBytes, last.fileIndex], ['done', r.bytes, 5]);
    assert.ok(seen.some((p) => p.phase === 'verifying'));
  });

  it('stops before any file moves when the listing is refused (e.g. not enough disk)', async () => {
    await assert.rejects(run({ onListing: (l) => { throw new Error(`needs ${l.totalBytes} bytes`); } }), /needs \d+ bytes/);
    assert.strictEqual(hub.requests.filter((q) => q.url.includes('/resolve/')).length, 0);
  });

  it('a second run keeps verified files and fetches nothing large again', async () => {
    await run();
    const before = hub.requests.filter((q) => q.server === 'cdn').length;
    const r = await run();
    assert.strictEqual(r.reused, 5);
    assert.strictEqual(hub.requests.filter((q) => q.server === 'cdn').length, before);
    assertAllFiles();
  });

  it('resumes a .part file with a Range request from where it stopped', async () => {
    const big = hub.files[2];
    fs.mkdirSync(dest(), { recursive: true });
    const half = big.content.length >> 1;
    fs.writeFileSync(path.join(dest(), `${big.path}.part`), big.content.subarray(0, half));
    let missing = -1;
    await run({ onListing: (l) => { missing = l.missingBytes; } });
    assert.strictEqual(missing, hub.files.reduce((s, f) => s + f.content.length, 0) - half);
    assertAllFiles();
    const gets = cdnGets(big.path);
    assert.strictEqual(gets.length, 1);
    assert.strictEqual(gets[0].range, `bytes=${half}-`);
  });

  it('a connection dropped mid-file is retried from the byte it reached', async () => {
    const big = hub.files[2];
    hub.faults.set(big.path, { drop: { afterBytes: 1 << 20, times: 2 } });
    const log: string[] = [];
    await run({ log: (l) => log.push(l) });
    assertAllFiles();
    const gets = cdnGets(big.path);
    assert.strictEqual(gets.length, 3, JSON.stringify(gets));
    assert.strictEqual(gets[0].range, undefined);
    assert.match(gets[1].range ?? '', /^bytes=[1-9]\d*-$/);
    assert.match(gets[2].range ?? '', /^bytes=[1-9]\d*-$/);
    assert.ok(log.some((l) => /retry 1\/5/.test(l)), log.join('\n'));
  });

  it('gives up after the retries with a message naming the file and keeps the part for later', async () => {
    const big = hub.files[2];
    hub.faults.set(big.path, { drop: { afterBytes: 0, times: Infinity } });
    await assert.rejects(run({ retries: 2 }), (e: Error) => {
      assert.ok(e instanceof HubError);
      assert.match(e.message, /model-00001-of-00002\.safetensors failed after 2 retries/);
      assert.match(e.message, /next download resumes/);
      return true;
    });
    assert.ok(!fs.existsSync(path.join(dest(), big.path)));
  });

  it('a corrupted byte is caught by sha256: the file is fetched again once and is then right', async () => {
    const big = hub.files[3];
    hub.faults.set(big.path, { corrupt: { times: 1 } });
    await run();
    assertAllFiles();
    const gets = cdnGets(big.path);
    assert.strictEqual(gets.length, 2);
    assert.strictEqual(gets[1].range, undefined, 'the re-fetch must start from scratch');
  });

  it('a file corrupted on every fetch fails naming the file, and no corrupted copy remains', async () => {
    const big = hub.files[3];
    hub.faults.set(big.path, { corrupt: { times: Infinity } });
    await assert.rejects(run(), /model-00002-of-00002\.safetensors arrived corrupted twice \(sha256 [0-9a-f]{64}, the hub says [0-9a-f]{64}\)/);
    assert.ok(!fs.existsSync(path.join(dest(), big.path)));
    assert.ok(!fs.existsSync(path.join(dest(), `${big.path}.part`)));
  });

  it('a small (non-LFS) file is checked against its git blob id', async () => {
    hub.faults.set('config.json', { corrupt: { times: Infinity } });
    await assert.rejects(run(), /config\.json arrived corrupted twice \(gitBlob/);
    assert.ok(!fs.existsSync(path.join(dest(), 'config.json')));
  });

  it('a server that ignores Range sends the whole file and the part starts over', async () => {
    const big = hub.files[2];
    hub.faults.set(big.path, { ignoreRange: true });
    fs.mkdirSync(dest(), { recursive: true });
    fs.writeFileSync(path.join(dest(), `${big.path}.part`), Buffer.alloc(1000, 7)); // wrong bytes: must be overwritten
    await run();
    assertAllFiles();
  });

  it('an existing file with the wrong content is replaced', async () => {
    fs.mkdirSync(dest(), { recursive: true });
    fs.writeFileSync(path.join(dest(), 'config.json'), '{"stale":true}');
    const r = await run();
    assert.strictEqual(r.reused, 0);
    assertAllFiles();
  });

  it('cancels promptly, keeps the part, and the next run resumes it', async () => {
    const big = hub.files[2];
    hub.faults.set(big.path, { drop: { afterBytes: 1 << 20, times: 1 } }); // a slow spot: cancel lands mid-file
    const ac = new AbortController();
    let startOfFile = -1;
    await assert.rejects(run({
      signal: ac.signal, retryDelayMs: 60000,
      onProgress: (p) => {
        if (p.file !== big.path) return;
        if (startOfFile < 0) startOfFile = p.doneBytes; // the bytes of the files before it
        else if (p.doneBytes > startOfFile) ac.abort();
      },
    }), DownloadCancelled);
    const part = path.join(dest(), `${big.path}.part`);
    assert.ok(fs.existsSync(part));
    assert.ok(!fs.existsSync(path.join(dest(), big.path)));
    await run();
    assertAllFiles();
    assert.ok(cdnGets(big.path).slice(1).every((q) => q.range !== undefined), 'the rerun must resume with Range');
  });

  it('cancel while a large file is being checked stops at once', async () => {
    const ac = new AbortController();
    await assert.rejects(run({ signal: ac.signal, onProgress: (p) => { if (p.phase === 'verifying' && p.file === hub.files[2].path) ac.abort(); } }),
      DownloadCancelled);
    assert.ok(fs.existsSync(path.join(dest(), `${hub.files[2].path}.part`)), 'the complete but unchecked part must be kept');
  });

  it('a local write failure is not retried and names the file', async () => {
    fs.mkdirSync(path.join(dest(), `${hub.files[2].path}.part`), { recursive: true }); // a folder where the part must go
    await assert.rejects(run(), (e: Error) => e instanceof HubError && /cannot write .*model-00001-of-00002\.safetensors\.part/.test(e.message));
    assert.ok(cdnGets(hub.files[2].path).length <= 1, 'a local write failure must not be retried');
  });

  it('a private repository: clear error without a token; with one, the token never goes to the CDN', async () => {
    hub.requiredToken = 'hf_secret';
    await assert.rejects(run(), (e: Error) => e instanceof HubAuthError && /id is wrong, or it is private or gated/.test(e.message) && /HF_TOKEN/.test(e.message));
    hub.requests.length = 0;
    await run({ token: 'hf_secret' });
    assertAllFiles();
    assert.ok(hub.requests.filter((q) => q.server === 'hub').every((q) => q.authorization === 'Bearer hf_secret'));
    const cdn = hub.requests.filter((q) => q.server === 'cdn');
    assert.ok(cdn.length > 0 && cdn.every((q) => q.authorization === undefined), 'the token leaked to another origin');
  });

  it('a repository or revision the hub does not know is a 404 naming it', async () => {
    await assert.rejects(run({ repo: 'test-org/nope' }), /test-org\/nope was not found on the hub/);
  });

  it('the endpoint comes from the option, else HF_ENDPOINT, else huggingface.co', async () => {
    assert.strictEqual(resolveEndpoint('http://mirror.local/', {}), 'http://mirror.local');
    assert.strictEqual(resolveEndpoint(undefined, { HF_ENDPOINT: 'https://hf-mirror.example' }), 'https://hf-mirror.example');
    assert.strictEqual(resolveEndpoint('', {}), 'https://huggingface.co');
    assert.throws(() => resolveEndpoint('ftp://x', {}), /must be an http\(s\) URL/);
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = hub.hubUrl;
    try {
      const l = await listRepo(REPO, 'main', { endpoint: resolveEndpoint() });
      assert.strictEqual(l.files.length, 5);
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });

  it('rejects repository ids and listed paths that could escape the folder', () => {
    assert.strictEqual(checkRepoId(' YuWangX/mplus-8b '), 'YuWangX/mplus-8b');
    for (const bad of ['mplus-8b', '../x/y', 'a/b/c', 'a/..', 'https://huggingface.co/a/b']) {
      assert.throws(() => checkRepoId(bad), /not a Hugging Face model id/, bad);
    }
    for (const p of ['../x', '/etc/passwd', 'a/../../b', 'a\\b', '']) assert.ok(!safeRelPath(p), p);
    assert.ok(safeRelPath('sub dir/notes.md'));
  });
});
