/**
 * The one contract between the sidecar (model, memory, files) and its clients (the VS Code
 * extension, the `mplus` CLI): JSON-RPC 2.0 over stdio, framed with Content-Length headers by
 * vscode-jsonrpc. Everything the UI can do crosses here, typed.
 *
 * Versioning: the client sends `protocolVersion` in `initialize`; a server speaking another
 * version answers with error code VersionMismatch, and a client receiving another version in the
 * result refuses it. Bump PROTOCOL_VERSION on any incompatible change.
 *
 * Long requests (`ingest`, `ask`) honour JSON-RPC `$/cancelRequest` and the explicit `cancel`
 * request; a cancelled ingest still commits what it finished (it stops at a safe point).
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { Precision } from '../engine/quant/precision';
import type { FeedEstimate } from './estimate';

// Types and lists defined below the protocol, re-exported so that clients (the extension, the
// CLI) import only this file and never the engine (DESIGN.md: the extension never imports it).
/** Precision of the model's linear layers: the engine's list, defined where the engine uses it. */
export { PRECISIONS, isPrecision } from '../engine/quant/precision';
export type { Precision } from '../engine/quant/precision';
export type { FeedEstimate } from './estimate';

export const PROTOCOL_VERSION = 1;

export enum ErrorCodes {
  VersionMismatch = -32001,
  NotInitialized = -32002,
  DeviceUnavailable = -32003,
  BadModel = -32004,
  BadStore = -32005,
  Busy = -32006,
  /**
   * Damage found in a store that opened fine (a Θ row failing its checksum when read or verified):
   * the client offers Rebuild, as for BadStore at initialize.
   */
  StoreDamaged = -32007,
  /** The question is longer than the limit named in the message (in tokens). */
  QuestionTooLong = -32008,
  /** `requireStore` was set and the store folder holds no memory store. */
  NoStore = -32009,
  /**
   * The store's folder cannot be created or written (a file in the way, no permission, a
   * read-only or full disk): the client offers choosing another folder, not Rebuild.
   */
  StoreUnwritable = -32010,
  Cancelled = -32800, // as LSP's RequestCancelled
}

/** The `data` of a BadStore/Busy error from a store that could not be opened. */
export interface StoreErrorData {
  /** What is wrong, in words for people, without the file path or the command-line advice. */
  problem: string;
}

/** Where the model may be asked to run: the one list (package.json's mplus.device enum mirrors it). */
export const DEVICE_REQUESTS = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type DeviceRequest = (typeof DEVICE_REQUESTS)[number];

export function isDeviceRequest(x: unknown): x is DeviceRequest {
  return (DEVICE_REQUESTS as readonly unknown[]).includes(x);
}

export interface InitializeParams {
  protocolVersion: number;
  modelDir: string;
  storeDir: string;
  device: DeviceRequest;
  /** When the requested device is unavailable, fall back to CPU instead of failing. */
  allowCpuFallback?: boolean;
  /**
   * Linear layers at f32 (default: the reference), bf16, or int8/int4 block-quantized weights
   * (quantized once per checkpoint into a cache outside it; BENCHMARKS.md "Precision").
   */
  precision?: Precision;
  workspaceFolders: string[];
  /** Seed for the random drop and sampling (replayable runs); default random. */
  seed?: number;
  /** Extra ignore globs (user setting), .gitignore syntax. */
  ignore?: string[];
  /** Watch the workspace folders and refresh memory on change (default true). */
  watch?: boolean;
  /** Start with feeding paused (default false). */
  paused?: boolean;
  /** Budgets for discovery: at most this many files / bytes are fed (defaults in src/workspace). */
  maxFiles?: number;
  maxBytes?: number;
  /**
   * When the store cannot be used (damaged, or built by another model or format version): move
   * it aside and start an empty one instead of failing. The result's storeNotice says so.
   */
  rebuildStore?: boolean;
  /** Disk budget for the store in bytes; 0 or absent = the spec's recall-frequency expiry only. */
  storeBudgetBytes?: number;
  /**
   * θ only (Θ off, MemoryLLM): tokens dropped from θ are discarded, never merged into Θ, and a
   * question retrieves only what the store's Θ already held (in a fresh store, what the checkpoint
   * ships). A per-run switch for benchmarks (`mplus bench retention`), not a user setting; a store
   * fed one way is refused (BadStore) by a run the other way.
   */
  thetaOnly?: boolean;
  /**
   * Open only an existing store: when `storeDir` holds none, fail with NoStore before loading the
   * model. For an untrusted workspace, which may answer from memory built earlier but must not
   * have its files read.
   */
  requireStore?: boolean;
}

export interface DeviceInfo {
  requested: DeviceRequest;
  used: 'cuda' | 'webgpu' | 'cpu';
  /** Provider and device as ONNX Runtime reports them. */
  description: string;
  /** Device memory in bytes where known (host RAM on CPU). */
  memoryBytes: number | null;
}

export interface InitializeResult {
  protocolVersion: number;
  serverVersion: string;
  device: DeviceInfo;
  model: { dir: string; layers: number; hidden: number; tokensPerInjection: number; stmTokens: number; retrievedTokens: number };
  status: StatusResult;
  /** Set when the store was rebuilt or repaired at open; says what was lost. */
  storeNotice?: string;
}

export interface IngestParams {
  /**
   * Workspace-relative or absolute paths (files or folders), or "all". Naming paths re-adds those
   * the user forgot (Re-add to Memory); "all" skips forgotten files.
   */
  paths: string[] | 'all';
}

export interface IngestResult {
  filesDone: number;
  chunksInjected: number;
  chunksSkipped: number;
  tokensInjected: number;
  cancelled: boolean;
  /** Files that could not be fed, with the reason. */
  errors: Array<{ path: string; message: string }>;
}

export interface AskParams {
  question: string;
  maxTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  topP?: number;
  /** Client-chosen id echoed in token/sources notifications. */
  askId?: string;
  /** Also return which memory rows the question read, by file (AskResult.retrieval; benchmarks). */
  retrieval?: boolean;
}

/** Memory rows of one file, counted in one layer. */
export interface FileRows {
  /** Workspace-relative path; "(checkpoint)" for rows the checkpoint shipped, "(forgotten)" for provenance no longer kept. */
  path: string;
  rows: number;
}

/** What one question read from memory in one layer, by the file that wrote each row (provenance). */
export interface LayerRetrieval {
  /** Whether retrieval scored the candidates (|Θ| ≥ R) or repeat-filled Θ (the cache ignored). */
  scored: boolean;
  /** Distinct Θ/cache rows retrieved (a repeat-filled layer retrieves fewer than R distinct rows). */
  retrieved: number;
  /** Rows retrieval chose from: Θ, plus the dropped-token cache when it scored. */
  candidates: number;
  retrievedByFile: FileRows[];
  candidatesByFile: FileRows[];
  /** θ by file (a question reads all of θ). */
  stmByFile: FileRows[];
}

export interface Source {
  /** Workspace-relative path ("folder/path" in a multi-root workspace). */
  path: string;
  /** Absolute path on the sidecar's machine, for opening the file. */
  absPath?: string;
  startLine: number;
  endLine: number;
  /** Share of the question's attention/retrieval weight, 0..1. */
  weight: number;
}

export interface AskResult {
  askId: string;
  answer: string;
  tokens: number;
  sources: Source[];
  cancelled: boolean;
  /** How much of the workspace memory covered when the question was asked. */
  coverage: Coverage;
  /** Per layer, when AskParams.retrieval was set. */
  retrieval?: LayerRetrieval[];
}

export interface Coverage {
  filesFed: number;
  filesKnown: number;
  feeding: boolean;
}

export interface ForgetParams {
  paths: string[];
}

export interface ForgetResult {
  filesForgotten: number;
  tokensMarkedStale: number;
}

export type ServerState = 'starting' | 'idle' | 'ingesting' | 'answering' | 'paused' | 'error';

export interface StatusResult {
  state: ServerState;
  coverage: Coverage;
  memory: {
    stmTokensPerLayer: number;
    ltmTokensPerLayer: number;
    staleTokens: number;
    injections: number;
    storeBytes: number;
    /** Store size by part, bytes (cacheAndBookkeeping: the dropped-token cache, ages, recall frequencies, row references). */
    storeParts: { theta: number; cacheAndBookkeeping: number; ltmValues: number; ltmKeys: number; ltmRowChecksums: number; provenance: number };
  };
  /** What the running feeding job has left (files, and chunks as estimated from the bytes fed). */
  queue: { pendingFiles: number; pendingChunks: number };
  device: DeviceInfo | null;
  /**
   * Secret files kept out of memory: by name (SECRET_PATTERNS) or by content (a private key, a
   * cloud credential, a token). `files` lists the first 50 by path; only a `.mplusignore` rule
   * naming a file (`!path`) feeds it.
   */
  secretsKeptOut: { count: number; files: Array<{ path: string; reason: string }> };
  /** Set once a damaged part of the store was found (a Θ row failing its checksum): rebuild. */
  storeDamage?: string;
  /**
   * Files and folders the user told memory to forget (workspace keys, the first 50): never fed
   * again, across restarts and rebuilds, until re-added with `mplus/ingest` naming them.
   */
  forgotten: { count: number; paths: string[] };
  /** What feeding the workspace costs (tokens, store size, time left at the measured rate): estimate.ts. */
  estimate: FeedEstimate;
}

export interface VerifyResult {
  ok: true;
  /** Segment files whose every row was read and matched its checksum. */
  segments: number;
}

export interface RebuildResult {
  /** Where the previous store now lies (moved aside, never deleted); null when there was none. */
  movedTo: string | null;
  status: StatusResult;
}

export interface SetPausedParams {
  paused: boolean;
}

export interface FocusParams {
  /** Files the user has open or just edited, most important first: fed before the rest. */
  paths: string[];
}

export interface CancelParams {
  /** What to cancel: one ask by id, all ingestion, or everything. */
  target: { askId: string } | 'ingest' | 'all';
}

export interface ProgressParams {
  kind: 'ingest';
  filesDone: number;
  filesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  tokensPerSecond: number;
  /** Seconds left at the rate measured so far (bytes fed per second); 0 when done, null before any. */
  etaSeconds: number | null;
  /** The file being fed now (workspace key). */
  currentFile?: string;
  /** Set after a restart: the ingest resumed from the last commit. */
  resumed?: boolean;
}

export interface TokenParams {
  askId: string;
  text: string;
}

export interface SourcesParams {
  askId: string;
  sources: Source[];
}

export interface LogParams {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/**
 * After a watcher batch: these files are in memory as of the given modification time (the save
 * they reflect). Lets a client tell "my save is in memory" exactly, whichever of its save event and
 * the sidecar's watcher came first.
 */
export interface FedParams {
  files: Array<{ absPath: string; mtimeMs: number }>;
}

export interface StateParams {
  state: ServerState;
  detail?: string;
}

export const Initialize = new RequestType<InitializeParams, InitializeResult, void>('initialize');
export const Ingest = new RequestType<IngestParams, IngestResult, void>('mplus/ingest');
export const Ask = new RequestType<AskParams, AskResult, void>('mplus/ask');
export const Forget = new RequestType<ForgetParams, ForgetResult, void>('mplus/forget');
export const Status = new RequestType0<StatusResult, void>('mplus/status');
export const Cancel = new RequestType<CancelParams, { cancelled: number }, void>('mplus/cancel');
export const Shutdown = new RequestType0<void, void>('shutdown');
/** Reads and checks every stored row now (`mplus status --verify`); StoreDamaged when one fails. */
export const Verify = new RequestType0<VerifyResult, void>('mplus/verify');
/** Pause or resume feeding (ingest and watcher-driven refresh); asking keeps working. */
export const SetPaused = new RequestType<SetPausedParams, StatusResult, void>('mplus/setPaused');
/**
 * Rebuild Memory: stops feeding at a safe point, moves this workspace's store aside while holding
 * its lock, and starts memory empty from the checkpoint. Feeding does not restart by itself: the
 * client sends `mplus/ingest` when it wants the workspace fed again.
 */
export const Rebuild = new RequestType0<RebuildResult, void>('mplus/rebuild');
/** Client → server: reorder pending feeding work so these files come first. */
export const Focus = new NotificationType<FocusParams>('mplus/focus');

export const Progress = new NotificationType<ProgressParams>('mplus/progress');
export const AnswerToken = new NotificationType<TokenParams>('mplus/token');
export const AnswerSources = new NotificationType<SourcesParams>('mplus/sources');
export const Log = new NotificationType<LogParams>('mplus/log');
export const StateChanged = new NotificationType<StateParams>('mplus/state');
export const Fed = new NotificationType<FedParams>('mplus/fed');
