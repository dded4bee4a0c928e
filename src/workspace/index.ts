/** The workspace layer: what to feed (discovery, chunking, order, watching, planning). */
export { discover, sniffContent } from './discovery';
export type { DiscoveryOptions, DiscoveryResult, WorkspaceFile, ContentVerdict } from './discovery';
export { createIgnoreMatcher, IgnoreMatcher, MultiRootIgnoreMatcher, isIgnoreFileName, isIgnoreFilePath } from './ignore';
export type { ExcludeReason, Verdict, IgnoreMatcherOptions } from './ignore';
export { Chunker, chunkHeader, sha256Hex, symbolOf, LANGUAGES } from './chunker';
export type { Chunk, ChunkBudget, ChunkerOptions } from './chunker';
export { orderFiles, importCentrality } from './order';
export type { OrderHints } from './order';
export { WorkspaceWatcher } from './watcher';
export type { ChangeBatch, WatcherOptions } from './watcher';
export { planFileUpdate, planFileDeletion } from './planner';
export type { FileUpdatePlan } from './planner';
export * as defaults from './defaults';
export { valueConstants } from './constants';
export type { ValueConstant } from './constants';
