/**
 * Planner: the minimal memory work for one file's new chunks. Chunk ids are content hashes, so an
 * unchanged chunk keeps its id and is never fed twice; ids that are no longer produced are stale.
 */
import type { Chunk } from './chunker';

export interface FileUpdatePlan {
  /** chunks whose id is not in memory yet, in file order, each id once */
  inject: Chunk[];
  /** ids in memory for this file that the new version no longer has */
  staleIds: string[];
  /** new chunks already in memory (nothing to do) */
  unchanged: number;
}

export function planFileUpdate(file: string, newChunks: Chunk[], known: Set<string>): FileUpdatePlan {
  const inject: Chunk[] = [];
  const present = new Set<string>();
  let unchanged = 0;
  for (const c of newChunks) {
    if (c.file !== file) throw new Error(`planFileUpdate(${file}): chunk of another file (${c.file})`);
    if (present.has(c.id)) continue; // identical text twice in a file: one copy in memory
    present.add(c.id);
    if (known.has(c.id)) unchanged++;
    else inject.push(c);
  }
  const staleIds = [...known].filter((id) => !present.has(id)).sort();
  return { inject, staleIds, unchanged };
}

/** A deleted file: every known id is stale. */
export function planFileDeletion(known: Set<string>): FileUpdatePlan {
  return { inject: [], staleIds: [...known].sort(), unchanged: 0 };
}
