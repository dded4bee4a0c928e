/**
 * How big a chunk the checkpoint was trained to write into memory. Every injection writes K
 * memory rows whatever the chunk's length, so a model trained on short contexts reads a long one
 * compressed far past anything it learned. A checkpoint says so in `chunking.json` beside
 * config.json; without the file it gets mplus-8b's budget (512 tokens, neighbours merged up to
 * 128).
 *
 *   {"unit": "bytes" | "tokens", "max": 512, "min": 128}
 *
 * `bytes` measures chunks in UTF-8 bytes, as training/extract.js cuts the training corpus: the
 * unit of checkpoints exported before `export --chunk-tokens` (which writes `tokens`). Whatever
 * the unit, a chunk is also held to the 512-token injection limit (feeder.ts).
 */
import * as path from 'path';
import { CheckpointError } from './safetensors';
import { readSideFile } from './sideFile';

export const CHUNKING_FILE = 'chunking.json';
/** mplus-8b's injection size, and the most any checkpoint may ask for. */
export const MAX_CHUNK_TOKENS = 512;
/** The shortest "max" a checkpoint may ask for: the authors' shortest context (16 tokens). */
export const MIN_CHUNK_TOKENS = 16;

export interface Chunking {
  unit: 'tokens' | 'bytes';
  max: number;
  min: number;
}

export const DEFAULT_CHUNKING: Chunking = { unit: 'tokens', max: MAX_CHUNK_TOKENS, min: 128 };

/** The checkpoint's chunking, or the default when it has no chunking.json. Throws naming a malformed file. */
export function loadChunking(checkpointDir: string): Chunking {
  const file = path.join(checkpointDir, CHUNKING_FILE);
  const text = readSideFile(file, 'fix its permissions or remove it to chunk as mplus-8b');
  if (text === null) return DEFAULT_CHUNKING;
  const fix = 'use the chunking.json exported with the checkpoint, or remove it to chunk as mplus-8b';
  let j: { unit?: unknown; max?: unknown; min?: unknown };
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `is not JSON (${(e as Error).message})`, fix);
  }
  const { unit, max, min } = j ?? {};
  if (unit !== 'tokens' && unit !== 'bytes') throw new CheckpointError(file, `"unit" must be "tokens" or "bytes", got ${JSON.stringify(unit)}`, fix);
  const int = (x: unknown) => typeof x === 'number' && Number.isInteger(x);
  if (!int(max) || (max as number) < MIN_CHUNK_TOKENS || (unit === 'tokens' && (max as number) > MAX_CHUNK_TOKENS)) {
    throw new CheckpointError(file, `"max" must be an integer from ${MIN_CHUNK_TOKENS}${unit === 'tokens' ? ` to ${MAX_CHUNK_TOKENS}` : ''}, got ${JSON.stringify(max)}`, fix);
  }
  if (!int(min) || (min as number) < 1 || (min as number) > (max as number)) {
    throw new CheckpointError(file, `"min" must be an integer from 1 to "max" (${max}), got ${JSON.stringify(min)}`, fix);
  }
  return { unit, max: max as number, min: min as number };
}

/** The length a chunker budgets by: the tokenizer's count, or UTF-8 bytes. */
export function chunkMeasure(c: Chunking, countTokens: (s: string) => number): (s: string) => number {
  return c.unit === 'bytes' ? (s) => Buffer.byteLength(s, 'utf8') : countTokens;
}
