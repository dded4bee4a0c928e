/**
 * Where the store already holds each θ/cache row, by row identity (layer.ts): the store's own
 * bookkeeping, so memory carries no file references.
 *
 * A reference packs (row segment id, row within it) into one double: id · ROW_SPAN + row, exact
 * up to id 2^27; −1 = not on disk yet. A row's value is written once, while it is in θ (or, for a
 * row dropped before any commit saw it, in the cache); its retriever key exists only once the row
 * has left θ, so cache rows also have a key reference into the layer's key segments.
 *
 * Invariant: after a commit (and at open) the maps hold exactly the rows of the committed θ and
 * cache; entries of rows that left since (merged into Θ, compacted, discarded as stale) are
 * dropped then, so the maps stay at N + C entries per layer.
 */
export const ROW_SPAN = 2 ** 26;

export class RowRefs {
  private values: Array<Map<number, number>>;
  private keys: Array<Map<number, number>>;

  constructor(layers: number) {
    this.values = Array.from({ length: layers }, () => new Map());
    this.keys = Array.from({ length: layers }, () => new Map());
  }

  /** Value references of rows `ids` of layer l (−1 where not on disk). */
  valueRefs(l: number, ids: ArrayLike<number>): Float64Array {
    const m = this.values[l];
    return Float64Array.from(ids, (id) => m.get(id) ?? -1);
  }

  /** Key references of cache rows `ids` of layer l (−1 where not on disk). */
  keyRefs(l: number, ids: ArrayLike<number>): Float64Array {
    const m = this.keys[l];
    return Float64Array.from(ids, (id) => m.get(id) ?? -1);
  }

  /** Replaces layer l's bookkeeping by exactly these rows (the committed θ and cache). */
  reset(l: number, stm: { ids: ArrayLike<number>; refs: ArrayLike<number> }, cache: { ids: ArrayLike<number>; refs: ArrayLike<number>; keyRefs: ArrayLike<number> }): void {
    const v = new Map<number, number>();
    const k = new Map<number, number>();
    for (let i = 0; i < stm.ids.length; i++) v.set(stm.ids[i], stm.refs[i]);
    for (let i = 0; i < cache.ids.length; i++) {
      v.set(cache.ids[i], cache.refs[i]);
      k.set(cache.ids[i], cache.keyRefs[i]);
    }
    this.values[l] = v;
    this.keys[l] = k;
  }
}

/** Segment ids of packed references (−1 stays −1). */
export const segIdsOf = (refs: Float64Array): Float64Array => refs.map((r) => (r < 0 ? -1 : Math.floor(r / ROW_SPAN)));

/** Points the written rows at segment `id`: tables in order, row k after the previous tables'. */
export function assignRefs(id: number, refs: Float64Array[], positions: number[][]): void {
  const n = positions.reduce((a, p) => a + p.length, 0);
  if (n >= ROW_SPAN) throw new Error(`${n} rows in one layer exceed the store's row reference range`);
  let k = 0;
  refs.forEach((t, j) => positions[j].forEach((p) => (t[p] = id * ROW_SPAN + k++)));
}
