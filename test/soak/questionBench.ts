/**
 * The longest accepted question on the small fixture: its limit (MPlusEngine.questionLimit), the
 * prefill time and the process's peak RSS, prefilled in blocks. Usage:
 *   node out/test/soak/questionBench.js [--tokens N]   (default: the limit for a 256-token answer)
 * Prints numbers; asserts nothing (BENCHMARKS.md records them).
 */
import { MPlusEngine } from '../../src/engine/mplus';
import { writeFixture } from '../../tools/fixture';
import { rmDir, tmpDir } from '../helpers/tmp';

async function main(): Promise<void> {
  const i = process.argv.indexOf('--tokens');
  const dir = tmpDir('qbench');
  try {
    writeFixture({ out: dir, preset: 'small', seed: 9, dtype: 'f32' });
    const e = await MPlusEngine.load(dir, { seed: 1 });
    try {
      const mem = e.initialMemory();
      for (let k = 0; k < 4; k++) await e.inject(mem, Array.from({ length: 200 }, (_, j) => 3000 + k * 200 + j));
      const lim = e.questionLimit(256);
      const m = i >= 0 ? Number(process.argv[i + 1]) : lim.tokens;
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const q = await e.prefill(mem, Array.from({ length: m }, (_, j) => 1000 + ((j * 7919) % 20000)));
      const ms = performance.now() - t0;
      const peak = process.resourceUsage().maxRSS * 1024;
      process.stdout.write(`question limit   ${lim.tokens} tokens (${lim.why})\n`);
      process.stdout.write(`prefill          ${m} tokens in ${(ms / 1000).toFixed(1)} s (${(m / (ms / 1000)).toFixed(0)} tokens/s), KV cache ${q.kv.length} layers × ${q.kv[0].k.dims[1]} positions\n`);
      process.stdout.write(`peak RSS         ${(peak / 2 ** 20).toFixed(0)} MiB (${(rss0 / 2 ** 20).toFixed(0)} MiB before the question)\n`);
    } finally {
      await e.close();
    }
  } finally {
    rmDir(dir);
  }
}

void main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
