/**
 * `bench discover`: generates a tree of N small files (nested folders, some ignored folders, a
 * .gitignore), then times discover() and the watcher's start-up and measures RSS. Prints nothing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { discover } from '../../src/workspace/discovery';
import { MultiRootIgnoreMatcher } from '../../src/workspace/ignore';
import { WorkspaceWatcher } from '../../src/workspace/watcher';

export interface BenchDiscoverResult {
  /** files discovered (the generated ones that are not ignored) */
  files: number;
  discoverMs: number;
  watchSetupMs: number;
  /** process RSS after discovery, MiB */
  rssMiB: number;
  /** RSS growth from starting the watcher, MiB */
  watcherRssMiB: number;
}

const FILES_PER_DIR = 50;
const DIRS_PER_DIR = 8;

/** Writes `files` included files (plus ignored ones) under dir; returns the number of included files written. */
export function generateTree(dir: string, files: number): number {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, '.gitignore'), '*.log\ngenerated/\n');
  let written = 0;
  let dirNo = 0;
  // Breadth-first folders: d0/, d0/d1/, … each holding FILES_PER_DIR files.
  const queue: string[] = [dir];
  while (written < files) {
    const d = queue.shift() as string;
    for (let k = 0; k < DIRS_PER_DIR; k++) queue.push(path.join(d, `d${dirNo}_${k}`));
    if (d !== dir) fs.mkdirSync(d, { recursive: true });
    const n = Math.min(FILES_PER_DIR, files - written);
    for (let i = 0; i < n; i++) {
      const name = i % 3 === 0 ? `mod${i}.ts` : i % 3 === 1 ? `util${i}.py` : `notes${i}.md`;
      fs.writeFileSync(path.join(d, name), `// file ${written}\nexport const v${i} = ${written};\n`);
      written++;
    }
    // ignored noise: a log file, and every 20th folder a node_modules and a generated folder
    fs.writeFileSync(path.join(d, 'debug.log'), 'noise\n');
    if (dirNo % 20 === 0) {
      for (const ign of ['node_modules/pkg', 'generated']) {
        fs.mkdirSync(path.join(d, ign), { recursive: true });
        for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(d, ign, `x${i}.js`), 'module.exports = 1;\n');
      }
    }
    dirNo++;
  }
  return written;
}

/** Collects garbage (when run with --expose-gc) and lets the heap shrink before a reading. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
}

function rssMiB(): number {
  return process.memoryUsage().rss / (1024 * 1024);
}

export async function benchDiscover(opts: { files: number; dir?: string; backend?: 'chokidar' | 'dirs' }): Promise<BenchDiscoverResult> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-discover-'));
  try {
    generateTree(dir, opts.files);
    const t0 = process.hrtime.bigint();
    const res = await discover([dir], { maxFiles: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER });
    const discoverMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const files = res.files.length;
    const rssAfterDiscover = rssMiB();
    await settle();
    const rss0 = rssMiB();
    const matcher = new MultiRootIgnoreMatcher([dir]);
    const t1 = process.hrtime.bigint();
    const w = await WorkspaceWatcher.start([dir], { isIgnored: matcher.isIgnored, onBatch: () => undefined, backend: opts.backend });
    const watchSetupMs = Number(process.hrtime.bigint() - t1) / 1e6;
    await settle();
    const rss1 = rssMiB();
    await w.close();
    return { files, discoverMs, watchSetupMs, rssMiB: rssAfterDiscover, watcherRssMiB: Math.max(0, rss1 - rss0) };
  } finally {
    if (own) fs.rmSync(dir, { recursive: true, force: true });
  }
}
