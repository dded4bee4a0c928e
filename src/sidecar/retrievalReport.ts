/**
 * Which memory rows a question read, per layer, counted by the file that wrote them — the
 * measurement behind `mplus bench retention`'s "share of the fact's rows retrieved" (the paper's
 * retriever-quality figure). Attribution (attribution.ts) weighs sources for the user; this
 * counts rows exactly, for a benchmark that knows which file holds the answer.
 *
 * Candidates follow Memory's numbering (Θ first, then the dropped-token cache). When a layer
 * repeat-fills (|Θ| < R) the spec ignores the cache, so only Θ rows count as candidates there.
 */
import type { QuestionTrace, MemorySources } from './attribution';
import type { FileRows, LayerRetrieval } from './protocol';

/** Path of the file that wrote a source id; null for rows shipped with the checkpoint (−1). */
export type PathOf = (sourceId: number) => string | null;

const CHECKPOINT = '(checkpoint)';

function byFile(ids: Iterable<number>, pathOf: PathOf): FileRows[] {
  const counts = new Map<string, number>();
  for (const id of ids) {
    const p = id < 0 ? CHECKPOINT : (pathOf(id) ?? '(forgotten)');
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return [...counts].map(([path, rows]) => ({ path, rows })).sort((a, b) => b.rows - a.rows || a.path.localeCompare(b.path));
}

export function retrievalReport(q: Pick<QuestionTrace, 'retrieved' | 'retrievedScores'>, mem: MemorySources & { dims: { stmSize: number } }, pathOf: PathOf): LayerRetrieval[] {
  return q.retrieved.map((idx, l) => {
    const c = mem.candidates(l);
    const scored = q.retrievedScores[l] !== null;
    const pool = scored ? c.count : c.ltmCount;
    const distinct = [...new Set(idx)];
    const all = Array.from({ length: pool }, (_, i) => c.source(i));
    return {
      scored,
      retrieved: distinct.length,
      candidates: pool,
      retrievedByFile: byFile(distinct.map(c.source), pathOf),
      candidatesByFile: byFile(all, pathOf),
      stmByFile: byFile(Array.from({ length: mem.dims.stmSize }, (_, j) => mem.stmSource(l, j)), pathOf),
    };
  });
}
