/**
 * The M+ memory state, exactly as MPLUS-SPEC.md "Memory update" describes it, in process: the
 * in-RAM implementation of Memory (memory.ts). The per-layer columns and their invariants are
 * defined once in layer.ts; plus the global `updateStep` (tokens injected since the last merge).
 *
 * Invariants: |θ| = N always; every column has as many entries as its part's rows; candidates for
 * retrieval are numbered Θ first (0..M−1) then the cache (M..M+C−1) (candidates()). This module
 * never runs the model: dropped tokens' keys are computed by the engine and handed in with the
 * update.
 */
import { Column, RowFormat, valueRowsFrom } from './rows';
import { LayerMemory, MemoryDims, Part, SOURCE_COLUMN, checkLayer, clearPart, cloneLayer, emptyLayer, keepPart, partCount, rowsWhereSource } from './layer';
import type { Memory, MemorySnapshot, RetrievalCandidates } from './memory';

export type { LayerMemory, MemoryDims } from './layer';

export interface LtmPolicyParams {
  updateLtmFrequency: number;
  decayFrequency: number;
  initialRf: number;
  /**
   * Capacity policy. Absent: the spec's recall-frequency expiry (exact official numerics).
   * `maxLtmRows`: keep everything up to this many Θ rows per layer (a byte budget divided by the
   * row size): no frequency expiry; when over, evict stale rows first, then the least recalled,
   * then the oldest. Decay still runs so frequencies stay comparable.
   */
  maxLtmRows?: number;
  /**
   * θ only (MemoryLLM): Θ is off. Tokens dropped from θ are discarded — no dropped-token cache,
   * no age bookkeeping, no merges — so Θ keeps exactly what it held (in a fresh store, the rows
   * the checkpoint ships, often none) and a question retrieves only from those, as the trainer's
   * `use_ltm=False` does. A per-run switch for measuring what Θ adds (`mplus bench retention`).
   */
  thetaOnly?: boolean;
}

/** One injection's effect on memory, computed by the engine. */
export interface InjectionUpdate {
  /** Per layer, the K θ indices to drop, ascending, distinct. */
  drop: number[][];
  /** Per layer, the K new tokens [K, d]. */
  delta: Float32Array[];
  /**
   * Per layer, key_proj(input_layernorm(θ[drop])) [K, s], rows in `drop` order. Ignored (may be
   * empty) when the memory is θ only: nothing dropped is kept.
   */
  droppedKeys: Float32Array[];
  /** Provenance id for the new tokens. */
  source: number;
  /**
   * How many of the K new tokens re-read θ instead of the chunk (K − n for a chunk of n < K
   * tokens, else 0; absent: 0). A write keeps the layer outputs of the last K positions of
   * [bos, θ's newest K rows, chunk], so with n < K its first K − n rows are θ's last K − n rows
   * run through the layer again: they attend to bos and θ only and carry what those rows carried.
   * They keep those rows' source ids (provenance follows content), so a citation names the file
   * whose text a row holds, and a row holding an edited file's content goes stale with it.
   */
  rereadRows?: number;
}

export class MemoryState implements Memory {
  readonly layers: LayerMemory[];
  updateStep = 0;
  /**
   * Provenance hook: true for source ids whose file changed or vanished. Stale tokens dropped
   * from θ are discarded (not cached, never reach Θ); the budget policy evicts them first;
   * compact() removes them from Θ and the cache. Default: nothing is stale (spec behaviour).
   */
  isStale: (source: number) => boolean = () => false;
  /** Next row identity (layer.ts); above every id in `layers`. */
  private nextId = 0;

  constructor(readonly dims: MemoryDims, readonly policy: LtmPolicyParams, layers?: LayerMemory[]) {
    this.layers = layers ?? Array.from({ length: dims.layers }, () => emptyLayer(dims));
    this.layers.forEach((m, l) => checkLayer(m, `memory layer ${l}`));
    for (const m of this.layers) for (const x of [...m.stmId.data, ...m.cacheId.data]) this.nextId = Math.max(this.nextId, x + 1);
  }

  /**
   * θ from the checkpoint's `memory` [L, N, d] (ages 0) and Θ as shipped (may be empty). `memory`
   * is the whole tensor or a reader of one layer's [N, d] rows (so a full-size θ is never held
   * twice while it is split into layers).
   */
  static initial(
    dims: MemoryDims,
    policy: LtmPolicyParams,
    memory: Float32Array | ((layer: number) => Float32Array),
    ltm: Array<{ values: Float32Array; keys: Float32Array; rf: Float32Array; ages: Float32Array }> | null,
    format: RowFormat = 'f32',
  ): MemoryState {
    const { layers: L, stmSize: N, hidden: d, keyDim: s } = dims;
    if (typeof memory !== 'function' && memory.length !== L * N * d) throw new Error(`memory has ${memory.length} values, expected ${L}×${N}×${d}`);
    const layerRows = typeof memory === 'function' ? memory : (l: number) => memory.slice(l * N * d, (l + 1) * N * d);
    const out: LayerMemory[] = [];
    for (let l = 0; l < L; l++) {
      const lm = emptyLayer(dims, format);
      const rows = layerRows(l);
      if (rows.length !== N * d) throw new Error(`memory layer ${l} has ${rows.length} values, expected ${N}×${d}`);
      lm.stm = valueRowsFrom(format, d, rows);
      lm.stmAges = Column.from(new Float64Array(N));
      lm.stmSrc = Column.from(new Float64Array(N).fill(-1));
      lm.stmId = Column.from(Float64Array.from({ length: N }, (_, i) => l * N + i));
      const t = ltm?.[l];
      if (t && t.ages.length) {
        lm.ltm = valueRowsFrom(format, d, t.values); // a copy in either format
        lm.ltmKeys = valueRowsFrom(format, s, t.keys); // a copy in either format
        lm.ltmAges = Column.from(t.ages);
        lm.ltmRf = Column.from(t.rf);
        lm.ltmSrc = Column.from(new Float64Array(t.ages.length).fill(-1));
      }
      out.push(lm);
    }
    return new MemoryState(dims, policy, out);
  }

  /** The precision θ and cache rows are held in (layer 0 speaks for all: checkLayer). */
  get rowFormat(): RowFormat {
    return this.layers[0]?.stm.format ?? 'f32';
  }

  get thetaOnly(): boolean {
    return !!this.policy.thetaOnly;
  }

  // ---- Memory: reads ----

  stmTail(l: number): Float32Array {
    const { stmSize: N, tokensPerInjection: K } = this.dims;
    // the tail only: θ may be on disk (the store's SegmentedRows)
    return this.layers[l].stm.gather(Array.from({ length: K }, (_, i) => N - K + i));
  }

  stmRows(l: number, idx: readonly number[]): Float32Array {
    return this.layers[l].stm.gather(idx);
  }

  stm(l: number): Float32Array {
    return this.layers[l].stm.data;
  }

  stmVersion(l: number): number {
    return this.layers[l].stm.version;
  }

  stmSource(l: number, j: number): number {
    return this.layers[l].stmSrc.data[j];
  }

  preferredDrops(l: number): number[] {
    return rowsWhereSource(this.layers[l], 'stm', this.isStale);
  }

  candidates(l: number): RetrievalCandidates {
    const m = this.layers[l];
    const M = m.ltm.count;
    const s = this.dims.keyDim;
    const d = this.dims.hidden;
    return {
      ltmCount: M,
      count: M + m.cache.count,
      keys: () => {
        const keys = new Float32Array((M + m.cacheKeys.count) * s);
        keys.set(m.ltmKeys.data, 0);
        keys.set(m.cacheKeys.data, M * s);
        return keys;
      },
      age: (c) => (c < M ? m.ltmAges.data[c] : m.cacheAges.data[c - M]),
      source: (c) => (c < M ? m.ltmSrc.data[c] : m.cacheSrc.data[c - M]),
      gather: (idx) => {
        const rows = new Float32Array(idx.length * d);
        // Θ rows may live on disk: one gather reads just the selected ones.
        const fromLtm = idx.filter((c) => c < M);
        const fromCache = idx.filter((c) => c >= M).map((c) => c - M);
        const ltmRows = fromLtm.length ? m.ltm.gather(fromLtm) : new Float32Array(0);
        const cacheRows = fromCache.length ? m.cache.gather(fromCache) : new Float32Array(0);
        let j = 0;
        let k = 0;
        idx.forEach((c, i) => rows.set(c < M ? ltmRows.subarray(d * j, d * ++j) : cacheRows.subarray(d * k, d * ++k), i * d));
        return rows;
      },
    };
  }

  // ---- Memory: the update ----

  /**
   * Applies one injection: drop → cache (with keys), append delta, age bookkeeping, and the
   * merge into Θ with recall-frequency expiry when update_step reaches its period.
   */
  applyInjection(u: InjectionUpdate): void {
    const { layers: L, stmSize: N, tokensPerInjection: K } = this.dims;
    if (u.drop.length !== L || u.delta.length !== L || u.droppedKeys.length !== L) throw new Error('injection update must cover every layer');
    for (let l = 0; l < L; l++) validateDrop(u.drop[l], N, K, l);
    const reread = u.rereadRows ?? 0;
    if (!Number.isInteger(reread) || reread < 0 || reread >= K) throw new RangeError(`rereadRows must be an integer in 0..${K - 1}, got ${reread}`);
    if (this.thetaOnly) return this.applyThetaOnly(u, reread);
    for (let l = 0; l < L; l++) {
      const m = this.layers[l];
      const dropped = u.drop[l];
      // Stale tokens leave θ like any other but are discarded instead of joining the cache.
      const toCache: number[] = [];
      for (let j = 0; j < dropped.length; j++) if (!this.isStale(m.stmSrc.data[dropped[j]])) toCache.push(j);
      const cached = toCache.map((j) => dropped[j]);
      const droppedRows = m.stm.gather(cached);
      const droppedAges = m.stmAges.gather(cached);
      const droppedSrc = m.stmSrc.gather(cached);
      const droppedIds = m.stmId.gather(cached);
      const keyRows = toCache.length === dropped.length ? u.droppedKeys[l] : gatherRows(u.droppedKeys[l], this.dims.keyDim, toCache);

      this.replaceInStm(m, dropped, u.delta[l], u.source, reread);

      // Ages first grow for everything already in Θ and the cache, then the new drops join.
      addInPlace(m.ltmAges.data, K);
      addInPlace(m.cacheAges.data, K);
      m.cache.append(droppedRows);
      m.cacheKeys.append(keyRows);
      m.cacheAges.append(droppedAges);
      m.cacheSrc.append(droppedSrc);
      m.cacheId.append(droppedIds);
    }
    this.updateStep += K;
    if (this.updateStep >= this.policy.updateLtmFrequency * K) this.merge();
  }

  /** θ only: drop and append; what was dropped is gone (MemoryLLM), Θ and the cache untouched. */
  private applyThetaOnly(u: InjectionUpdate, reread: number): void {
    u.drop.forEach((dropped, l) => this.replaceInStm(this.layers[l], dropped, u.delta[l], u.source, reread));
  }

  /**
   * θ ← [θ[kept] ; delta] with the new rows' ages (K−1 … 0), identities and sources: the first
   * `reread` rows take the sources of θ's last `reread` rows (InjectionUpdate.rereadRows), the
   * rest `source`.
   */
  private replaceInStm(m: LayerMemory, dropped: readonly number[], delta: Float32Array, source: number, reread: number): void {
    const { stmSize: N, tokensPerInjection: K } = this.dims;
    const sources = new Float64Array(K).fill(source);
    sources.set(m.stmSrc.data.subarray(N - reread, N), 0);
    const isDropped = new Uint8Array(N);
    for (const i of dropped) isDropped[i] = 1;
    const kept: number[] = [];
    for (let i = 0; i < N; i++) if (!isDropped[i]) kept.push(i);
    keepPart(m, 'stm', kept);
    m.stm.append(delta);
    m.stmAges.append(Array.from({ length: K }, (_, i) => K - 1 - i));
    m.stmSrc.append(sources);
    m.stmId.append(Float64Array.from({ length: K }, () => this.nextId++));
  }

  /** Θ ← [Θ ; cache] with fresh frequencies, decay, expiry of the forgotten when over R. */
  private merge(): void {
    const { initialRf, decayFrequency } = this.policy;
    const R = this.dims.retrieveSize;
    for (const m of this.layers) {
      m.ltm.append(m.cache.data);
      m.ltmKeys.append(m.cacheKeys.data);
      m.ltmAges.append(m.cacheAges.data);
      m.ltmSrc.append(m.cacheSrc.data);
      m.ltmRf.append(new Float64Array(m.cache.count).fill(Math.fround(initialRf)));
      const rf = m.ltmRf.data;
      // Recall frequencies are float32 tensors officially: round every step to float32.
      for (let i = 0; i < rf.length; i++) rf[i] = Math.fround(rf[i] - decayFrequency);
      if (this.policy.maxLtmRows !== undefined) {
        this.evictOverBudget(m, this.policy.maxLtmRows);
        clearPart(m, 'cache');
        continue;
      }
      const keep: number[] = [];
      for (let i = 0; i < rf.length; i++) if (rf[i] > 0.01) keep.push(i);
      if (keep.length > R) {
        if (keep.length < rf.length) keepPart(m, 'ltm', keep);
      } else {
        for (let i = 0; i < rf.length; i++) rf[i] = Math.fround(rf[i] + decayFrequency);
      }
      clearPart(m, 'cache');
    }
    this.updateStep = 0;
  }

  /** Budget policy: evict stale rows, then the least recalled, then the oldest, down to `max`. */
  private evictOverBudget(m: LayerMemory, max: number): void {
    const n = m.ltm.count;
    if (n <= max) return;
    const rf = m.ltmRf.data;
    const ages = m.ltmAges.data;
    const src = m.ltmSrc.data;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      Number(this.isStale(src[b])) - Number(this.isStale(src[a])) || rf[a] - rf[b] || ages[b] - ages[a] || a - b);
    const evict = new Set(order.slice(0, n - max));
    keepPart(m, 'ltm', Array.from({ length: n }, (_, i) => i).filter((i) => !evict.has(i)));
  }

  // ---- provenance ----

  /**
   * Removes every stale token from Θ and the cache (θ keeps its N rows: its stale tokens go first
   * at the next injections). Returns how many rows were removed over all layers.
   */
  compact(): number {
    let removed = 0;
    const live = (x: number) => !this.isStale(x);
    for (const m of this.layers) {
      for (const part of ['ltm', 'cache'] as const) {
        const keep = rowsWhereSource(m, part, live);
        const n = partCount(m, part);
        if (keep.length < n) {
          removed += n - keep.length;
          keepPart(m, part, keep);
        }
      }
    }
    return removed;
  }

  /** Stale tokens over all layers in `parts` (default θ, Θ and the cache). */
  staleTokens(parts: readonly Part[] = ['stm', 'ltm', 'cache']): number {
    const stale = (x: number) => x >= 0 && this.isStale(x);
    let n = 0;
    for (const m of this.layers) for (const part of parts) n += rowsWhereSource(m, part, stale).length;
    return n;
  }

  /** Every source id memory still holds (θ, Θ, cache): what provenance must keep. */
  liveSources(): Set<number> {
    const out = new Set<number>();
    for (const m of this.layers) for (const part of ['stm', 'ltm', 'cache'] as const) for (const x of m[SOURCE_COLUMN[part]].data) out.add(x);
    return out;
  }

  /** Rows per layer of each part, from layer 0 (every layer has the same counts). */
  counts(): Record<Part, number> {
    const m = this.layers[0];
    return { stm: m ? partCount(m, 'stm') : 0, ltm: m ? partCount(m, 'ltm') : 0, cache: m ? partCount(m, 'cache') : 0 };
  }

  // ---- snapshot / restore ----

  snapshot(): MemorySnapshot {
    return { kind: 'memory-snapshot', owner: this, layers: this.layers.map(cloneLayer), updateStep: this.updateStep } as StateSnapshot;
  }

  restore(s: MemorySnapshot): void {
    const snap = s as StateSnapshot;
    if (snap.owner !== this) throw new Error('restore: the snapshot was taken from another memory');
    // Copy again so the snapshot stays reusable.
    snap.layers.forEach((m, l) => (this.layers[l] = cloneLayer(m)));
    this.updateStep = snap.updateStep;
  }

  clone(): MemoryState {
    const s = new MemoryState(this.dims, this.policy, this.layers.map(cloneLayer));
    s.updateStep = this.updateStep;
    s.isStale = this.isStale;
    return s;
  }
}

interface StateSnapshot extends MemorySnapshot {
  owner: MemoryState;
  layers: LayerMemory[];
  updateStep: number;
}

function gatherRows(data: Float32Array, width: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * width);
  idx.forEach((r, i) => out.set(data.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

function addInPlace(a: Float64Array, k: number): void {
  for (let i = 0; i < a.length; i++) a[i] += k;
}

function validateDrop(drop: number[], N: number, K: number, layer: number): void {
  if (drop.length !== K) throw new Error(`drop plan for layer ${layer} has ${drop.length} indices, expected K=${K}`);
  for (let i = 0; i < drop.length; i++) {
    const x = drop[i];
    if (!Number.isInteger(x) || x < 0 || x >= N) throw new Error(`drop plan for layer ${layer}: index ${x} outside 0..${N - 1}`);
    if (i > 0 && x <= drop[i - 1]) throw new Error(`drop plan for layer ${layer} must be strictly ascending`);
  }
}
