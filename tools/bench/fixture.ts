import * as fs from 'fs';
import * as path from 'path';
import { Preset, writeFixture } from '../fixture';

/** A fixture checkpoint under .bench/ (made once, reused), for benchmarks run from a fresh clone. */
export function benchFixture(preset: Preset, dtype: 'f32' | 'bf16'): string {
  const dir = path.resolve('.bench', `fixture-${preset}-${dtype}`);
  if (!fs.existsSync(path.join(dir, 'config.json'))) writeFixture({ out: dir, preset, seed: 1, dtype });
  return dir;
}
