/**
 * One writer per store: an exclusive lock file holding the owner's pid, host and a random nonce.
 *
 * Taking it has no window: the lock's full content is written (and fsynced) to a private temp
 * file first, which is then hard-linked to `lock`. link() fails with EEXIST when `lock` exists,
 * atomically, so a `lock` file is always complete and exactly one racer's link succeeds.
 *
 * A lock whose owner is gone (same host; no such pid, or a zombie nobody reaped yet) is stale and
 * taken over. Breaking it is serialized by a second lock, `lock.break`, taken the same way: under
 * it, `lock` is read again and removed only if it is still the stale one (owners never remove a
 * lock but their own, and fresh locks are only ever linked, never renamed), then the lock is
 * linked for us. An unreadable `lock` (written by an older build, or a disk fault) counts as stale
 * once it is older than TORN_AFTER_MS.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StoreLockedError } from './errors';

interface LockInfo {
  pid: number;
  host: string;
  since: string;
  nonce?: string;
}

/** An unparsable lock file younger than this may be in the middle of an old-style write. */
const TORN_AFTER_MS = 5000;
/** A `lock.break` whose owner is alive is waited on this long at most. */
const BREAK_WAIT_MS = 3000;

/** Whether `pid` runs on this host: exists and is not a zombie (exited, waiting to be reaped). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ..." — comm may contain spaces or parentheses: the state is
    // the first field after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): kill(0) is all we know
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return j && typeof j.pid === 'number' && typeof j.host === 'string' ? j : null;
  } catch {
    return null;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Links a fully written, fsynced file with `info` to `target`; false when `target` exists. */
function linkExclusive(target: string, info: LockInfo): boolean {
  const tmp = `${target}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx');
  try {
    fs.writeSync(fd, JSON.stringify(info));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, target);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function sameLock(a: LockInfo | null, b: LockInfo | null): boolean {
  return !!a && !!b && a.pid === b.pid && a.host === b.host && a.since === b.since && a.nonce === b.nonce;
}

export class StoreLock {
  private constructor(readonly file: string, private readonly info: LockInfo) {}

  static acquire(dir: string): StoreLock {
    const file = path.join(dir, 'lock');
    const mine: LockInfo = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), nonce: crypto.randomBytes(8).toString('hex') };
    for (let attempt = 0; attempt < 5; attempt++) {
      if (linkExclusive(file, mine)) return new StoreLock(file, mine);
      const held = readLock(file);
      if (held && held.pid === process.pid && held.host === mine.host) {
        throw new StoreLockedError(file, `this process (pid ${held.pid}) already`);
      }
      if (held && (held.host !== mine.host || processAlive(held.pid))) {
        throw new StoreLockedError(file, `pid ${held.pid} on ${held.host} since ${held.since}`);
      }
      if (!held && !StoreLock.tornLongAgo(file)) {
        sleepSync(100); // an old-style lock being written, or one just removed: look again
        continue;
      }
      if (StoreLock.breakStale(file, held, mine)) return new StoreLock(file, mine);
    }
    const held = readLock(file);
    throw new StoreLockedError(file, held ? `pid ${held.pid} on ${held.host}` : 'another process racing for it');
  }

  private static tornLongAgo(file: string): boolean {
    try {
      return Date.now() - fs.statSync(file).mtimeMs > TORN_AFTER_MS;
    } catch {
      return false; // gone meanwhile: the next attempt links
    }
  }

  /** Under `lock.break`: removes `lock` if it is still `stale`, then links ours. */
  private static breakStale(file: string, stale: LockInfo | null, mine: LockInfo): boolean {
    const guard = `${file}.break`;
    const end = Date.now() + BREAK_WAIT_MS;
    while (!linkExclusive(guard, mine)) {
      const g = readLock(guard);
      // A breaker that died mid-break (or an unreadable old guard) leaves a stale guard: remove it.
      const dead = g ? g.host === mine.host && !processAlive(g.pid) : StoreLock.tornLongAgo(guard);
      if (dead) {
        if (!g || sameLock(readLock(guard), g)) fs.rmSync(guard, { force: true });
        continue;
      }
      if (Date.now() > end) return false;
      sleepSync(20);
    }
    try {
      const now = readLock(file);
      const stillStale = stale ? sameLock(now, stale) : now === null && fs.existsSync(file);
      if (stillStale) fs.rmSync(file, { force: true });
      return linkExclusive(file, mine);
    } finally {
      if (sameLock(readLock(guard), mine)) fs.rmSync(guard, { force: true });
    }
  }

  release(): void {
    if (sameLock(readLock(this.file), this.info)) fs.rmSync(this.file, { force: true });
  }
}
