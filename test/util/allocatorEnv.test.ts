/**
 * The allocator settings a process running the engine starts with (src/util/allocatorEnv.ts):
 * what the rule gives, and that a real sidecar process and a real `mplus bench` really get them.
 */
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSidecar } from '../../src/sidecar/client';
import { allocatorEnv } from '../../src/util/allocatorEnv';

const ROOT = path.join(__dirname, '..', '..', '..');

/** The environment of a running process (Linux). */
function environOf(pid: number): Record<string, string> {
  const raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
  return Object.fromEntries(raw.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

describe('allocator settings of processes that run the engine', function () {
  this.timeout(60000);

  it('on Linux: two arenas and a fixed 1 MiB mmap threshold, unless already set; nothing elsewhere', () => {
    assert.deepStrictEqual(allocatorEnv({}, 'linux'), { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' });
    assert.deepStrictEqual(allocatorEnv({ MALLOC_ARENA_MAX: '8' }, 'linux'), { MALLOC_MMAP_THRESHOLD_: '1048576' });
    assert.deepStrictEqual(allocatorEnv({ MALLOC_ARENA_MAX: '8', MALLOC_MMAP_THRESHOLD_: '0' }, 'linux'), {});
    assert.deepStrictEqual(allocatorEnv({}, 'darwin'), {});
    assert.deepStrictEqual(allocatorEnv({}, 'win32'), {});
  });

  it('a spawned sidecar starts with them; a value in the caller’s environment wins', async function () {
    if (process.platform !== 'linux') this.skip();
    for (const [env, want] of [[{}, '2'], [{ MALLOC_ARENA_MAX: '4' }, '4']] as const) {
      const h = spawnSidecar({ env });
      try {
        const e = environOf(h.process.pid!);
        assert.strictEqual(e.MALLOC_ARENA_MAX, want);
        assert.strictEqual(e.MALLOC_MMAP_THRESHOLD_, '1048576');
      } finally {
        h.process.kill('SIGKILL');
        await h.exited;
      }
    }
  });

  it('`mplus bench` restarts itself with them (it runs the engine in-process)', function () {
    if (process.platform !== 'linux') this.skip();
    // an unknown benchmark fails fast, after the restart; a preloaded script (NODE_OPTIONS reaches
    // both processes) prints what each process's environment holds when it exits
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-allocenv-'));
    const probe = path.join(dir, 'probe.js');
    fs.writeFileSync(probe, `process.on('exit', () => console.error('ENV ' + process.env.MALLOC_ARENA_MAX + ' ' + process.env.MALLOC_MMAP_THRESHOLD_));\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${probe}` };
    delete env.MALLOC_ARENA_MAX;
    delete env.MALLOC_MMAP_THRESHOLD_;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'mplus.js'), 'bench', 'no-such-bench'], { env, encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.match(r.stderr, /unknown benchmark/);
    assert.match(r.stderr, /ENV 2 1048576/, 'the restarted process runs with the settings');
    assert.strictEqual(r.status, 2, 'the usage error’s exit code comes through the restart');
  });
});
