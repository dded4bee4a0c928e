/**
 * The feeding estimate samples the workspace's bytes per token by tokenizing some of its files;
 * status calls reuse the sample until the files change. The key must notice an edit that keeps
 * the file count (the usual case: a file saved), not only files added or removed.
 */
import * as assert from 'assert';
import { BytesPerTokenCache } from '../../src/sidecar/estimate';

describe('feeding estimate: bytes per token resampled when the files change', () => {
  const files = () => [{ size: 1200, mtimeMs: 1_000 }, { size: 800, mtimeMs: 2_000 }, { size: 40, mtimeMs: 1_500 }];

  it('an unchanged workspace is sampled once', () => {
    const cache = new BytesPerTokenCache();
    let samples = 0;
    const sample = () => (++samples, 3.5);
    assert.strictEqual(cache.ratioFor(files(), sample), 3.5);
    assert.strictEqual(cache.ratioFor(files(), sample), 3.5);
    assert.strictEqual(samples, 1);
  });

  it('same file count: an edit (bytes or only the time) or a swap of files resamples', () => {
    const cache = new BytesPerTokenCache();
    let ratio = 3;
    const sample = () => ratio;
    assert.strictEqual(cache.ratioFor(files(), sample), 3);

    ratio = 1.25; // e.g. a source file rewritten as a long base64 blob
    const grown = files();
    grown[2] = { size: 90_000, mtimeMs: 3_000 };
    assert.strictEqual(cache.ratioFor(grown, sample), 1.25, 'same count, more bytes');

    ratio = 5;
    const retouched = grown.map((f) => ({ ...f }));
    retouched[0].mtimeMs = 4_000; // same size, saved again with other text
    assert.strictEqual(cache.ratioFor(retouched, sample), 5, 'same count and bytes, newer time');

    ratio = 2;
    const swapped = [retouched[0], retouched[1], { size: 90_000, mtimeMs: 4_500 }]; // one file deleted, one added
    assert.strictEqual(cache.ratioFor(swapped, sample), 2, 'same count and bytes, another file');

    ratio = 9;
    assert.strictEqual(cache.ratioFor(swapped, sample), 2, 'and then reused');
  });
});
