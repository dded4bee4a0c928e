/**
 * Gathering Θ rows from segment files: rows close together share one read (READ_WINDOW), and
 * that changes nothing else: the same values as decoding each row alone, whatever the order,
 * repeats, segment ends and value format; a damaged requested row is reported as that row; a
 * damaged row read only because it lies between requested ones is not an error.
 */
import * as assert from 'assert';
import * as path from 'path';
import fs = require('fs'); // the module object itself, so the read counter below sees every read
import { Rng } from '../../src/util/rng';
import { ValueFormat, roundTrip, rowBytes } from '../../src/memory/store/codec';
import { StoreCorruptError } from '../../src/memory/store/errors';
import { READ_WINDOW, ReadWindow, SegmentReader, writeSegment } from '../../src/memory/store/segment';
import { SegmentedRows } from '../../src/memory/store/segmentedRows';
import { rmDir, tmpDir } from '../helpers/tmp';

const D = 64;
const S = 4;
const LAYER = 3;
const SEG_ROWS = [300, 57]; // the second one short, so a window meets its end early

/** Counts fs.readSync calls while `f` runs (the real reads still happen). */
function countReads<T>(f: () => T): { value: T; reads: number } {
  const real = fs.readSync;
  let reads = 0;
  fs.readSync = ((...a: Parameters<typeof real>) => (reads++, real(...a))) as typeof real;
  try {
    return { value: f(), reads };
  } finally {
    fs.readSync = real;
  }
}

describe('memory store: Θ gather reads neighbouring rows together', () => {
  let dir: string;
  let readers: SegmentReader[];
  /** Every segment row's value as the store gives it back (encode → decode), per segment. */
  let expected: Float32Array[];

  function open(format: ValueFormat): void {
    const rng = new Rng(7);
    readers = [];
    expected = [];
    SEG_ROWS.forEach((n, id) => {
      const values = Float32Array.from({ length: n * D }, () => rng.float() * 4 - 2);
      const name = `seg-${LAYER}-${id}.bin`;
      const e = writeSegment(path.join(dir, name), name, { layer: LAYER, rows: n, width: D, keyWidth: S, format }, values, new Float32Array(n * S));
      readers.push(new SegmentReader(path.join(dir, name), e));
      expected.push(roundTrip(format, values, D));
    });
  }

  /** A table over both segments, interleaved (table row i → segment i % 2), plus `pending` rows in RAM. */
  function table(pending: Float32Array): { t: SegmentedRows; want: (i: number) => Float32Array } {
    const t = new SegmentedRows(D, (id) => readers[id]);
    const refs: Array<[number, number]> = [];
    for (let r = 0; r < Math.max(...SEG_ROWS); r++) for (let s = 0; s < SEG_ROWS.length; s++) if (r < SEG_ROWS[s]) refs.push([s, r]);
    t.refSeg = refs.map((x) => x[0]);
    t.refRow = refs.map((x) => x[1]);
    t.append(pending);
    const want = (i: number) => (i < refs.length ? expected[refs[i][0]].subarray(refs[i][1] * D, (refs[i][1] + 1) * D) : pending.subarray((i - refs.length) * D, (i - refs.length + 1) * D));
    return { t, want };
  }

  function flipByte(seg: number, row: number, format: ValueFormat): void {
    const file = readers[seg].path;
    const b = fs.readFileSync(file);
    const valuesAt = b.length - SEG_ROWS[seg] * (rowBytes(format, D) + S * 4 + 4);
    b[valuesAt + row * rowBytes(format, D) + 5] ^= 0x20;
    fs.writeFileSync(file, b);
  }

  beforeEach(() => (dir = tmpDir('gather')));
  afterEach(() => {
    for (const r of readers ?? []) r.close();
    rmDir(dir);
  });

  const windows: Array<[string, ReadWindow | undefined]> = [
    ['the default window', undefined],
    ['row by row', { gapBytes: 0, maxBytes: 0 }],
    ['reads of at most 3 rows', { gapBytes: 64 * 1024, maxBytes: 3 * 4 * D }],
    ['adjacent rows only', { gapBytes: 0, maxBytes: 1 << 20 }],
    ['one read per segment', { gapBytes: 1 << 30, maxBytes: 1 << 30 }],
  ];
  for (const format of ['f32', 'bf16', 'q8'] as ValueFormat[]) {
    it(`${format}: random index sets (unsorted, with repeats, with pending rows) give exactly the rows, under every window`, () => {
      open(format);
      const rng = new Rng(11);
      const pending = Float32Array.from({ length: 5 * D }, () => rng.float());
      const { t, want } = table(pending);
      for (let trial = 0; trial < 20; trial++) {
        const n = 1 + rng.int(trial < 10 ? 40 : t.count);
        const idx = Array.from({ length: n }, () => rng.int(t.count));
        if (trial % 3 === 0) idx.push(idx[0], idx[n >> 1]); // repeats
        for (const [name, w] of windows) {
          const got = t.gather(idx, w);
          idx.forEach((r, i) => assert.deepStrictEqual(got.subarray(i * D, (i + 1) * D), want(r), `${name}, trial ${trial}: slot ${i} (table row ${r})`));
        }
      }
    });
  }

  it('rows at segment ends, alone and in windows that reach the end, give exactly the rows', () => {
    open('bf16');
    const r = readers[1];
    const last = SEG_ROWS[1] - 1;
    for (const rows of [[last], [0], [last - 2, last], [0, last], [last, last - 1, 0]]) {
      for (const [name, w] of windows) {
        const got = new Float32Array(rows.length * D);
        r.readRows(rows, got, rows.map((_, i) => i), w);
        rows.forEach((row, i) => assert.deepStrictEqual(got.subarray(i * D, (i + 1) * D), expected[1].subarray(row * D, (row + 1) * D), `${name}: rows ${rows}`));
      }
    }
  });

  // New behaviour: these fail on the row-by-row reader (one read per row).
  it('neighbouring rows share one read: 64 adjacent rows, and rows with small gaps, in one read each', () => {
    open('bf16');
    const rb = rowBytes('bf16', D);
    const run = Array.from({ length: 64 }, (_, i) => 100 + i);
    const dst = new Float32Array(64 * D);
    assert.strictEqual(countReads(() => readers[0].readRows(run, dst, run.map((_, i) => i))).reads, 1);
    const gappy = [10, 12, 13, 15];
    assert.strictEqual(countReads(() => readers[0].readRows(gappy, dst, [0, 1, 2, 3])).reads, 1);
    assert.ok(READ_WINDOW.gapBytes >= rb && READ_WINDOW.maxBytes >= 64 * rb, 'the default window covers these cases');
    // A read never grows past its bound: at most 3 rows each.
    assert.strictEqual(countReads(() => readers[0].readRows(run, dst, run.map((_, i) => i), { gapBytes: 0, maxBytes: 3 * rb })).reads, 22);
  });

  it('a flipped byte in a requested row read through a shared window: that row’s checksum error, naming file, row and layer', () => {
    open('bf16');
    flipByte(0, 11, 'bf16');
    const { reads } = countReads(() => {
      assert.throws(() => readers[0].readRows([10, 11, 12], new Float32Array(3 * D), [0, 1, 2]), (e: Error) => {
        assert.ok(e instanceof StoreCorruptError);
        assert.ok(e.message.startsWith(`${readers[0].path}: row 11 of layer ${LAYER} fails its checksum (flipped bytes on disk). Rebuild the memory`), e.message);
        return true;
      });
    });
    assert.strictEqual(reads, 1, 'rows 10–12 were read together');
  });

  it('a flipped byte in a row read only because it lies between requested rows is not an error', () => {
    open('bf16');
    flipByte(0, 11, 'bf16');
    const got = new Float32Array(2 * D);
    const { reads } = countReads(() => readers[0].readRows([12, 10], got, [1, 0]));
    assert.strictEqual(reads, 1, 'row 11 was read through');
    assert.deepStrictEqual(got.subarray(0, D), expected[0].subarray(10 * D, 11 * D));
    assert.deepStrictEqual(got.subarray(D), expected[0].subarray(12 * D, 13 * D));
    // ...and it is still caught when asked for.
    assert.throws(() => readers[0].readRows([11], got, [0]), /row 11 of layer 3 fails its checksum/);
  });

  it('a keys-only segment (rows without value bytes) verifies, under every window', () => {
    readers = [];
    const e = writeSegment(path.join(dir, 'keys'), 'keys', { layer: LAYER, rows: 9, width: 0, keyWidth: S, format: 'f32' }, new Float32Array(0), new Float32Array(9 * S).fill(1));
    readers.push(new SegmentReader(path.join(dir, 'keys'), e));
    readers[0].verifyAll();
    for (const [, w] of windows) readers[0].readRows([8, 0, 3], new Float32Array(0), [0, 1, 2], w);
  });

  it('a segment cut short after open: the first row past the end is reported, the rows before it read', () => {
    open('bf16');
    const rb = rowBytes('bf16', D);
    const file = readers[0].path;
    const valuesAt = fs.statSync(file).size - SEG_ROWS[0] * (rb + S * 4 + 4);
    fs.truncateSync(file, valuesAt + 250 * rb + 7); // rows 0–249 whole, row 250 partial
    const got = new Float32Array(2 * D);
    readers[0].readRows([248, 249], got, [0, 1]);
    assert.deepStrictEqual(got.subarray(D), expected[0].subarray(249 * D, 250 * D));
    assert.throws(() => readers[0].readRows([249, 250, 251], new Float32Array(3 * D), [0, 1, 2]), /row 250 of layer 3 fails its checksum/);
  });
});
