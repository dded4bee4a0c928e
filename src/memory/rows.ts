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

export class RowBuffer implements Rows {
  private buf: Float32Array;
  count = 0;

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
    const need = (this.count + n) * this.width;
    if (need > this.buf.length) {
      const next = new Float32Array(Math.max(need, this.buf.length * 2));
      next.set(this.data);
      this.buf = next;
    }
    this.buf.set(rows, this.count * this.width);
    this.count += n;
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
  }

  clear(): void {
    this.count = 0;
  }

  clone(): RowBuffer {
    return RowBuffer.from(this.width, this.data.slice());
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
    if (this.count + values.length > this.buf.length) {
      const next = new Float64Array(Math.max(this.count + values.length, this.buf.length * 2));
      next.set(this.data);
      this.buf = next;
    }
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
