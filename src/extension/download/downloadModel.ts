/**
 * Downloads a whole model repository from the Hugging Face hub into a folder: lists it at one
 * commit, fetches the files one after another (small ones first, so a bad repository id or a
 * refused token shows before gigabytes move), verifies each, and reports progress in bytes.
 *
 * Re-running it on the same folder resumes: verified files are kept, `.part` files continue.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DownloadCancelled } from './http';
import { fetchFile } from './fetchFile';
import { RepoListing, listRepo, resolveEndpoint } from './hubApi';

export interface DownloadOptions {
  repo: string;
  /** Branch, tag or commit; default `main`. */
  revision?: string;
  /** Folder the files go into (created); the repository's own folders are kept below it. */
  dest: string;
  /** Hub origin; default $HF_ENDPOINT, else huggingface.co. */
  endpoint?: string;
  token?: string;
  signal?: AbortSignal;
  /** Retries per file after a dropped connection (default 5). */
  retries?: number;
  /** First retry delay in ms, doubling (default 1000). */
  retryDelayMs?: number;
  onProgress?(p: DownloadProgress): void;
  /**
   * Called once the listing is known, before any file moves: the UI shows the size and checks
   * free disk; throwing stops the download there.
   */
  onListing?(l: ListingSummary): void | Promise<void>;
  log?(line: string): void;
}

export interface ListingSummary {
  repo: string;
  commit: string;
  files: number;
  totalBytes: number;
  /** Bytes still to fetch: totalBytes minus complete files and `.part` prefixes already there. */
  missingBytes: number;
}

export interface DownloadProgress {
  phase: 'listing' | 'downloading' | 'verifying' | 'done';
  /** The file being fetched or verified (repository path). */
  file?: string;
  fileIndex: number;
  fileCount: number;
  /** Bytes on disk over all files; doneBytes ≤ totalBytes. */
  doneBytes: number;
  totalBytes: number;
}

export interface DownloadResult {
  folder: string;
  commit: string;
  files: number;
  bytes: number;
  /** Files that were already there and verified. */
  reused: number;
}

export async function downloadModel(o: DownloadOptions): Promise<DownloadResult> {
  const endpoint = resolveEndpoint(o.endpoint);
  const report = o.onProgress ?? (() => undefined);
  report({ phase: 'listing', fileIndex: 0, fileCount: 0, doneBytes: 0, totalBytes: 0 });
  const listing: RepoListing = await listRepo(o.repo, o.revision ?? 'main', { endpoint, token: o.token, signal: o.signal });
  const totalBytes = listing.files.reduce((s, f) => s + f.size, 0);
  o.log?.(`${listing.repo}@${listing.commit}: ${listing.files.length} files, ${totalBytes} bytes → ${o.dest}`);
  await o.onListing?.({
    repo: listing.repo, commit: listing.commit, files: listing.files.length, totalBytes,
    missingBytes: listing.files.reduce((s, f) => s + f.size - bytesOnDisk(path.join(o.dest, ...f.path.split('/')), f.size), 0),
  });
  fs.mkdirSync(o.dest, { recursive: true });
  let before = 0; // bytes of the files already finished
  let reused = 0;
  for (const [i, file] of listing.files.entries()) {
    if (o.signal?.aborted) throw new DownloadCancelled();
    const progress = (phase: DownloadProgress['phase'], fileBytes: number) => report({
      phase, file: file.path, fileIndex: i, fileCount: listing.files.length,
      doneBytes: before + Math.min(fileBytes, file.size), totalBytes,
    });
    let last = 0;
    const outcome = await fetchFile({
      endpoint, repo: listing.repo, commit: listing.commit, file,
      dest: path.join(o.dest, ...file.path.split('/')),
      token: o.token, signal: o.signal,
      retries: o.retries ?? 5, retryDelayMs: o.retryDelayMs ?? 1000,
      onBytes: (b) => { last = b; progress('downloading', b); },
      onVerify: () => progress('verifying', last),
      log: o.log,
    });
    if (outcome === 'present') reused++;
    before += file.size;
  }
  report({ phase: 'done', fileIndex: listing.files.length, fileCount: listing.files.length, doneBytes: totalBytes, totalBytes });
  return { folder: o.dest, commit: listing.commit, files: listing.files.length, bytes: totalBytes, reused };
}

/** What of a file is already on disk (complete file of the right size, else its `.part`). */
function bytesOnDisk(dest: string, size: number): number {
  const sizeOf = (p: string) => { try { return fs.statSync(p).size; } catch { return 0; } };
  if (sizeOf(dest) === size) return size;
  return Math.min(size, sizeOf(`${dest}.part`));
}
