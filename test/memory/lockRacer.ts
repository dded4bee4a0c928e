/**
 * One racer of the lock test: for round r = 0..rounds-1, spins until `<base>/go-<r>` exists, then
 * tries StoreLock.acquire(`<base>/r<r>`) once and prints `r win` or `r lose` (holding a won lock
 * until `<base>/done` appears, as an open store does).
 */
import * as fs from 'fs';
import * as path from 'path';
import { StoreLock } from '../../src/memory/store/lock';

const [base, roundsArg] = process.argv.slice(2);
const held: StoreLock[] = [];
for (let r = 0; r < Number(roundsArg); r++) {
  while (!fs.existsSync(path.join(base, `go-${r}`))) { /* spin: start together */ }
  try {
    held.push(StoreLock.acquire(path.join(base, `r${r}`)));
    process.stdout.write(`${r} win\n`);
  } catch (e) {
    process.stdout.write(`${r} lose ${(e as Error).name}\n`);
  }
}
// Hold the won locks until every racer is done: a lock whose owner exited is stale, rightly taken.
while (!fs.existsSync(path.join(base, 'done'))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
