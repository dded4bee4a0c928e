/**
 * Memory rows whose committed values live in segment files and are read only when asked for:
 * Θ values (a question reads R rows per layer, not all of Θ) and, since θ's K/V are kept by the
 * engine between questions, θ and the cache too (an injection reads K tail rows and the rows it
 * drops; all of θ_l is read once per injection, layer by layer, to recompute its K/V). At
 * mplus-8b shape that keeps 2.7 GB of bf16 θ out of RAM. Rows appended (or overwritten) since
 * the last commit are "pending" in RAM, in the table's format, until the store writes them.
 *
 * Row i of the table is refSeg[i]/refRow[i]: segment id and row within it, or refSeg −1 and the
 * index into `pending`. keep() only edits the references; the bytes go at the next rewrite.
 * Pending rows a keep() dropped stay in `pending` until a commit leaves no row pending (bounded
 * by the rows written between two commits).
 */
import { RowFormat, ValueRows, nextStamp, valueRows } from '../rows';
import { rowBytes } from './codec';
import { ROW_SPAN } from './rowRefs';
import { ReadWindow, SegmentReader } from './segment';

export type SegmentLookup = (segId: number) => SegmentReader;

export class SegmentedRows implements ValueRows {
  refSeg: number[] = [];
  refRow: number[] = [];
  pending: ValueRows;
  version = nextStamp();

  /** `format`: how pending rows are held (the disk's format for θ and the cache; f32 for Θ, whose disk format may be q8). */
  constructor(readonly width: number, readonly lookup: SegmentLookup, readonly format: RowFormat = 'f32') {
    this.pending = valueRows(format, width);
  }

  get count(): number {
    return this.refSeg.length;
  }

  get data(): Float32Array {
    return this.gather(Array.from({ length: this.count }, (_, i) => i));
  }

  /** Rows idx (repeats allowed), in that order; `window` tunes how segment reads coalesce (the bench varies it). */
  gather(idx: ArrayLike<number>, window?: ReadWindow): Float32Array {
    const d = this.width;
    const out = new Float32Array(idx.length * d);
    const bySeg = new Map<number, Array<[number, number]>>();
    const fromPending: number[] = [];
    const pendingSlots: number[] = [];
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      if (r < 0 || r >= this.count) throw new RangeError(`row ${r} outside 0..${this.count - 1}`);
      const s = this.refSeg[r];
      if (s < 0) {
        fromPending.push(this.refRow[r]);
        pendingSlots.push(i);
      } else {
        let l = bySeg.get(s);
        if (!l) bySeg.set(s, (l = []));
        l.push([this.refRow[r], i]);
      }
    }
    if (fromPending.length) {
      const rows = this.pending.gather(fromPending);
      pendingSlots.forEach((slot, k) => out.set(rows.subarray(k * d, (k + 1) * d), slot * d));
    }
    for (const [s, l] of bySeg) {
      l.sort((a, b) => a[0] - b[0]); // ascending file offsets: neighbours share a read
      this.lookup(s).readRows(l.map((x) => x[0]), out, l.map((x) => x[1]), window);
    }
    return out;
  }

  append(rows: Float32Array): void {
    const start = this.pending.count;
    this.pending.append(rows);
    for (let i = start; i < this.pending.count; i++) {
      this.refSeg.push(-1);
      this.refRow.push(i);
    }
    this.version = nextStamp();
  }

  /** Makes `rows` (in this table's format) the whole table, pending: taken over, not copied. */
  adoptPending(rows: ValueRows): void {
    if (rows.format !== this.format) throw new Error(`adoptPending: ${rows.format} rows in a ${this.format} table`);
    this.pending = rows;
    this.refSeg = new Array<number>(rows.count).fill(-1);
    this.refRow = Array.from({ length: rows.count }, (_, i) => i);
    this.version = nextStamp();
  }

  /** Overwrites row i: the new value is pending until the next commit writes it. */
  set(i: number, row: Float32Array): void {
    if (i < 0 || i >= this.count) throw new RangeError(`row ${i} outside 0..${this.count - 1}`);
    if (this.refSeg[i] < 0) {
      this.pending.set(this.refRow[i], row);
    } else {
      this.pending.append(row.subarray(0, this.width));
      this.refSeg[i] = -1;
      this.refRow[i] = this.pending.count - 1;
    }
    this.version = nextStamp();
  }

  keep(idx: ArrayLike<number>): void {
    this.refSeg = Array.from(idx, (i) => this.refSeg[i]);
    this.refRow = Array.from(idx, (i) => this.refRow[i]);
    this.version = nextStamp();
  }

  clear(): void {
    this.refSeg = [];
    this.refRow = [];
    this.version = nextStamp();
  }

  clone(): SegmentedRows {
    const c = new SegmentedRows(this.width, this.lookup, this.format);
    c.refSeg = this.refSeg.slice();
    c.refRow = this.refRow.slice();
    c.pending = this.pending.clone();
    return c;
  }

  /** Table positions of rows not yet on disk, in table order. */
  pendingPositions(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.refSeg[i] < 0) out.push(i);
    return out;
  }

  /** After those rows were written as segment `segId` (row k = positions[k]): point at it. */
  committed(positions: number[], segId: number): void {
    positions.forEach((p, k) => {
      this.refSeg[p] = segId;
      this.refRow[p] = k;
    });
    this.dropPendingIfDone();
  }

  /**
   * After a commit placed every row: row i is now at packed reference refs[i] (rowRefs.ts). The
   * content is unchanged (the commit wrote exactly the pending values), so the version is too:
   * what the engine derived from these rows (θ's K/V) stays valid.
   */
  pointAt(refs: ArrayLike<number>): void {
    if (refs.length !== this.count) throw new Error(`pointAt: ${refs.length} references for ${this.count} rows`);
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i];
      if (!(ref >= 0)) throw new Error(`pointAt: row ${i} has no place on disk`);
      const seg = Math.floor(ref / ROW_SPAN);
      this.refSeg[i] = seg;
      this.refRow[i] = ref - seg * ROW_SPAN;
    }
    this.dropPendingIfDone();
  }

  /** Bytes held in RAM for rows not yet on disk (what keeping the rest on disk saves is the difference). */
  get pendingBytes(): number {
    return this.pending.count * rowBytes(this.format, this.width);
  }

  private dropPendingIfDone(): void {
    if (!this.refSeg.includes(-1)) this.pending = valueRows(this.format, this.width);
  }
}
