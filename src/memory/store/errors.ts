/**
 * What can go wrong with a store on disk, each naming the file and what to do. The sidecar maps
 * them to protocol errors; the CLI prints them as they are.
 */
export class StoreError extends Error {
  constructor(readonly file: string, readonly problem: string, readonly fix: string) {
    super(`${file}: ${problem}. ${fix}`);
    this.name = new.target.name;
  }
}

/** A committed file is missing, truncated or fails its checksum. */
export class StoreCorruptError extends StoreError {
  constructor(file: string, problem: string) {
    super(file, problem, 'Rebuild the memory (`mplus ingest --rebuild`, or "M+: Rebuild Memory" in VS Code): the damaged store is moved aside and the workspace fed again');
  }
}

/** The store was written by another model or format version: refused, never misread. */
export class StoreMismatchError extends StoreError {
  constructor(file: string, problem: string) {
    super(file, problem, 'Rebuild the memory for this model (`mplus ingest --rebuild`, or "M+: Rebuild Memory"), or point --store at another directory');
  }
}

/** Another live process holds the store's write lock. */
export class StoreLockedError extends StoreError {
  constructor(file: string, holder: string) {
    super(file, `the store is in use by ${holder}`, 'Close the other VS Code window or `mplus` process using this workspace, or use another --store directory');
  }
}
