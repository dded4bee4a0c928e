/** "Know before you start": the requirement lines and their warnings (requirements.ts) and the estimate they read (estimate.ts). */
import * as assert from 'assert';
import { requirementLines, roughDuration } from '../../src/extension/requirements';
import { estimateFeeding, sampleBytesPerToken } from '../../src/sidecar/estimate';

const GiB = 2 ** 30;

describe('extension: requirements check', () => {
  const estimate = estimateFeeding({
    files: 1200, bytes: 12_000_000, bytesPerToken: 4, fedShare: 0, tokensPerInjection: 16, tokensPerChunk: 100,
    rowBytes: 32 * (4096 * 2 + 4 * 128 + 28), maxRows: 150_000, thetaBytes: 32 * 1024 * 4096 * 2, tokensPerSecond: null,
  });

  it('the estimate: tokens from bytes, the store capped by the capacity policy, time only from a measured rate', () => {
    assert.strictEqual(estimate.tokens, 3_000_000);
    // 30,000 chunks × 16 rows = 480,000 rows, capped at 150,000
    assert.strictEqual(estimate.storeBytes, 150_000 * 32 * (8192 + 512 + 28) + 32 * 1024 * 4096 * 2);
    assert.strictEqual(estimate.feedSeconds, null);
    const half = estimateFeeding({ ...{ files: 10, bytes: 4000, bytesPerToken: 4, fedShare: 0.5, tokensPerInjection: 16, tokensPerChunk: 100, rowBytes: 1, maxRows: 1e9, thetaBytes: 0 }, tokensPerSecond: 50 });
    assert.strictEqual(half.feedSeconds, 10, '500 tokens left at 50 tokens/s');
    assert.strictEqual(sampleBytesPerToken(['abcdefgh', 'abcd'], (t) => t.length / 4), 4);
    assert.strictEqual(sampleBytesPerToken([], () => 0), 4, 'nothing read: the English-text default');
  });

  it('says the model, the device, the workspace, its disk use and reading time; warns when memory or disk do not fit', () => {
    const ok = requirementLines({
      modelBytes: 16 * GiB, device: { requested: 'auto', used: 'cuda', description: 'CUDA: NVIDIA H200', memoryBytes: 139 * GiB }, deviceSetting: 'auto',
      machine: { totalMemBytes: 64 * GiB, freeMemBytes: 40 * GiB, freeDiskBytes: 500 * GiB }, estimate, rememberedRate: 1000,
    });
    assert.deepStrictEqual(ok.warnings, []);
    assert.deepStrictEqual(ok.lines, [
      'Model: 16.0 GB of weights; this machine has 64.0 GB of memory (40.0 GB free).',
      'Runs on: CUDA: NVIDIA H200.',
      'This workspace: 1,200 files, about 3,000,000 tokens of text.',
      `Its memory: about ${(estimate.storeBytes / GiB).toFixed(1)} GB on disk (500.0 GB free); reading it takes about 50 minutes.`,
    ]);
    const tight = requirementLines({
      modelBytes: 16 * GiB, device: null, deviceSetting: 'auto',
      machine: { totalMemBytes: 16 * GiB, freeMemBytes: 8 * GiB, freeDiskBytes: 1 * GiB }, estimate, rememberedRate: null,
    });
    assert.strictEqual(tight.warnings.length, 2, tight.warnings.join('\n'));
    assert.match(tight.warnings[0], /more than this machine has/);
    assert.match(tight.warnings[1], /needs about .* of disk and 1\.0 GB is free/);
    assert.match(tight.lines.at(-1)!, /a time M\+ measures once it starts/);
    assert.match(tight.lines[1], /the GPU when one is usable, else the CPU/);
  });

  it('reading times in words, "1 second" singular', () => {
    assert.strictEqual(roughDuration(0.4), '1 second');
    assert.strictEqual(roughDuration(42), '42 seconds');
    assert.strictEqual(roughDuration(600), '10 minutes');
    assert.strictEqual(roughDuration(3 * 3600), '3.0 hours');
  });
});
