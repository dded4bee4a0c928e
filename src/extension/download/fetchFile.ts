/**
 * Downloads one hub file into `<dest>.part`, resuming with `Range` from whatever the part already
 * holds, retrying dropped connections, then checks size and hash and renames it into place.
 *
 * Invariants:
 * - `<dest>` only ever appears complete and verified (rename after the check); an interrupted or
 *   cancelled download leaves `<dest>.part`, whose bytes are a prefix of the file (each write
 *   lands before the next read from the network; a server that ignores Range restarts it at 0).
 * - A part longer than the file, or a complete one whose hash is wrong, is deleted: it cannot be
 *   resumed. A hash mismatch is fetched once more from scratch, then reported naming the file.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DownloadCancelled, HubError, causeOf, hubFetch } from './http';
import type { HubFile } from './hubApi';
import { encodePath } from './hubApi';

export interface FileJob {
  endpoint: string;
  repo: string;
  commit: string;
  file: HubFile;
  dest: string;
  token?: string;
  signal?: AbortSignal;
  /** Attempts per file after a dropped connection or a 5xx (each resumes). */
  retries: number;
  /** Wait before the n-th retry: retryDelayMs · 2^(n-1). */
  retryDelayMs: number;
  /** Called with the bytes of this file on disk so far (never decreases except after a restart at 0). */
  onBytes(bytes: number): void;
  onVerify?(): void;
  log?(line: string): void;
}

export type FileOutcome = 'downloaded' | 'present';

export async function fetchFile(j: FileJob): Promise<FileOutcome> {
  const { file, dest } = j;
  if (fs.existsSync(dest)) {
    const st = fs.statSync(dest);
    if (st.isFile() && st.size === file.size) {
      j.onVerify?.();
      if ((await hashFile(dest, file, j.signal)) === file.check.hex) {
        j.onBytes(file.size);
        return 'present';
      }
    }
    // A different file of the same name (an older revision, a corrupted copy): replace it.
    j.log?.(`${file.path}: the existing copy does not match the hub's; downloading it again`);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  for (let pass = 0; ; pass++) {
    await fillPart(j, part);
    j.onVerify?.();
    const got = await hashFile(part, file, j.signal);
    if (got === file.check.hex) break;
    fs.rmSync(part, { force: true });
    if (pass >= 1) {
      throw new HubError(`${file.path} arrived corrupted twice (${file.check.kind} ${got}, the hub says ${file.check.hex}); ` +
        'it was deleted: try the download again later, or from another endpoint');
    }
    j.log?.(`${file.path}: ${file.check.kind} mismatch (got ${got}, want ${file.check.hex}); fetching it again from the start`);
    j.onBytes(0);
  }
  fs.renameSync(part, dest);
  return 'downloaded';
}

/** Brings `part` to the file's full size, resuming and retrying. */
async function fillPart(j: FileJob, part: string): Promise<void> {
  const { file } = j;
  let failures = 0;
  for (;;) {
    if (j.signal?.aborted) throw new DownloadCancelled();
    let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
    if (have > file.size) {
      j.log?.(`${file.path}.part is longer than the file (${have} > ${file.size}); starting it again`);
      fs.rmSync(part, { force: true });
      have = 0;
    }
    j.onBytes(have);
    if (have === file.size) return;
    try {
      await appendRange(j, part, have);
      failures = 0; // progress was made; a later drop gets the full retry budget again
      continue;
    } catch (e) {
      if (e instanceof DownloadCancelled || j.signal?.aborted) throw new DownloadCancelled();
      // Network failures arrive as retryable HubErrors (http.ts, appendRange); anything else is
      // local (disk full, no permission) and another try would fail the same way.
      if (!(e instanceof HubError)) throw new HubError(`cannot write ${part}: ${(e as Error).message}`);
      const retryable = e.retryable;
      const now = fs.existsSync(part) ? fs.statSync(part).size : 0;
      if (now > have) failures = 0;
      if (!retryable) throw e;
      if (++failures > j.retries) {
        throw new HubError(`downloading ${file.path} failed after ${j.retries} retries: ${e.message}; ` +
          `${now} of ${file.size} bytes are kept in ${path.basename(part)} and the next download resumes them`);
      }
      const wait = j.retryDelayMs * 2 ** (failures - 1);
      j.log?.(`${file.path}: ${e.message}; retry ${failures}/${j.retries} in ${wait} ms from byte ${now}`);
      await sleep(wait, j.signal);
    }
  }
}

/** One GET from byte `from` to the end, appended to `part`. Throws on a short body. */
async function appendRange(j: FileJob, part: string, from: number): Promise<void> {
  const url = `${j.endpoint.replace(/\/+$/, '')}/${j.repo}/resolve/${j.commit}/${encodePath(j.file.path)}`;
  const res = await hubFetch(url, {
    token: j.token, endpoint: j.endpoint, signal: j.signal, what: j.file.path,
    headers: from > 0 ? { range: `bytes=${from}-` } : {},
  });
  let offset = from;
  if (from > 0 && res.status !== 206) {
    // The server ignored the Range and sends the whole file: start the part again.
    j.log?.(`${j.file.path}: the server does not resume (HTTP ${res.status}); downloading it from the start`);
    offset = 0;
  } else if (res.status === 206) {
    const m = /bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== from) {
      await res.body?.cancel();
      throw new HubError(`the server resumed ${j.file.path} at the wrong place (${res.headers.get('content-range')})`, true);
    }
  }
  if (!res.body) throw new HubError(`the hub sent no body for ${j.file.path}`, true);
  const fd = fs.openSync(part, offset === 0 ? 'w' : 'r+');
  try {
    const reader = res.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (j.signal?.aborted) throw new DownloadCancelled();
        throw new HubError(`the connection dropped at byte ${offset}: ${causeOf(e)}`, true);
      }
      if (chunk.done) break;
      const buf = chunk.value;
      if (offset + buf.length > j.file.size) {
        await reader.cancel();
        throw new HubError(`the hub sent more than the ${j.file.size} bytes of ${j.file.path}`, true);
      }
      writeAll(fd, buf, offset);
      offset += buf.length;
      j.onBytes(offset);
    }
  } finally {
    fs.closeSync(fd);
  }
  if (offset < j.file.size) throw new HubError(`the connection ended at byte ${offset} of ${j.file.size}`, true);
}

function writeAll(fd: number, buf: Uint8Array, pos: number): void {
  for (let done = 0; done < buf.length;) done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
}

/** The hash the hub lists for this file, of the bytes at `p`. */
export async function hashFile(p: string, file: HubFile, signal?: AbortSignal): Promise<string> {
  const h = crypto.createHash(file.check.kind === 'sha256' ? 'sha256' : 'sha1');
  if (file.check.kind === 'gitBlob') h.update(`blob ${fs.statSync(p).size}\0`);
  // a 5 GB shard takes tens of seconds to hash: cancel must not wait for it
  try {
    for await (const chunk of fs.createReadStream(p, { highWaterMark: 4 << 20, signal })) h.update(chunk as Buffer);
  } catch (e) {
    if (signal?.aborted) throw new DownloadCancelled();
    throw e;
  }
  return h.digest('hex');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new DownloadCancelled());
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(new DownloadCancelled()); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
