/**
 * A tensor larger than 2 GiB loads and reads back exactly. mplus-8b's θ ([32, 10240, 4096] bf16,
 * 2.68 GB) once failed at open with "length out of range" (a 32-bit read length). The file here
 * is sparse: only a few marker values are written, so the test costs disk blocks for those alone.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { TensorFiles } from '../../src/model/safetensors';
import { rmDir, tmpDir } from '../helpers/tmp';

// [9, 16384, 8192] bf16 = 9 × 2^28 bytes = 2.25 GiB: the last "layer" starts past 2 GiB.
const SHAPE = [9, 16384, 8192];
const LAYER = SHAPE[1] * SHAPE[2];
const NUMEL = SHAPE[0] * LAYER;
const BF16_ONE = 0x3f80; // 1.0
const BF16_MINUS_TWO = 0xc000; // -2.0
const BF16_HALF = 0x3f00; // 0.5

/** Element index → bf16 bits of the few non-zero values (the rest of the file is a hole). */
const MARKERS = new Map<number, number>([
  [0, BF16_ONE],
  [2 ** 30 - 1, BF16_MINUS_TWO], // the last element before byte 2^31
  [2 ** 30, BF16_HALF], // the first element at byte 2^31
  [8 * LAYER + 12345, BF16_MINUS_TWO],
  [NUMEL - 1, BF16_ONE],
]);

function writeSparseCheckpoint(dir: string): string {
  const header = Buffer.from(JSON.stringify({ memory: { dtype: 'BF16', shape: SHAPE, data_offsets: [0, NUMEL * 2] } }));
  const padded = Buffer.concat([header, Buffer.alloc((8 - ((8 + header.length) % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, padded, 0, padded.length, 8);
    const data = 8 + padded.length;
    fs.ftruncateSync(fd, data + NUMEL * 2);
    for (const [i, bits] of MARKERS) {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(bits);
      fs.writeSync(fd, b, 0, 2, data + i * 2);
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

const bf16ToF32 = (bits: number) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

describe('checkpoint tensors larger than 2 GiB', function () {
  this.timeout(120_000);
  let dir: string;
  let files: TensorFiles;
  before(() => {
    dir = tmpDir('mplus-big-');
    writeSparseCheckpoint(dir);
    files = TensorFiles.open(dir);
  });
  after(() => {
    files?.close();
    rmDir(dir);
  });

  it('opens and reports the full size', () => {
    const t = files.info('memory');
    assert.deepStrictEqual(t.shape, SHAPE);
    assert.strictEqual(t.byteLength, NUMEL * 2);
    assert.ok(t.byteLength > 2 ** 31);
  });

  it('reads the whole tensor back exactly, across the 2 GiB boundary', () => {
    const bytes = files.readBytes('memory');
    assert.strictEqual(bytes.byteLength, NUMEL * 2);
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, NUMEL);
    for (const [i, bits] of MARKERS) assert.strictEqual(u16[i], bits, `element ${i}`);
    // The holes read as zeros: spot-check around each marker.
    for (const i of MARKERS.keys()) {
      for (const j of [i - 1, i + 1]) if (j >= 0 && j < NUMEL && !MARKERS.has(j)) assert.strictEqual(u16[j], 0, `element ${j}`);
    }
  });

  it('reads one layer past 2 GiB as float32 without converting the rest', () => {
    const layer = files.readSliceF32('memory', 8 * LAYER, LAYER);
    assert.strictEqual(layer.length, LAYER);
    assert.strictEqual(layer[12345], -2);
    assert.strictEqual(layer[LAYER - 1], 1);
    assert.strictEqual(layer[0], 0.5); // element 2^30, the first at byte 2^31
    assert.strictEqual(layer[1], 0);
  });

  it('reads rows that straddle the boundary', () => {
    const width = SHAPE[2];
    const row = (2 ** 30) / width; // the first row at byte 2^31
    const rows = files.readRowsF32('memory', [row - 1, row]);
    assert.strictEqual(rows[width - 1], bf16ToF32(BF16_MINUS_TWO));
    assert.strictEqual(rows[width], bf16ToF32(BF16_HALF));
  });

  it('refuses a read outside the tensor', () => {
    assert.throws(() => files.readSliceF32('memory', NUMEL - 1, 2), /read outside tensor/);
  });
});
