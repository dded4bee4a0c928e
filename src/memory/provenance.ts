/**
 * Provenance: which file, chunk and content wrote each memory token. Every injection gets one
 * source id; θ, Θ and the cache carry that id per token (MemoryState's *Src columns), and this
 * table maps ids to what a person can open. Id −1 means "shipped with the checkpoint". A chunk
 * shorter than K tokens writes K − n rows that re-read θ's newest rows; those keep the ids of the
 * rows they re-read (InjectionUpdate.rereadRows): an id names the chunk whose content a token holds.
 *
 * Invariants: ids are never reused (nextId only grows); a file's records become stale together
 * when the file changes or disappears; a stale record is pruned once no token refers to it.
 */

export interface ChunkSource {
  /** Workspace-relative posix path ("folder/rel" in a multi-root workspace). */
  file: string;
  /** 1-based inclusive line range and byte range of the chunk in the file. */
  startLine: number;
  endLine: number;
  startByte: number;
  endByte: number;
  /** Content hash of the chunk text (the chunker's stable id). */
  hash: string;
}

export interface SourceRecord extends ChunkSource {
  id: number;
  /** Injection sequence number (0-based count of injections into this store). */
  seq: number;
  stale: boolean;
}

export class SourceTable {
  private readonly byId = new Map<number, SourceRecord>();
  private readonly byFile = new Map<string, Set<number>>();
  nextId = 0;
  /** Injections ever made into this store (the next record's seq). */
  injections = 0;

  static fromJSON(j: { nextId: number; injections: number; records: SourceRecord[] }): SourceTable {
    const t = new SourceTable();
    t.nextId = j.nextId;
    t.injections = j.injections;
    for (const r of j.records) t.insert(r);
    return t;
  }

  toJSON(): { nextId: number; injections: number; records: SourceRecord[] } {
    return { nextId: this.nextId, injections: this.injections, records: [...this.byId.values()] };
  }

  /** Registers the chunk about to be injected; returns its source id. */
  add(c: ChunkSource): number {
    const r: SourceRecord = { ...c, id: this.nextId++, seq: this.injections++, stale: false };
    this.insert(r);
    return r.id;
  }

  get(id: number): SourceRecord | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Marks every chunk of `file` (or of every file under a folder prefix) stale; returns the ids. */
  markStale(pathOrFolder: string): number[] {
    const prefix = pathOrFolder.endsWith('/') ? pathOrFolder : pathOrFolder + '/';
    const out: number[] = [];
    for (const [file, ids] of this.byFile) {
      if (file !== pathOrFolder && !file.startsWith(prefix) && pathOrFolder !== '') continue;
      for (const id of ids) {
        const r = this.byId.get(id)!;
        if (!r.stale) {
          r.stale = true;
          out.push(id);
        }
      }
    }
    return out;
  }

  /** Marks the given ids stale (a file's chunks that changed). */
  markIdsStale(ids: Iterable<number>): void {
    for (const id of ids) {
      const r = this.byId.get(id);
      if (r) r.stale = true;
    }
  }

  isStale = (id: number): boolean => this.byId.get(id)?.stale ?? false;

  /** Live (non-stale) records of a file, by content hash. */
  liveChunks(file: string): Map<string, SourceRecord> {
    const m = new Map<string, SourceRecord>();
    for (const id of this.byFile.get(file) ?? []) {
      const r = this.byId.get(id)!;
      if (!r.stale) m.set(r.hash, r);
    }
    return m;
  }

  /** Files with at least one live chunk. */
  liveFiles(): string[] {
    const out: string[] = [];
    for (const [file, ids] of this.byFile) if ([...ids].some((id) => !this.byId.get(id)!.stale)) out.push(file);
    return out.sort();
  }

  /** Forgets stale records no token refers to any more (after compaction or natural drops). */
  prune(referenced: (id: number) => boolean): number {
    let n = 0;
    for (const [id, r] of this.byId) {
      if (r.stale && !referenced(id)) {
        this.byId.delete(id);
        const s = this.byFile.get(r.file)!;
        s.delete(id);
        if (!s.size) this.byFile.delete(r.file);
        n++;
      }
    }
    return n;
  }

  clone(): SourceTable {
    return SourceTable.fromJSON(JSON.parse(JSON.stringify(this.toJSON())));
  }

  private insert(r: SourceRecord): void {
    this.byId.set(r.id, r);
    let s = this.byFile.get(r.file);
    if (!s) this.byFile.set(r.file, (s = new Set()));
    s.add(r.id);
  }
}
