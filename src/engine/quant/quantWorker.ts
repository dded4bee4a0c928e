/**
 * Worker-thread entry of quantizeOffThread.ts: checks or builds one quantized-weights cache and
 * reports logs, per-tensor progress and the checked cache (or the error) to the parent.
 */
import { parentPort, workerData } from 'worker_threads';
import { Checkpoint } from '../../model/checkpoint';
import { Precision } from './precision';
import { ensureQuantCache } from './weightCache';

export interface QuantJob {
  dir: string;
  precision: Precision;
  block: number;
  root?: string;
}

export type QuantMessage =
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'progress'; done: number; total: number; name: string }
  /** The cache file being checked or built (its temporary files are the parent's to remove if it stops this worker). */
  | { type: 'file'; file: string }
  | { type: 'done'; cache: ReturnType<typeof ensureQuantCache> }
  | { type: 'error'; message: string };

const port = parentPort;
if (!port) throw new Error('quantWorker.js runs as a worker thread (quantizeOffThread.ts)');
const post = (m: QuantMessage) => port.postMessage(m);
const job = workerData as QuantJob;
try {
  const ckpt = Checkpoint.open(job.dir);
  try {
    const cache = ensureQuantCache(ckpt, {
      precision: job.precision, block: job.block, root: job.root,
      log: (level, message) => post({ type: 'log', level, message }),
      progress: (done, total, name) => post({ type: 'progress', done, total, name }),
      onFile: (file) => post({ type: 'file', file }),
    });
    post({ type: 'done', cache });
  } finally {
    ckpt.close();
  }
} catch (e) {
  post({ type: 'error', message: (e as Error).message });
}
