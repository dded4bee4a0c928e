/**
 * The store's manifest: the schema of a commit, the files it names, and the durable-file helpers
 * every commit uses. Format and crash-safety argument: store.ts.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { MemoryDims } from '../layer';
import type { ValueFormat } from './codec';
import { StoreCorruptError, StoreMismatchError } from './errors';
import type { SegmentEntry } from './segment';

export const STORE_FORMAT = 'mplus-store';
/** 2: θ and cache in row segments (1 kept them inline in the state file). */
export const STORE_VERSION = 2;
export const MANIFEST = 'manifest.json';
/** Written after the first commit: a directory with this marker and no manifest lost its commit. */
export const EVER = 'manifest.json.ever';

export interface ModelIdentity {
  configHash: string;
  weightFingerprint: string;
}

export interface FileRef {
  file: string;
  size: number;
  sha256: string;
}

export type SegmentRef = SegmentEntry & { id: number };

export interface Manifest {
  format: string;
  version: number;
  model: ModelIdentity;
  dims: MemoryDims;
  valueFormat: ValueFormat;
  thetaFormat: 'f32' | 'bf16';
  seq: number;
  committedAt: string;
  state: FileRef;
  /** Θ ages (minus ageShift), frequencies, sources and segment references; see commit.ts. */
  ltm: FileRef & { ageShift: number; baseFirstAge: number | null };
  sources: FileRef;
  segments: SegmentRef[];
  /** θ and cache values. Ids share one space with `segments`. */
  rowSegments: SegmentRef[];
  /** The dropped cache's retriever keys (segments of keys only). */
  keySegments: SegmentRef[];
  /** Caller's small extra data (e.g. the workspace's file list), committed with the rest. */
  extra: Record<string, unknown>;
}

export const allSegments = (m: Manifest): SegmentRef[] => [...m.segments, ...m.rowSegments, ...m.keySegments];

/** Every file a commit consists of (plus the lock and the marker): what garbage collection keeps. */
export function namedFiles(m: Manifest): Set<string> {
  return new Set([MANIFEST, 'lock', EVER, m.state.file, m.ltm.file, m.sources.file, ...allSegments(m).map((e) => e.file)]);
}

/**
 * Reads `dir`'s manifest and checks that this build and this model may use it. Returns null
 * when the directory holds no commit yet. Formats in the manifest win over the requested ones
 * (a store keeps the precision it was built with): the caller reads them from the result.
 */
export function readManifest(dir: string, identity: ModelIdentity, dims: MemoryDims): Manifest | null {
  const mf = path.join(dir, MANIFEST);
  if (!fs.existsSync(mf)) {
    // A directory that once held a commit (the marker is written after the first one) and lost
    // its manifest cannot be trusted: refuse rather than silently start over.
    if (fs.existsSync(path.join(dir, EVER))) throw new StoreCorruptError(mf, 'the manifest is missing but this directory held a committed store');
    // Both the manifest and its marker gone, yet files of a later commit than the creating
    // one are here: memory was built in this directory; starting empty would hide the loss.
    const later = laterCommitFile(dir);
    if (later) throw new StoreCorruptError(mf, `the manifest and ${EVER} are missing but this directory holds a committed store (${later} and others)`);
    return null;
  }
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(mf, 'utf8')) as Manifest;
  } catch {
    throw new StoreCorruptError(mf, 'manifest is not valid JSON');
  }
  if (m.format !== STORE_FORMAT) throw new StoreMismatchError(mf, `is not an M+ store manifest (format ${JSON.stringify(m.format)})`);
  if (m.version !== STORE_VERSION) throw new StoreMismatchError(mf, `store format version ${m.version}, this build reads version ${STORE_VERSION}`);
  if (m.model?.configHash !== identity.configHash || m.model?.weightFingerprint !== identity.weightFingerprint) {
    throw new StoreMismatchError(mf, `the store was built by another model (config ${m.model?.configHash?.slice(0, 12)}…, weights ${m.model?.weightFingerprint?.slice(0, 12)}…), not the one loaded`);
  }
  for (const k of Object.keys(dims) as Array<keyof MemoryDims>) {
    if (m.dims?.[k] !== dims[k]) throw new StoreMismatchError(mf, `store dims ${k}=${m.dims?.[k]} but the model has ${dims[k]}`);
  }
  return m;
}

/**
 * A data file of commit 2 or later in `dir` (names carry their commit's seq: `state-<seq>.bin`,
 * `seg-<layer>-<seq>-<id>.bin`, …), or null. Commit 1 is the creating commit of an empty store,
 * which a crash may leave without a manifest: those files alone are leftovers, not memory.
 */
function laterCommitFile(dir: string): string | null {
  for (const f of fs.readdirSync(dir)) {
    const m = /^(?:state|ltm|sources)-(\d+)\./.exec(f) ?? /^(?:seg|rows|keys)-\d+-(\d+)-/.exec(f);
    if (m && Number(m[1]) >= 2) return f;
  }
  return null;
}

/** Makes `m` the commit: manifest.tmp written and fsynced, renamed over manifest.json, directory fsynced. */
export function publishManifest(dir: string, m: Manifest): void {
  const tmp = path.join(dir, `${MANIFEST}.tmp`);
  writeDurable(tmp, JSON.stringify(m, null, 1));
  fs.renameSync(tmp, path.join(dir, MANIFEST));
  fsyncDir(dir);
}

/** Deletes files of uncommitted or superseded commits (only names this store writes). */
export function collectGarbage(dir: string, keep: Set<string>): void {
  for (const f of fs.readdirSync(dir)) {
    if (keep.has(f) || f === 'lock' || f === EVER || f.startsWith('lock.')) continue;
    if (/^(state-|ltm-|sources-|seg-|rows-|keys-|manifest\.json\.tmp)/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
  }
}

export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

export function writeDurable(file: string, data: Buffer | string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A file named by the manifest, checked against its recorded size and checksum. */
export function readChecked(dir: string, ref: FileRef): Buffer {
  const file = path.join(dir, ref.file);
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new StoreCorruptError(file, `file named by the manifest is missing (${(e as NodeJS.ErrnoException).code})`);
  }
  if (b.length !== ref.size) throw new StoreCorruptError(file, `is ${b.length} bytes, the manifest says ${ref.size} (truncated)`);
  if (sha256(b) !== ref.sha256) throw new StoreCorruptError(file, 'checksum does not match the manifest (corrupted)');
  return b;
}
