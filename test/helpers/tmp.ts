/** Real temporary folders for tests, removed after the suite. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `mplus-${prefix}-`));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Repository root (tests run from out/test/…). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** The golden cases folder: $MPLUS_GOLDEN_DIR or ../shared/golden beside the repository. */
export function goldenDir(): string {
  return process.env.MPLUS_GOLDEN_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'golden');
}

/** Every golden case folder (one with expected.json). */
export function goldenCases(): string[] {
  const root = goldenDir();
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root)
    .map((n) => path.join(root, n))
    .filter((d) => fs.existsSync(path.join(d, 'expected.json')))
    .sort();
}
