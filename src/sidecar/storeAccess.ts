/**
 * A store folder the sidecar cannot create or write (a file in the way, no permission, a
 * read-only or full disk) is a place to change, not a store to rebuild: said in plain words that
 * name the folder, never as a raw errno. No store or engine import: tested directly.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Errno codes that mean "this place cannot hold the store" rather than "the store is damaged". */
const PLACE_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EEXIST']);

/**
 * The plain-words reason `e` (thrown while opening the store in `storeDir`) is about the folder
 * itself, or null when it is not (then it is the store's own problem: damaged, another model).
 */
export function storePlaceProblem(e: unknown, storeDir: string): string | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !PLACE_CODES.has(code)) return null;
  const where = `M+ cannot keep this workspace's memory in ${storeDir}`;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `${where}: permission denied`;
    case 'EROFS':
      return `${where}: the disk is read-only`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `${where}: the disk is full`;
    default: {
      // ENOTDIR/EEXIST from creating the folder: a file stands where a folder should be.
      const file = fileInTheWay(storeDir);
      return file ? `${where}: ${file} is a file, not a folder` : `${where}: a file stands where its folder should be`;
    }
  }
}

/** The first path from the root down to `dir` that exists and is not a folder, or null. */
function fileInTheWay(dir: string): string | null {
  const parts: string[] = [];
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    parts.unshift(p);
    if (path.dirname(p) === p) break;
  }
  for (const p of parts) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return null; // missing (or unreadable): nothing further down exists either
    }
    if (!st.isDirectory()) return p;
  }
  return null;
}

/**
 * Whether memory stores can be kept under `parent` (created when missing): null when they can,
 * else the reason in plain words. Writes and removes one small probe file.
 */
export function checkStoreParent(parent: string): string | null {
  const probe = path.join(parent, `.mplus-write-check-${process.pid}`);
  try {
    fs.mkdirSync(parent, { recursive: true });
    fs.writeFileSync(probe, 'M+ checks that it can write here\n');
    fs.rmSync(probe, { force: true });
    return null;
  } catch (e) {
    const why = storePlaceProblem(e, parent);
    return why ?? `M+ cannot keep memory in ${parent}: ${(e as Error).message}`;
  }
}
