/**
 * The store's write lock between real processes: four racers on a new store, and on a store whose
 * lock was left by a dead process, many rounds: exactly one winner each round. A zombie's lock is
 * stale at once.
 */
import * as assert from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StoreLock, processAlive } from '../../src/memory/store/lock';
import { StoreLockedError } from '../../src/memory/store/errors';
import { rmDir, tmpDir } from '../helpers/tmp';

const RACERS = 4;
const ROUNDS = 40;

/** A pid that no longer exists. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

async function race(base: string, prepare: (dir: string) => void): Promise<Map<number, string[]>> {
  for (let r = 0; r < ROUNDS; r++) {
    fs.mkdirSync(path.join(base, `r${r}`));
    prepare(path.join(base, `r${r}`));
  }
  const outs: string[] = [];
  let lines = 0;
  const kids = Array.from({ length: RACERS }, () => {
    const c = spawn(process.execPath, [path.join(__dirname, 'lockRacer.js'), base, String(ROUNDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      lines += d.split('\n').length - 1;
      if (lines === RACERS * ROUNDS) fs.writeFileSync(path.join(base, 'done'), '');
    });
    return new Promise<void>((res) => c.on('exit', () => { outs.push(out); res(); }));
  });
  // every racer is spinning on round 0's flag before it is set (node startup takes a while)
  await new Promise((r) => setTimeout(r, 1500));
  for (let r = 0; r < ROUNDS; r++) {
    fs.writeFileSync(path.join(base, `go-${r}`), '');
    await new Promise((res) => setTimeout(res, 30));
  }
  await Promise.all(kids);
  const byRound = new Map<number, string[]>();
  for (const line of outs.join('').trim().split('\n')) {
    const [r, what] = line.split(' ');
    byRound.set(Number(r), [...(byRound.get(Number(r)) ?? []), what]);
  }
  return byRound;
}

describe('store lock between processes', function () {
  this.timeout(120000);
  let base: string;
  beforeEach(() => (base = tmpDir('lockrace')));
  afterEach(() => rmDir(base));

  const check = (byRound: Map<number, string[]>) => {
    assert.strictEqual(byRound.size, ROUNDS);
    const bad = [...byRound].filter(([, w]) => w.length !== RACERS || w.filter((x) => x === 'win').length !== 1);
    assert.deepStrictEqual(bad, [], `rounds without exactly one winner of ${RACERS}`);
  };

  it(`${RACERS} processes opening a new store at once: exactly one wins, ${ROUNDS} rounds`, async () => {
    check(await race(base, () => undefined));
  });

  it(`${RACERS} processes taking over a dead writer's lock at once: exactly one wins, ${ROUNDS} rounds`, async () => {
    const pid = deadPid();
    check(await race(base, (dir) => fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid, host: os.hostname(), since: 'then' }))));
  });

  it("a zombie's lock is stale at once; a live process's lock is refused", async () => {
    // `sh` forks `true` and execs `sleep`, which never reaps it: `true` stays a zombie meanwhile.
    const sh = spawn('sh', ['-c', 'true & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const zombie = Number(await new Promise<string>((r) => sh.stdout!.once('data', (d) => r(String(d)))));
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.strictEqual(processAlive(zombie), false, 'a zombie is not alive');
      const dir = path.join(base, 'z');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: zombie, host: os.hostname(), since: 'then' }));
      const l = StoreLock.acquire(dir);
      l.release();
      assert.ok(!fs.existsSync(path.join(dir, 'lock')));
      fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: sh.pid, host: os.hostname(), since: 'now' }));
      assert.throws(() => StoreLock.acquire(dir), (e: Error) => e instanceof StoreLockedError && new RegExp(`pid ${sh.pid}`).test(e.message));
    } finally {
      sh.kill('SIGKILL');
    }
  });
});
