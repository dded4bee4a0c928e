/**
 * Dropping a bench's own files from the page cache, so a "first read" comes from the disk. Per
 * file (GNU dd's iflag=nocache with count=0 is posix_fadvise(DONTNEED) over the whole file): needs
 * no root and leaves the cache of everything else on a shared machine alone.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** Drops every regular file under `dir` from the page cache; false where dd could not. */
export function dropFromPageCache(dir: string): boolean {
  const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return files.every((e) => spawnSync('dd', [`if=${path.join(e.parentPath, e.name)}`, 'iflag=nocache', 'count=0', 'status=none']).status === 0);
}
