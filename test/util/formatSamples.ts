/**
 * Small files in each of the three "magic · u32 length · JSON header · padding · data" formats
 * (a Θ segment, a quantized-weights cache, a state file), from fixed inputs through the formats'
 * public writers. test/data/formats/ holds what the writers of commit 2d8dfdc (before the frame
 * code was shared in src/util/framedFile.ts) wrote from these inputs; frameCompat.test.ts checks
 * today's writers give the same bytes and today's readers open those files.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CacheKey, Span, writeCacheFile } from '../../src/engine/quant/cacheFile';
import { SegmentEntry, SegmentHeader, writeSegment } from '../../src/memory/store/segment';
import { NamedArray, packArrays } from '../../src/memory/store/stateFile';

export const SEGMENT_HEADER: SegmentHeader = { layer: 2, rows: 3, width: 4, keyWidth: 2, format: 'bf16' };
export const SEGMENT_VALUES = Float32Array.from({ length: 12 }, (_, i) => (i - 5) * 0.375);
export const SEGMENT_KEYS = Float32Array.from({ length: 6 }, (_, i) => i * 1.5 - 2);

export const CACHE_KEY: CacheKey = {
  configHash: 'c'.repeat(16),
  weightFingerprint: 'f'.repeat(16),
  files: [{ name: 'model.safetensors', size: 123456, mtimeMs: 1700000000000 }],
  precision: 'int8',
  block: 32,
};
/** The cache's two data segments: a 100-byte nbits blob and 8 bytes of scales. */
export const CACHE_BYTES = [Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 255), Uint8Array.from({ length: 8 }, (_, i) => 200 + i)];

export const STATE_META = { updateStep: 17, note: 'θ' };
export const STATE_ARRAYS: NamedArray[] = [
  { name: '0.stmAges', kind: 'f64', data: Float64Array.from([1, 2.5, -3]) },
  { name: '0.stmRef', kind: 'f32', data: Float32Array.from([0.5, 0.25, 9]) },
  { name: '0.stmSrc', kind: 'i32', data: Int32Array.from([7, -1, 3, 4, 5]) },
];

export interface Samples { segment: SegmentEntry; cacheFile: string; segmentFile: string; stateFile: string }

export function writeFormatSamples(dir: string): Samples {
  fs.mkdirSync(dir, { recursive: true });
  const segmentFile = path.join(dir, 'layer2.seg');
  const segment = writeSegment(segmentFile, 'layer2.seg', SEGMENT_HEADER, SEGMENT_VALUES, SEGMENT_KEYS);
  const cacheFile = path.join(dir, 'weights.mpquant');
  writeCacheFile(cacheFile, CACHE_KEY, CACHE_BYTES.map((b) => ({ length: b.length, produce: (emit) => emit(b) })), (spans: Span[]) => ({
    'model.layers.0.mlp.up_proj.weight': { kind: 'nbits', bits: 8, block: 32, n: 4, k: 25, blob: spans[0], scales: spans[1] },
  }));
  const stateFile = path.join(dir, 'state.bin');
  fs.writeFileSync(stateFile, packArrays(STATE_META, STATE_ARRAYS));
  return { segment, cacheFile, segmentFile, stateFile };
}
