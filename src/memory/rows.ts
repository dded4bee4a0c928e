import { bf16ToF32Array, f32ToBf16Array } from '../model/dtype';

/**
 * A growable table of fixed-width float32 rows (θ, Θ values, keys) with a parallel per-row
 * record of integers (ages, sources) kept by the owner. Appends amortise by doubling capacity;
 * gathers and filters produce dense copies so row i is always at data[i·width .. (i+1)·width).
 */
/**
 * What memory needs of a table of rows. RowBuffer keeps them in RAM; the store's SegmentedRows
 * keeps committed Θ values on disk and reads only the rows a question retrieves.
 */
export interface Rows {
  readonly width: number;
  readonly count: number;
  /** Every live row, dense (materialises on-disk rows: for traces and tests, not hot paths). */
  readonly data: Float32Array;
  gather(idx: ArrayLike<number>): Float32Array;
  append(rows: Float32Array): void;
  keep(idx: ArrayLike<number>): void;
  clear(): void;
  clone(): Rows;
}

/**
 * Precision in which a table holds θ or cache rows in RAM: f32 (exact; the golden cases) or bf16
 * (half the bytes; what a bf16 checkpoint computes in, and what its store keeps on disk anyway).
 */
export type RowFormat = 'f32' | 'bf16';
export const ROW_FORMATS: readonly RowFormat[] = ['f32', 'bf16'];

/** θ and cache rows: readable as float32 whatever the format they are held in. */
export interface ValueRows extends Rows {
  readonly format: RowFormat;
  /**
   * A stamp that changes with every change of content made through the table's methods, unique
   * over every table in the process (a clone gets its own): what a cache derived from the rows (the
   * engine's θ K/V) is keyed by. Writes through `data` views bypass it: nothing writes that way.
   */
  readonly version: number;
  /** Overwrites row i with `row` (rounded to the table's format). */
  set(i: number, row: Float32Array): void;
  clone(): ValueRows;
}

/** An empty table of `format` rows. */
export function valueRows(format: RowFormat, width: number, capacity = 0): ValueRows {
  return format === 'bf16' ? new Bf16Rows(width, capacity) : new RowBuffer(width, capacity);
}

/** A table of `format` rows holding `data` (rounded to the format). */
export function valueRowsFrom(format: RowFormat, width: number, data: Float32Array): ValueRows {
  return format === 'bf16' ? Bf16Rows.from(width, data) : RowBuffer.from(width, data);
}

/** The same rows in `format` (the table itself when it is already in that format). */
export function inFormat(rows: ValueRows, format: RowFormat): ValueRows {
  return rows.format === format ? rows : valueRowsFrom(format, rows.width, rows.data);
}

let lastStamp = 0;
/** A version stamp no table in this process has had (ValueRows.version). */
export const nextStamp = (): number => ++lastStamp;

/** A growable table's backing array. */
type Backing = Float32Array | Uint16Array | Float64Array;

/**
 * `buf` with room for `need` elements: itself when it has it, else a new array (at least twice
 * as long, so appends amortise) holding its first `live` elements.
 */
function withRoom<T extends Backing>(buf: T, live: number, need: number, make: new (length: number) => T): T {
  if (need <= buf.length) return buf;
  const next = new make(Math.max(need, buf.length * 2));
  next.set(buf.subarray(0, live));
  return next;
}

export class RowBuffer implements ValueRows {
  readonly format = 'f32';
  private buf: Float32Array;
  count = 0;
  version = nextStamp();

  constructor(readonly width: number, capacity = 0) {
    this.buf = new Float32Array(Math.max(capacity, 1) * width);
  }

  static from(width: number, data: Float32Array): RowBuffer {
    if (data.length % width !== 0) throw new Error(`RowBuffer: ${data.length} values is not a multiple of width ${width}`);
    const r = new RowBuffer(width, data.length / width);
    r.buf.set(data);
    r.count = data.length / width;
    return r;
  }

  /** A view of the live rows (do not keep across appends). */
  get data(): Float32Array {
    return this.buf.subarray(0, this.count * this.width);
  }

  row(i: number): Float32Array {
    return this.buf.subarray(i * this.width, (i + 1) * this.width);
  }

  append(rows: Float32Array): void {
    const n = rows.length / this.width;
    if (!Number.isInteger(n)) throw new Error(`RowBuffer.append: ${rows.length} values is not whole rows of ${this.width}`);
    this.buf = withRoom(this.buf, this.count * this.width, (this.count + n) * this.width, Float32Array);
    this.buf.set(rows, this.count * this.width);
    this.count += n;
    this.version = nextStamp();
  }

  set(i: number, row: Float32Array): void {
    if (i < 0 || i >= this.count) throw new RangeError(`row ${i} outside 0..${this.count - 1}`);
    this.buf.set(row.subarray(0, this.width), i * this.width);
    this.version = nextStamp();
  }

  /** Rows at `idx`, in that order, as one dense array. */
  gather(idx: ArrayLike<number>): Float32Array {
    const out = new Float32Array(idx.length * this.width);
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      if (r < 0 || r >= this.count) throw new RangeError(`row ${r} outside 0..${this.count - 1}`);
      out.set(this.row(r), i * this.width);
    }
    return out;
  }

  /** Keeps only the rows at `idx` (ascending), in place. */
  keep(idx: ArrayLike<number>): void {
    const g = this.gather(idx);
    this.buf.set(g);
    this.count = idx.length;
    this.version = nextStamp();
  }

  clear(): void {
    this.count = 0;
    this.version = nextStamp();
  }

  clone(): RowBuffer {
    return RowBuffer.from(this.width, this.data.slice());
  }
}

/**
 * Rows held as bf16 bits (round to nearest even on the way in), read back as float32 — exactly
 * what the store's bf16 codec writes and a reopen returns, so a session holding its θ this way
 * computes the same as one that reopened its store. Half the RAM of RowBuffer: θ of mplus-8b is
 * 2.7 GB instead of 5.4 GB. Every read decodes into a new float32 array.
 */
export class Bf16Rows implements ValueRows {
  readonly format = 'bf16';
  private buf: Uint16Array;
  count = 0;
  version = nextStamp();

  constructor(readonly width: number, capacity = 0) {
    this.buf = new Uint16Array(Math.max(capacity, 1) * width);
  }

  static from(width: number, data: Float32Array): Bf16Rows {
    if (data.length % width !== 0) throw new Error(`Bf16Rows: ${data.length} values is not a multiple of width ${width}`);
    const r = new Bf16Rows(width, data.length / width);
    r.append(data);
    return r;
  }

  get data(): Float32Array {
    return bf16ToF32Array(this.buf.subarray(0, this.count * this.width));
  }

  append(rows: Float32Array): void {
    const n = rows.length / this.width;
    if (!Number.isInteger(n)) throw new Error(`Bf16Rows.append: ${rows.length} values is not whole rows of ${this.width}`);
    this.buf = withRoom(this.buf, this.count * this.width, (this.count + n) * this.width, Uint16Array);
    f32ToBf16Array(rows, this.buf, this.count * this.width);
    this.count += n;
    this.version = nextStamp();
  }

  set(i: number, row: Float32Array): void {
    if (i < 0 || i >= this.count) throw new RangeError(`row ${i} outside 0..${this.count - 1}`);
    f32ToBf16Array(row.subarray(0, this.width), this.buf, i * this.width);
    this.version = nextStamp();
  }

  gather(idx: ArrayLike<number>): Float32Array {
    const w = this.width;
    const out = new Float32Array(idx.length * w);
    const o = new Int32Array(out.buffer); // `bits << 16` is the float32 with those top bits
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      if (r < 0 || r >= this.count) throw new RangeError(`row ${r} outside 0..${this.count - 1}`);
      for (let j = 0, a = r * w, b = i * w; j < w; j++) o[b + j] = this.buf[a + j] << 16;
    }
    return out;
  }

  keep(idx: ArrayLike<number>): void {
    const w = this.width;
    // ascending idx: row idx[i] ≥ i, so copying forward never overwrites a row still to be read
    for (let i = 0; i < idx.length; i++) if (idx[i] !== i) this.buf.copyWithin(i * w, idx[i] * w, (idx[i] + 1) * w);
    this.count = idx.length;
    this.version = nextStamp();
  }

  clear(): void {
    this.count = 0;
    this.version = nextStamp();
  }

  clone(): Bf16Rows {
    const c = new Bf16Rows(this.width, this.count);
    c.buf.set(this.buf.subarray(0, this.count * this.width));
    c.count = this.count;
    return c;
  }
}


/** Growable float64 column (ages, recall frequencies, sources) matching a RowBuffer row for row. */
export class Column {
  private buf: Float64Array;
  count = 0;

  constructor(capacity = 0) {
    this.buf = new Float64Array(Math.max(capacity, 1));
  }

  static from(values: ArrayLike<number>): Column {
    const c = new Column(values.length);
    c.buf.set(values);
    c.count = values.length;
    return c;
  }

  get data(): Float64Array {
    return this.buf.subarray(0, this.count);
  }

  append(values: ArrayLike<number>): void {
    this.buf = withRoom(this.buf, this.count, this.count + values.length, Float64Array);
    this.buf.set(values, this.count);
    this.count += values.length;
  }

  gather(idx: ArrayLike<number>): Float64Array {
    const out = new Float64Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = this.buf[idx[i]];
    return out;
  }

  keep(idx: ArrayLike<number>): void {
    const g = this.gather(idx);
    this.buf.set(g);
    this.count = idx.length;
  }

  clear(): void {
    this.count = 0;
  }

  clone(): Column {
    return Column.from(this.data);
  }
}
