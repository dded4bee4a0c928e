/**
 * Which files an answer drew on, from the provenance of the memory tokens the question used.
 *
 * Two signals per layer, both mapped to the source id that wrote each memory token:
 *  - attention: the share of the question's attention (over heads and question rows) that landed
 *    on each retrieved Θ token and each θ token during prefill — what the model actually read;
 *  - retrieval: the retriever's score of each retrieved Θ token — why it was put in the prefix.
 * Each signal is normalised to sum to 1 over sources and blended (attention dominates); the
 * result is ranked and cut at `minShare`. Tokens without provenance (shipped with the checkpoint,
 * id −1) and sources the lookup no longer knows (stale, deleted files) are never cited.
 */
import type { Memory } from '../memory/memory';
import type { Source } from './protocol';

export interface SourceInfo {
  path: string;
  startLine: number;
  endLine: number;
}

export interface QuestionTrace {
  /** Per layer: candidate indices (Θ first, then cache) in prefix order. */
  retrieved: number[][];
  retrievedScores: Array<Float32Array | null>;
  memoryAttention: Array<{ retrieved: Float32Array; stm: Float32Array }>;
}

/** Provenance of the memory the question read: candidate sources (Θ-first numbering is Memory's) and θ's. */
export type MemorySources = Pick<Memory, 'candidates' | 'stmSource'>;

export interface AttributionOptions {
  attentionWeight?: number;
  minShare?: number;
  maxSources?: number;
}

export function attributeSources(
  q: QuestionTrace,
  mem: MemorySources,
  lookup: (sourceId: number) => SourceInfo | null,
  opts: AttributionOptions = {},
): Source[] {
  const alpha = opts.attentionWeight ?? 0.8;
  const attn = new Map<number, number>();
  const retr = new Map<number, number>();
  const add = (m: Map<number, number>, id: number, w: number) => {
    if (id >= 0 && w > 0) m.set(id, (m.get(id) ?? 0) + w);
  };
  q.retrieved.forEach((cands, l) => {
    const srcOf = mem.candidates(l).source;
    const a = q.memoryAttention[l];
    cands.forEach((c, i) => {
      add(attn, srcOf(c), a?.retrieved[i] ?? 0);
      const s = q.retrievedScores[l];
      if (s) add(retr, srcOf(c), s[i]);
    });
    if (a) for (let j = 0; j < a.stm.length; j++) add(attn, mem.stmSource(l, j), a.stm[j]);
  });
  const total = (m: Map<number, number>) => [...m.values()].reduce((x, y) => x + y, 0);
  const ta = total(attn);
  const tr = total(retr);
  const blended = new Map<number, number>();
  for (const [id, w] of attn) blended.set(id, (blended.get(id) ?? 0) + (ta > 0 ? (alpha * w) / ta : 0));
  for (const [id, w] of retr) blended.set(id, (blended.get(id) ?? 0) + (tr > 0 ? ((ta > 0 ? 1 - alpha : 1) * w) / tr : 0));

  // Group by file and line range (several tokens, even several injections, share one chunk).
  const byRange = new Map<string, Source>();
  for (const [id, w] of blended) {
    const info = lookup(id);
    if (!info) continue;
    const key = `${info.path}:${info.startLine}-${info.endLine}`;
    const s = byRange.get(key);
    if (s) s.weight += w;
    else byRange.set(key, { path: info.path, startLine: info.startLine, endLine: info.endLine, weight: w });
  }
  const all = [...byRange.values()];
  const sum = all.reduce((x, s) => x + s.weight, 0);
  if (sum <= 0) return [];
  for (const s of all) s.weight /= sum;
  return all
    .filter((s) => s.weight >= (opts.minShare ?? 0.01))
    .sort((a, b) => b.weight - a.weight || a.path.localeCompare(b.path) || a.startLine - b.startLine)
    .slice(0, opts.maxSources ?? 8);
}
