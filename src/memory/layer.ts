/**
 * One layer's memory as parallel columns, and the ONE definition of which columns exist.
 *
 * Per layer l (d = hidden size, s = retriever key size, N = |θ|, M = |Θ|, C = |cache|):
 *   part  column      shape   meaning
 *   stm   stm         [N, d]  θ, the short-term pool; row order is meaningful (the tail feeds injection);
 *                             in RAM, or on disk behind `ValueRows` (the store's SegmentedRows)
 *         stmAges     [N]     slot of the token in the injection that wrote it (K−1 … 0); ⚑ never grows
 *         stmSrc      [N]     provenance: source id that wrote the token (−1 = shipped with the checkpoint)
 *         stmId       [N]     row identity (see below)
 *   ltm   ltm         [M, d]  Θ values (in RAM, or on disk behind `Rows`)
 *         ltmKeys     [M, s]  retriever keys;  ltmAges [M];  ltmRf [M] recall frequencies;  ltmSrc [M]
 *   cache cache       [C, d]  tokens dropped from θ since the last merge
 *         cacheKeys   [C, s]; cacheAges [C]; cacheSrc [C]; cacheId [C]
 *
 * Invariant: every column of a part has exactly as many entries as the part has rows; a part is
 * only ever filtered (keep), appended or cleared as a whole, through the helpers below, so the
 * invariant cannot drift when a column is added (add it to PARTS and to LayerMemory).
 *
 * Row identity (`stmId`, `cacheId`): a number unique to a token for the life of the process,
 * carried from θ into the cache. Values never change once a token is written, so an owner of
 * copies of rows (the on-disk store, a device-resident buffer) recognises a row it already holds
 * by its id, whatever drops and compactions moved it. Ids are not memory content: a reopened
 * store numbers its rows afresh.
 */
import { Column, RowBuffer, RowFormat, Rows, ValueRows, inFormat, valueRows } from './rows';

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

export interface LayerMemory {
  /** θ values, in the memory's row format (f32, or bf16: half the bytes); in RAM or on disk (SegmentedRows). */
  stm: ValueRows;
  stmAges: Column;
  stmSrc: Column;
  stmId: Column;
  /** Θ values: in RAM (RowBuffer) or on disk with lazy row reads (the store's SegmentedRows). */
  ltm: Rows;
  /** Retriever keys of Θ rows, in the memory's row format (bf16 halves the part of RAM that grows with Θ). */
  ltmKeys: ValueRows;
  ltmAges: Column;
  ltmRf: Column;
  ltmSrc: Column;
  /** Cache values, in the same row format as θ (they are rows θ dropped). */
  cache: ValueRows;
  cacheKeys: ValueRows;
  cacheAges: Column;
  cacheSrc: Column;
  cacheId: Column;
}

export type Part = 'stm' | 'ltm' | 'cache';
type ColumnName = keyof LayerMemory;

/** The columns of each part. `satisfies` makes the compiler reject a LayerMemory field left out. */
export const PARTS = {
  stm: ['stm', 'stmAges', 'stmSrc', 'stmId'],
  ltm: ['ltm', 'ltmKeys', 'ltmAges', 'ltmRf', 'ltmSrc'],
  cache: ['cache', 'cacheKeys', 'cacheAges', 'cacheSrc', 'cacheId'],
} as const satisfies Record<Part, readonly ColumnName[]>;

// Compile-time check that PARTS names every column of LayerMemory exactly once.
type Listed = (typeof PARTS)[Part][number];
const everyColumnListed: Record<Exclude<ColumnName, Listed>, never> = {};
void everyColumnListed;

/** Source-id column of each part (provenance scans go through this, nowhere else). */
export const SOURCE_COLUMN = { stm: 'stmSrc', ltm: 'ltmSrc', cache: 'cacheSrc' } as const satisfies Record<Part, ColumnName>;

/** Width of a row column in `dims` (0 for per-row number columns). */
function widthOf(col: ColumnName, d: MemoryDims): number {
  if (col === 'stm' || col === 'ltm' || col === 'cache') return d.hidden;
  if (col === 'ltmKeys' || col === 'cacheKeys') return d.keyDim;
  return 0;
}

/** An empty layer; θ and cache values and every key in `format` (Θ values stay float32 in RAM; the store holds them on disk). */
export function emptyLayer(d: MemoryDims, format: RowFormat = 'f32'): LayerMemory {
  const out: Partial<Record<ColumnName, Rows | Column>> = {};
  for (const part of Object.keys(PARTS) as Part[]) {
    const cap = part === 'stm' ? d.stmSize : 0;
    for (const col of PARTS[part]) {
      const w = widthOf(col, d);
      out[col] = !w ? new Column(cap) : col === 'ltm' ? new RowBuffer(w, cap) : valueRows(format, w, cap);
    }
  }
  return out as LayerMemory;
}

/** The layer with θ and cache values and the keys in `format` (the same object when they already are). */
export function layerInFormat(m: LayerMemory, format: RowFormat): LayerMemory {
  const tables = [m.stm, m.cache, m.ltmKeys, m.cacheKeys];
  if (tables.every((t) => t.format === format)) return m;
  return { ...m, stm: inFormat(m.stm, format), cache: inFormat(m.cache, format), ltmKeys: inFormat(m.ltmKeys, format), cacheKeys: inFormat(m.cacheKeys, format) };
}

/** A deep copy (on-disk Θ rows are shared: they never change once written). */
export function cloneLayer(m: LayerMemory): LayerMemory {
  const out: Partial<Record<ColumnName, Rows | Column>> = {};
  for (const part of Object.keys(PARTS) as Part[]) for (const col of PARTS[part]) out[col] = m[col].clone();
  return out as LayerMemory;
}

/** Keeps only rows `idx` (ascending) of every column of `part`. */
export function keepPart(m: LayerMemory, part: Part, idx: ArrayLike<number>): void {
  for (const col of PARTS[part]) m[col].keep(idx);
}

export function clearPart(m: LayerMemory, part: Part): void {
  for (const col of PARTS[part]) m[col].clear();
}

/** Rows of `part`. */
export function partCount(m: LayerMemory, part: Part): number {
  return m[SOURCE_COLUMN[part]].count;
}

/** Positions in `part` whose source id satisfies `pred` (the one stale/live scan). */
export function rowsWhereSource(m: LayerMemory, part: Part, pred: (source: number) => boolean): number[] {
  const src = m[SOURCE_COLUMN[part]].data;
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) if (pred(src[i])) out.push(i);
  return out;
}

/** Checks the part-length invariant (for loaders of untrusted data and for tests). */
export function checkLayer(m: LayerMemory, where: string): void {
  for (const [what, t] of [['cache rows', m.cache], ['Θ keys', m.ltmKeys], ['cache keys', m.cacheKeys]] as const) {
    if (t.format !== m.stm.format) throw new Error(`${where}: θ rows are ${m.stm.format}, ${what} ${t.format}`);
  }
  for (const part of Object.keys(PARTS) as Part[]) {
    const n = partCount(m, part);
    for (const col of PARTS[part]) {
      if (m[col].count !== n) throw new Error(`${where}: column ${col} has ${m[col].count} rows, its part ${part} has ${n}`);
    }
  }
}
