/**
 * Quantized weights loaded without blocking the event loop: checking a cache hashes all of it and
 * building one quantizes every linear weight (minutes for an 8B checkpoint), so both run in a
 * worker thread (quantWorker.ts) while the process keeps answering its client (status, cancel,
 * shutdown). Only the cheap tensor table is made here, from the cache the worker checked.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { QuantJob, QuantMessage } from './quantWorker';
import { CheckedCache, QuantLoadOptions, QuantizedWeights, openQuantizedWeights } from './weightCache';

export function loadQuantizedWeightsOffThread(dir: string, o: QuantLoadOptions): Promise<QuantizedWeights> {
  const job: QuantJob = { dir, precision: o.precision, block: o.block, root: o.root };
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'quantWorker.js'), { workerData: job });
    let cache: CheckedCache | null = null;
    let failure: Error | null = null;
    worker.on('message', (m: QuantMessage) => {
      if (m.type === 'log') o.log?.(m.level, m.message);
      else if (m.type === 'progress') o.progress?.(m.done, m.total, m.name);
      else if (m.type === 'done') cache = m.cache;
      else failure = new Error(m.message);
    });
    worker.on('error', (e) => (failure ??= e));
    worker.on('exit', (code) => {
      if (cache) resolve(openQuantizedWeights(cache, o));
      else reject(failure ?? new Error(`quantizing ${dir} to ${o.precision}: the worker thread exited with code ${code}`));
    });
  });
}
