/**
 * One writer per store: an exclusive lock file holding the owner's pid and host. A lock whose
 * process is gone (same host, pid not alive) is stale and taken over: it is renamed aside (only
 * one racer's rename of it can succeed), then the lock is created again with O_EXCL, so two
 * processes racing for a stale lock cannot both win.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StoreLockedError } from './errors';

interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return null;
  }
}

export class StoreLock {
  private constructor(readonly file: string) {}

  static acquire(dir: string): StoreLock {
    const file = path.join(dir, 'lock');
    const mine: LockInfo = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
        return new StoreLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = readLock(file);
      if (held && held.pid === process.pid && held.host === mine.host) {
        throw new StoreLockedError(file, `this process (pid ${held.pid}) already`);
      }
      // A lock we cannot parse was torn by a crash while being written: stale.
      const stale = !held || (held.host === mine.host && !alive(held.pid));
      if (!stale) throw new StoreLockedError(file, `pid ${held!.pid} on ${held!.host} since ${held!.since}`);
      const aside = `${file}.stale.${process.pid}`;
      try {
        fs.renameSync(file, aside);
      } catch {
        continue; // someone else moved it first: retry the exclusive create
      }
      const moved = readLock(aside);
      if (moved && held && (moved.pid !== held.pid || moved.since !== held.since)) {
        // We moved a fresh lock that replaced the stale one meanwhile: put it back, give up.
        fs.renameSync(aside, file);
        throw new StoreLockedError(file, `pid ${moved.pid} on ${moved.host}`);
      }
      fs.rmSync(aside, { force: true });
    }
    throw new StoreLockedError(file, 'another process racing for it');
  }

  release(): void {
    const held = readLock(this.file);
    if (held && held.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
