/**
 * Quantized weights loaded without blocking the event loop: checking a cache hashes all of it and
 * building one quantizes every linear weight (minutes for an 8B checkpoint), so both run in a
 * worker thread (quantWorker.ts) while the process keeps answering its client (status, cancel,
 * shutdown). Only the cheap tensor table is made here, from the cache the worker checked.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { QuantJob, QuantMessage } from './quantWorker';
import { CheckedCache, QuantLoadOptions, QuantizedWeights, openQuantizedWeights } from './weightCache';

/**
 * `signal` stops the worker (a shutdown while quantizing): the promise rejects with
 * QuantizationCancelled and the half-written temporary file is removed.
 */
export function loadQuantizedWeightsOffThread(dir: string, o: QuantLoadOptions, signal?: AbortSignal): Promise<QuantizedWeights> {
  const job: QuantJob = { dir, precision: o.precision, block: o.block, root: o.root };
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new QuantizationCancelled(dir));
    const worker = new Worker(path.join(__dirname, 'quantWorker.js'), { workerData: job });
    let cache: CheckedCache | null = null;
    let failure: Error | null = null;
    let file: string | null = null;
    const abort = () => {
      failure = new QuantizationCancelled(dir);
      void worker.terminate();
    };
    signal?.addEventListener('abort', abort, { once: true });
    worker.on('message', (m: QuantMessage) => {
      if (m.type === 'log') o.log?.(m.level, m.message);
      else if (m.type === 'progress') o.progress?.(m.done, m.total, m.name);
      else if (m.type === 'file') file = m.file;
      else if (m.type === 'done') cache = m.cache;
      else failure = new Error(m.message);
    });
    worker.on('error', (e) => (failure ??= e));
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      if (cache && !(failure instanceof QuantizationCancelled)) return resolve(openQuantizedWeights(cache, o));
      if (file && failure instanceof QuantizationCancelled) removeOwnTemps(file);
      reject(failure ?? new Error(`quantizing ${dir} to ${o.precision}: the worker thread exited with code ${code}`));
    });
  });
}

export class QuantizationCancelled extends Error {
  constructor(dir: string) {
    super(`quantizing ${dir} was cancelled`);
  }
}

/** This process's temporary files of `file` (cacheFile.ts names them `<file>.tmp-<pid>-<random>`). */
function removeOwnTemps(file: string): void {
  const prefix = `${path.basename(file)}.tmp-${process.pid}-`;
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return; // no folder: nothing was written
  }
  for (const n of names) if (n.startsWith(prefix)) fs.rmSync(path.join(path.dirname(file), n), { force: true });
}
