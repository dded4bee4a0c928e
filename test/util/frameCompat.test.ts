/**
 * The shared frame code (src/util/framedFile.ts) keeps the three formats byte for byte: files in
 * test/data/formats/ were written by the writers before it existed (commit 2d8dfdc, inputs in
 * formatSamples.ts), so stores and quantized-weights caches on users' disks still open. Today's
 * writers must give the same bytes, and today's readers must read those files back exactly; and
 * a damaged head is refused by each format with its own error, naming what is wrong.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { readCacheFile } from '../../src/engine/quant/cacheFile';
import { roundTrip } from '../../src/memory/store/codec';
import { StoreCorruptError } from '../../src/memory/store/errors';
import { SegmentReader } from '../../src/memory/store/segment';
import { unpackArrays } from '../../src/memory/store/stateFile';
import { REPO_ROOT, rmDir, tmpDir } from '../helpers/tmp';
import { CACHE_BYTES, CACHE_KEY, SEGMENT_HEADER, SEGMENT_KEYS, SEGMENT_VALUES, STATE_ARRAYS, STATE_META, writeFormatSamples } from './formatSamples';

const OLD = path.join(REPO_ROOT, 'test', 'data', 'formats');
/** The manifest entry the old writer returned for layer2.seg. */
const OLD_SEGMENT = { file: 'layer2.seg', layer: 2, rows: 3, size: 132, headSha256: '3040036d06cf0defd83ff49da636e5eb2b9b215bc63825f4e29823c1266e3b6c' };

describe('binary formats written before the shared frame code', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir('frames')));
  afterEach(() => rmDir(dir));

  it('today\'s writers give the old bytes (segment, quantized-weights cache, state file)', () => {
    const now = writeFormatSamples(dir);
    assert.deepStrictEqual(now.segment, OLD_SEGMENT);
    for (const f of [now.segmentFile, now.cacheFile, now.stateFile]) {
      assert.ok(fs.readFileSync(f).equals(fs.readFileSync(path.join(OLD, path.basename(f)))), `${path.basename(f)} differs from the old writer's`);
    }
  });

  it('today\'s readers open the old files and read them back exactly', () => {
    const seg = new SegmentReader(path.join(OLD, 'layer2.seg'), OLD_SEGMENT, { keepKeys: true });
    try {
      assert.deepStrictEqual(seg.header, SEGMENT_HEADER);
      assert.deepStrictEqual(Array.from(seg.keys), Array.from(SEGMENT_KEYS));
      const got = new Float32Array(12);
      seg.readRows([2, 0, 1], got, [2, 0, 1]);
      assert.deepStrictEqual(Array.from(got), Array.from(roundTrip('bf16', SEGMENT_VALUES, 4)));
    } finally {
      seg.close();
    }

    const file = path.join(OLD, 'weights.mpquant');
    const c = readCacheFile(file, CACHE_KEY);
    assert.ok('header' in c, 'reason' in c ? c.reason : '');
    assert.strictEqual(c.dataStart, 4096);
    const e = c.header.tensors['model.layers.0.mlp.up_proj.weight'];
    assert.ok(e.kind === 'nbits');
    const bytes = fs.readFileSync(file);
    assert.deepStrictEqual(Array.from(bytes.subarray(c.dataStart + e.blob[0], c.dataStart + e.blob[0] + e.blob[1])), Array.from(CACHE_BYTES[0]));
    assert.deepStrictEqual(Array.from(bytes.subarray(c.dataStart + e.scales[0], c.dataStart + e.scales[0] + e.scales[1])), Array.from(CACHE_BYTES[1]));

    const st = unpackArrays('state.bin', fs.readFileSync(path.join(OLD, 'state.bin')));
    assert.deepStrictEqual(st.meta, STATE_META);
    assert.deepStrictEqual(Array.from(st.f64('0.stmAges')), Array.from(STATE_ARRAYS[0].data));
    assert.deepStrictEqual(Array.from(st.f32('0.stmRef')), Array.from(STATE_ARRAYS[1].data));
    assert.deepStrictEqual(Array.from(st.i32('0.stmSrc')), Array.from(STATE_ARRAYS[2].data));
  });

  it('a damaged head: each format refuses it its own way, saying what is wrong', () => {
    const damaged = (name: string, edit: (b: Buffer) => Buffer) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, edit(Buffer.from(fs.readFileSync(path.join(OLD, name)))));
      return f;
    };
    const magic = (b: Buffer) => (b.write('XXXX', 0, 'latin1'), b);
    const length = (b: Buffer) => (b.writeUInt32LE(b.length, 8), b);
    const json = (b: Buffer) => (b.write('!', 12, 'latin1'), b);

    const seg = (edit: (b: Buffer) => Buffer) => () => new SegmentReader(damaged('layer2.seg', edit), OLD_SEGMENT);
    assert.throws(seg(magic), (e: Error) => e instanceof StoreCorruptError && /not a segment file \(bad magic\)/.test(e.message));
    assert.throws(seg(length), (e: Error) => e instanceof StoreCorruptError && /header length 132 does not fit the 132-byte file/.test(e.message));
    assert.throws(seg(json), (e: Error) => e instanceof StoreCorruptError && /header is not valid JSON/.test(e.message));

    const cache = (edit: (b: Buffer) => Buffer) => readCacheFile(damaged('weights.mpquant', edit), CACHE_KEY);
    assert.deepStrictEqual(cache(magic), { reason: 'not a quantized-weights cache (bad magic)' });
    assert.deepStrictEqual(cache(length), { reason: 'header length 4232 does not fit the 4232-byte file (truncated?)' });
    assert.deepStrictEqual(cache(json), { reason: 'its header is not valid JSON' });
    assert.deepStrictEqual(cache((b) => b.subarray(0, 7)), { reason: '7 bytes is too short to be a quantized-weights cache (truncated?)' });

    const state = (edit: (b: Buffer) => Buffer) => () => unpackArrays('state.bin', edit(Buffer.from(fs.readFileSync(path.join(OLD, 'state.bin')))));
    assert.throws(state(magic), (e: Error) => e instanceof StoreCorruptError && /state\.bin.*not a state file \(bad magic\)/.test(e.message));
    assert.throws(state(length), (e: Error) => e instanceof StoreCorruptError && /header length 296 does not fit/.test(e.message));
  });
});
