/**
 * One queue for the accelerator. Work takes a lease on the device for one unit at a time (an
 * injection, a whole answer, a commit); when a lease is released the waiting unit with the
 * highest priority goes next, FIFO within a priority. A question therefore preempts ingestion
 * between two injections, and never waits for a whole repository.
 */
export type Priority = 'ask' | 'commit' | 'ingest';

const RANK: Record<Priority, number> = { ask: 0, commit: 1, ingest: 2 };

interface Waiter {
  rank: number;
  seq: number;
  resolve: (lease: Lease) => void;
}

export interface Lease {
  release(): void;
}

export class DeviceScheduler {
  private busy = false;
  private seq = 0;
  private readonly waiters: Waiter[] = [];
  /** Which priority holds the device now (for status). */
  holder: Priority | null = null;

  /** Resolves when the device is ours; call release() exactly once. */
  acquire(priority: Priority): Promise<Lease> {
    return new Promise((resolve) => {
      this.waiters.push({ rank: RANK[priority], seq: this.seq++, resolve: (l) => { this.holder = priority; resolve(l); } });
      this.pump();
    });
  }

  /** Runs `fn` holding a lease. */
  async with<T>(priority: Priority, fn: () => Promise<T>): Promise<T> {
    const lease = await this.acquire(priority);
    try {
      return await fn();
    } finally {
      lease.release();
    }
  }

  /** Number of units waiting at a priority. */
  waiting(priority?: Priority): number {
    return priority ? this.waiters.filter((w) => w.rank === RANK[priority]).length : this.waiters.length;
  }

  private pump(): void {
    if (this.busy || this.waiters.length === 0) return;
    let best = 0;
    for (let i = 1; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      const b = this.waiters[best];
      if (w.rank < b.rank || (w.rank === b.rank && w.seq < b.seq)) best = i;
    }
    const [next] = this.waiters.splice(best, 1);
    this.busy = true;
    let released = false;
    next.resolve({
      release: () => {
        if (released) return;
        released = true;
        this.busy = false;
        this.holder = null;
        this.pump();
      },
    });
  }
}
