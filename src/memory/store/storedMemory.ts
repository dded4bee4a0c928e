/**
 * The on-disk implementation of Memory: the state a store opened, its provenance and the store
 * together, so the sidecar hands the engine one object and commits it as one. Reads and updates
 * go to the in-RAM MemoryState (whose Θ values the store keeps on disk, read lazily); commit()
 * makes them durable; compact() is the provenance-driven deletion DESIGN.md describes.
 *
 * A snapshot here is valid until the next commit: a commit may rewrite Θ segments and delete the
 * files an older snapshot's rows point into, so restore() refuses one taken before it.
 */
import type { Memory, MemorySnapshot, RetrievalCandidates } from '../memory';
import type { Part } from '../layer';
import { SourceTable } from '../provenance';
import { InjectionUpdate, MemoryState } from '../state';
import { SegmentedRows } from './segmentedRows';
import { CommitInfo, MemoryStore, OpenResult, StoreSizes } from './store';

interface StoredSnapshot extends MemorySnapshot {
  inner: MemorySnapshot;
  seq: number;
}

export class StoredMemory implements Memory {
  readonly store: MemoryStore;
  readonly sources: SourceTable;
  private readonly state: MemoryState;

  constructor(opened: Pick<OpenResult, 'store' | 'state' | 'sources'>) {
    this.store = opened.store;
    this.state = opened.state;
    this.sources = opened.sources;
    this.state.isStale = this.sources.isStale;
  }

  get dims() {
    return this.state.dims;
  }

  get policy() {
    return this.state.policy;
  }

  get thetaOnly(): boolean {
    return this.state.thetaOnly;
  }

  // ---- Memory ----

  stmTail(l: number): Float32Array {
    return this.state.stmTail(l);
  }

  stmRows(l: number, idx: readonly number[]): Float32Array {
    return this.state.stmRows(l, idx);
  }

  stm(l: number): Float32Array {
    return this.state.stm(l);
  }

  stmVersion(l: number): number {
    return this.state.stmVersion(l);
  }

  preferredDrops(l: number): number[] {
    return this.state.preferredDrops(l);
  }

  applyInjection(u: InjectionUpdate): void {
    this.state.applyInjection(u);
  }

  candidates(l: number): RetrievalCandidates {
    return this.state.candidates(l);
  }

  stmSource(l: number, j: number): number {
    return this.state.stmSource(l, j);
  }

  snapshot(): MemorySnapshot {
    return { kind: 'memory-snapshot', inner: this.state.snapshot(), seq: this.store.seq } as StoredSnapshot;
  }

  restore(s: MemorySnapshot): void {
    const snap = s as StoredSnapshot;
    if (snap.seq !== this.store.seq) throw new Error(`restore: the snapshot was taken at commit ${snap.seq}, the store is at ${this.store.seq}`);
    this.state.restore(snap.inner);
  }

  // ---- durability and provenance ----

  /** Durable commit of memory, provenance and the caller's small `extra` (see MemoryStore.commit); θ-only stores add `thetaOnly: true`. */
  commit(extra: Record<string, unknown>, opts: { rewrite?: boolean } = {}): CommitInfo {
    // The mode travels with the store: a θ-only store has discarded what Θ on would have kept.
    return this.store.commit(this.state, this.sources, this.thetaOnly ? { ...extra, thetaOnly: true } : extra, opts);
  }

  /**
   * Removes stale tokens from Θ and the cache and forgets provenance no token refers to any more.
   * Not durable until the next commit, which should rewrite ({ rewrite: true }) so the removed
   * values leave the disk too. Returns the rows removed over all layers.
   */
  compact(): number {
    const removed = this.state.compact();
    const live = this.state.liveSources();
    this.sources.prune((id) => live.has(id));
    return removed;
  }

  /** Stale tokens over all layers in `parts` (default everywhere). */
  staleTokens(parts?: readonly Part[]): number {
    return this.state.staleTokens(parts);
  }

  /** Rows per layer of θ, Θ and the cache. */
  counts(): Record<Part, number> {
    return this.state.counts();
  }

  /** Bytes of θ and cache rows held in RAM awaiting a commit (the rest are on disk). */
  thetaPendingBytes(): number {
    return this.state.layers.reduce((a, m) => a + (m.stm as SegmentedRows).pendingBytes + (m.cache as SegmentedRows).pendingBytes, 0);
  }

  sizes(): StoreSizes {
    return this.store.sizes();
  }

  close(): void {
    this.store.close();
  }
}
