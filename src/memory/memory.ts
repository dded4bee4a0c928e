/**
 * What the engine may ask of memory, in the spirit of llama.cpp's `llama_memory_i`: the engine
 * holds no memory of its own and receives a Memory on every call (inject, prefill), so it can run
 * against any state — the in-RAM MemoryState (traces, golden cases, tests) or the on-disk
 * StoredMemory (the sidecar) — and memory can be tested without a model.
 *
 *   plan an injection      stmTail, stmRows, planDrop
 *   apply it               applyInjection (drop → cache, append, merge; all of MPLUS-SPEC "Memory update")
 *   read for a question    stm, candidates (retrieval numbering), source ids for attribution
 *   snapshot / restore     a copy of the content to put back after a failed or trial update
 */
import type { InjectionUpdate } from './state';
import type { MemoryDims } from './layer';

/**
 * The retrieval candidates of one layer, numbered Θ first (0..M−1) then the dropped-token cache
 * (M..M+C−1) — the official concatenation order, defined here and nowhere else. Valid until the
 * memory next changes.
 */
export interface RetrievalCandidates {
  /** M: candidates below this are Θ rows. */
  readonly ltmCount: number;
  /** M + C */
  readonly count: number;
  /** Retriever keys of every candidate, in candidate order [M+C, s]. */
  keys(): Float32Array;
  /** Age of candidate c. */
  age(c: number): number;
  /** Provenance id of candidate c (−1: shipped with the checkpoint). */
  source(c: number): number;
  /** Values of candidates `idx`, in that order [idx.length, d] (Θ rows may be read from disk). */
  gather(idx: readonly number[]): Float32Array;
}

/** Opaque copy of memory content; only the Memory that made it can restore it. */
export interface MemorySnapshot {
  readonly kind: 'memory-snapshot';
}

export interface Memory {
  readonly dims: MemoryDims;
  /**
   * Θ off (MemoryLLM): applyInjection discards dropped tokens, so the engine need not compute
   * their retriever keys; Θ never grows.
   */
  readonly thetaOnly: boolean;
  /** The last K rows of θ_l [K, d], which prefix a chunk during injection. */
  stmTail(l: number): Float32Array;
  /** θ_l rows `idx` in that order [idx.length, d]. */
  stmRows(l: number, idx: readonly number[]): Float32Array;
  /** All of θ_l in order [N, d]. */
  stm(l: number): Float32Array;
  /** Changes whenever θ_l may have changed; never the same for two different contents (ValueRows.version). */
  stmVersion(l: number): number;
  /** θ indices of layer l the next injection should drop first (stale tokens), ascending. */
  preferredDrops(l: number): number[];
  /**
   * θ_l becomes [its rows not in u.drop[l], in ascending order; u.delta[l]'s K rows] — an order the
   * engine's θ K/V cache relies on (MPlusEngine.updateThetaKv) — and stmVersion(l) changes.
   */
  applyInjection(u: InjectionUpdate): void;
  candidates(l: number): RetrievalCandidates;
  /** Provenance id of θ_l row j. */
  stmSource(l: number, j: number): number;
  snapshot(): MemorySnapshot;
  restore(s: MemorySnapshot): void;
}
