/**
 * The M+ memory state, exactly as MPLUS-SPEC.md "Memory update" describes it, in process.
 *
 * Per layer l (d = hidden size, s = retriever key size, K tokens per injection, N = |θ|):
 *   stm      [N, d]  θ, the short-term pool; row order is meaningful (the tail feeds injection)
 *   stmAges  [N]     slot of the token in the injection that wrote it (K−1 … 0); ⚑ never grows
 *   ltm      [M, d]  Θ values;  ltmKeys [M, s];  ltmAges [M];  ltmRf [M] recall frequencies
 *   cache    [C, d]  tokens dropped from θ since the last merge, with keys and ages
 *   *Src     [·]     provenance: the source id that wrote each token (−1 = shipped with the
 *                    checkpoint); the store maps ids to file/chunk/hash.
 *   stmRef, cacheRef, cacheKeyRef [·]  the store's bookkeeping, opaque here: where the row's
 *                    value (key) already lies on disk (−1 = not yet). Values and keys never change
 *                    once written, so these follow their row through drops and compaction and a
 *                    commit writes only what is new.
 * plus the global `updateStep` (tokens injected since the last merge).
 *
 * Invariants: |θ| = N always; every column has as many entries as its rows; candidates for
 * retrieval are numbered Θ first (0..M−1) then the cache (M..M+C−1). This module never runs the
 * model: dropped tokens' keys are computed by the engine and handed in with the update.
 */
import { Column, RowBuffer, Rows } from './rows';

export interface MemoryDims {
  layers: number;
  hidden: number;
  keyDim: number;
  /** K */
  tokensPerInjection: number;
  /** N */
  stmSize: number;
  /** R */
  retrieveSize: number;
}

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
}

export interface LayerMemory {
  stm: RowBuffer;
  stmAges: Column;
  stmSrc: Column;
  /** Θ values: in RAM (RowBuffer) or on disk with lazy row reads (the store's SegmentedRows). */
  ltm: Rows;
  ltmKeys: RowBuffer;
  ltmAges: Column;
  ltmRf: Column;
  ltmSrc: Column;
  cache: RowBuffer;
  cacheKeys: RowBuffer;
  cacheAges: Column;
  cacheSrc: Column;
  stmRef: Column;
  cacheRef: Column;
  cacheKeyRef: Column;
}

/** One injection's effect on memory, computed by the engine. */
export interface InjectionUpdate {
  /** Per layer, the K θ indices to drop, ascending, distinct. */
  drop: number[][];
  /** Per layer, the K new tokens [K, d]. */
  delta: Float32Array[];
  /** Per layer, key_proj(input_layernorm(θ[drop])) [K, s], rows in `drop` order. */
  droppedKeys: Float32Array[];
  /** Provenance id for the new tokens. */
  source: number;
}

export class MemoryState {
  readonly layers: LayerMemory[];
  updateStep = 0;
  /**
   * Provenance hook: true for source ids whose file changed or vanished. Stale tokens dropped
   * from θ are discarded (not cached, never reach Θ); the budget policy evicts them first;
   * compact() removes them from Θ and the cache. Default: nothing is stale (spec behaviour).
   */
  isStale: (source: number) => boolean = () => false;

  constructor(readonly dims: MemoryDims, readonly policy: LtmPolicyParams, layers?: LayerMemory[]) {
    this.layers = layers ?? Array.from({ length: dims.layers }, () => emptyLayer(dims));
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
  ): MemoryState {
    const { layers: L, stmSize: N, hidden: d, keyDim: s } = dims;
    if (typeof memory !== 'function' && memory.length !== L * N * d) throw new Error(`memory has ${memory.length} values, expected ${L}×${N}×${d}`);
    const layerRows = typeof memory === 'function' ? memory : (l: number) => memory.slice(l * N * d, (l + 1) * N * d);
    const out: LayerMemory[] = [];
    for (let l = 0; l < L; l++) {
      const lm = emptyLayer(dims);
      const rows = layerRows(l);
      if (rows.length !== N * d) throw new Error(`memory layer ${l} has ${rows.length} values, expected ${N}×${d}`);
      lm.stm = RowBuffer.from(d, rows);
      lm.stmAges = Column.from(new Float64Array(N));
      lm.stmSrc = Column.from(new Float64Array(N).fill(-1));
      lm.stmRef = Column.from(new Float64Array(N).fill(-1));
      const t = ltm?.[l];
      if (t && t.ages.length) {
        lm.ltm = RowBuffer.from(d, t.values.slice());
        lm.ltmKeys = RowBuffer.from(s, t.keys.slice());
        lm.ltmAges = Column.from(t.ages);
        lm.ltmRf = Column.from(t.rf);
        lm.ltmSrc = Column.from(new Float64Array(t.ages.length).fill(-1));
      }
      out.push(lm);
    }
    return new MemoryState(dims, policy, out);
  }

  /** The last K rows of θ_l, which prefix the chunk during injection. */
  stmTail(l: number): Float32Array {
    const { stmSize: N, tokensPerInjection: K } = this.dims;
    return this.layers[l].stm.data.slice((N - K) * this.dims.hidden);
  }

  /**
   * Applies one injection: drop → cache (with keys), append delta, age bookkeeping, and the
   * merge into Θ with recall-frequency expiry when update_step reaches its period.
   */
  applyInjection(u: InjectionUpdate): void {
    const { layers: L, stmSize: N, tokensPerInjection: K } = this.dims;
    if (u.drop.length !== L || u.delta.length !== L || u.droppedKeys.length !== L) throw new Error('injection update must cover every layer');
    for (let l = 0; l < L; l++) validateDrop(u.drop[l], N, K, l);
    for (let l = 0; l < L; l++) {
      const m = this.layers[l];
      const dropped = u.drop[l];
      const isDropped = new Uint8Array(N);
      for (const i of dropped) isDropped[i] = 1;
      const kept: number[] = [];
      for (let i = 0; i < N; i++) if (!isDropped[i]) kept.push(i);
      // Stale tokens leave θ like any other but are discarded instead of joining the cache.
      const toCache: number[] = [];
      for (let j = 0; j < dropped.length; j++) if (!this.isStale(m.stmSrc.data[dropped[j]])) toCache.push(j);
      const cached = toCache.map((j) => dropped[j]);
      const droppedRows = m.stm.gather(cached);
      const droppedAges = m.stmAges.gather(cached);
      const droppedSrc = m.stmSrc.gather(cached);
      const droppedRef = m.stmRef.gather(cached);
      const keyRows = toCache.length === dropped.length ? u.droppedKeys[l] : gatherRows(u.droppedKeys[l], this.dims.keyDim, toCache);

      m.stm.keep(kept);
      m.stm.append(u.delta[l]);
      m.stmAges.keep(kept);
      m.stmAges.append(Array.from({ length: K }, (_, i) => K - 1 - i));
      m.stmSrc.keep(kept);
      m.stmSrc.append(new Float64Array(K).fill(u.source));
      m.stmRef.keep(kept);
      m.stmRef.append(new Float64Array(K).fill(-1));

      // Ages first grow for everything already in Θ and the cache, then the new drops join.
      addInPlace(m.ltmAges.data, K);
      addInPlace(m.cacheAges.data, K);
      m.cache.append(droppedRows);
      m.cacheKeys.append(keyRows);
      m.cacheAges.append(droppedAges);
      m.cacheSrc.append(droppedSrc);
      m.cacheRef.append(droppedRef);
      m.cacheKeyRef.append(new Float64Array(droppedRef.length).fill(-1));
    }
    this.updateStep += K;
    if (this.updateStep >= this.policy.updateLtmFrequency * K) this.merge();
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
        clearCache(m);
        continue;
      }
      const keep: number[] = [];
      for (let i = 0; i < rf.length; i++) if (rf[i] > 0.01) keep.push(i);
      if (keep.length > R) {
        if (keep.length < rf.length) {
          m.ltm.keep(keep);
          m.ltmKeys.keep(keep);
          m.ltmAges.keep(keep);
          m.ltmRf.keep(keep);
          m.ltmSrc.keep(keep);
        }
      } else {
        for (let i = 0; i < rf.length; i++) rf[i] = Math.fround(rf[i] + decayFrequency);
      }
      clearCache(m);
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
    keepLtm(m, Array.from({ length: n }, (_, i) => i).filter((i) => !evict.has(i)));
  }

  /**
   * Removes every stale token from Θ and the cache (θ keeps its N rows: its stale tokens go first
   * at the next injections). Returns how many rows were removed over all layers.
   */
  compact(): number {
    let removed = 0;
    for (const m of this.layers) {
      const src = m.ltmSrc.data;
      const keep: number[] = [];
      for (let i = 0; i < src.length; i++) if (!this.isStale(src[i])) keep.push(i);
      if (keep.length < src.length) {
        removed += src.length - keep.length;
        keepLtm(m, keep);
      }
      const csrc = m.cacheSrc.data;
      const ckeep: number[] = [];
      for (let i = 0; i < csrc.length; i++) if (!this.isStale(csrc[i])) ckeep.push(i);
      if (ckeep.length < csrc.length) {
        removed += csrc.length - ckeep.length;
        m.cache.keep(ckeep);
        m.cacheKeys.keep(ckeep);
        m.cacheAges.keep(ckeep);
        m.cacheSrc.keep(ckeep);
        m.cacheRef.keep(ckeep);
        m.cacheKeyRef.keep(ckeep);
      }
    }
    return removed;
  }

  /** Stale tokens in θ, Θ and the cache over all layers. */
  staleTokens(): number {
    let n = 0;
    for (const m of this.layers) {
      for (const col of [m.stmSrc, m.ltmSrc, m.cacheSrc]) for (const x of col.data) if (x >= 0 && this.isStale(x)) n++;
    }
    return n;
  }

  /** θ indices of layer l whose tokens are stale (the preferred drops of the next injection). */
  staleStm(l: number): number[] {
    const src = this.layers[l].stmSrc.data;
    const out: number[] = [];
    for (let i = 0; i < src.length; i++) if (this.isStale(src[i])) out.push(i);
    return out;
  }

  clone(): MemoryState {
    const layers = this.layers.map((m) => ({
      stm: m.stm.clone(), stmAges: m.stmAges.clone(), stmSrc: m.stmSrc.clone(),
      ltm: m.ltm.clone(), ltmKeys: m.ltmKeys.clone(), ltmAges: m.ltmAges.clone(), ltmRf: m.ltmRf.clone(), ltmSrc: m.ltmSrc.clone(),
      cache: m.cache.clone(), cacheKeys: m.cacheKeys.clone(), cacheAges: m.cacheAges.clone(), cacheSrc: m.cacheSrc.clone(),
      stmRef: m.stmRef.clone(), cacheRef: m.cacheRef.clone(), cacheKeyRef: m.cacheKeyRef.clone(),
    }));
    const s = new MemoryState(this.dims, this.policy, layers);
    s.updateStep = this.updateStep;
    s.isStale = this.isStale;
    return s;
  }
}

function emptyLayer(d: MemoryDims): LayerMemory {
  return {
    stm: new RowBuffer(d.hidden, d.stmSize), stmAges: new Column(d.stmSize), stmSrc: new Column(d.stmSize),
    ltm: new RowBuffer(d.hidden), ltmKeys: new RowBuffer(d.keyDim), ltmAges: new Column(), ltmRf: new Column(), ltmSrc: new Column(),
    cache: new RowBuffer(d.hidden), cacheKeys: new RowBuffer(d.keyDim), cacheAges: new Column(), cacheSrc: new Column(),
    stmRef: new Column(d.stmSize), cacheRef: new Column(), cacheKeyRef: new Column(),
  };
}

function clearCache(m: LayerMemory): void {
  m.cache.clear();
  m.cacheKeys.clear();
  m.cacheAges.clear();
  m.cacheSrc.clear();
  m.cacheRef.clear();
  m.cacheKeyRef.clear();
}

function keepLtm(m: LayerMemory, keep: number[]): void {
  m.ltm.keep(keep);
  m.ltmKeys.keep(keep);
  m.ltmAges.keep(keep);
  m.ltmRf.keep(keep);
  m.ltmSrc.keep(keep);
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
