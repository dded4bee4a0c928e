/**
 * Θ values whose committed rows live in segment files and are read only when gathered (a
 * question reads R rows per layer, not all of Θ). Rows appended since the last commit are
 * "pending" in RAM until the store writes them into a new segment.
 *
 * Row i of the table is refSeg[i]/refRow[i]: segment id and row within it, or refSeg −1 and the
 * index into `pending`. keep() only edits the references; the bytes go at the next rewrite.
 */
import { RowBuffer, Rows } from '../rows';
import { ReadWindow, SegmentReader } from './segment';

export type SegmentLookup = (segId: number) => SegmentReader;

export class SegmentedRows implements Rows {
  refSeg: number[] = [];
  refRow: number[] = [];
  pending: RowBuffer;

  constructor(readonly width: number, readonly lookup: SegmentLookup) {
    this.pending = new RowBuffer(width);
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
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i];
      if (r < 0 || r >= this.count) throw new RangeError(`row ${r} outside 0..${this.count - 1}`);
      const s = this.refSeg[r];
      if (s < 0) {
        out.set(this.pending.row(this.refRow[r]), i * d);
      } else {
        let l = bySeg.get(s);
        if (!l) bySeg.set(s, (l = []));
        l.push([this.refRow[r], i]);
      }
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
  }

  keep(idx: ArrayLike<number>): void {
    this.refSeg = Array.from(idx, (i) => this.refSeg[i]);
    this.refRow = Array.from(idx, (i) => this.refRow[i]);
  }

  clear(): void {
    this.refSeg = [];
    this.refRow = [];
  }

  clone(): SegmentedRows {
    const c = new SegmentedRows(this.width, this.lookup);
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
    if (!this.refSeg.includes(-1)) this.pending = new RowBuffer(this.width);
  }
}
