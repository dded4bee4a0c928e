/** Real processes in tests: is a pid gone (exited, or a zombie nobody reaped), wait for it. */
import * as fs from 'fs';

/** True when `pid` no longer runs: no such process, or a zombie (state Z in /proc/PID/stat). */
export function gone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Waits until `pid` is gone; false after `ms`. */
export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (gone(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return gone(pid);
}

/** Kills `pid` if it still runs (cleanup after a failed assertion). */
export function killIfAlive(pid: number | undefined): void {
  if (!pid || gone(pid)) return;
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}
