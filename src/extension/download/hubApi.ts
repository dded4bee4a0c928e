/**
 * The Hugging Face hub's HTTP API, the part a model download needs: which commit a revision
 * points at, and every file of the repository at that commit with its size and content hash.
 *
 * No `vscode` import: the download is plain Node so mocha tests it against a local HTTP server.
 *
 * Endpoints used (the ones huggingface_hub and huggingface.js use):
 *   GET {endpoint}/api/models/{repo}/revision/{rev}        → { sha, siblings: [{ rfilename }] }
 *   GET {endpoint}/api/models/{repo}/tree/{sha}?recursive=true
 *       → [{ type: 'file'|'directory', path, size, oid, lfs?: { oid, size } }], paginated by a
 *         `Link: <url>; rel="next"` header
 *   GET {endpoint}/{repo}/resolve/{sha}/{path}             → the bytes (LFS files: a redirect)
 * The listing is taken at the commit sha, not the branch name, so a push to `main` during a
 * long download cannot mix files from two commits.
 */
import { HubError, hubFetch } from './http';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REPO = 'YuWangX/mplus-8b';

/** One file of a repository at one commit. */
export interface HubFile {
  /** Path inside the repository, `/`-separated, never absolute, never `..`. */
  path: string;
  size: number;
  /**
   * How to check the bytes: LFS files carry the sha256 of their content; small files are plain
   * git blobs whose oid is sha1("blob <size>\0" + content).
   */
  check: { kind: 'sha256'; hex: string } | { kind: 'gitBlob'; hex: string };
}

export interface RepoListing {
  repo: string;
  /** The commit every file is fetched at. */
  commit: string;
  files: HubFile[];
}

export interface HubOptions {
  /** Hub origin, e.g. https://huggingface.co or a mirror; no trailing slash needed. */
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
}

/** The endpoint: an explicit value, else $HF_ENDPOINT, else huggingface.co. */
export function resolveEndpoint(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const e = (explicit?.trim() || env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new HubError(`the Hugging Face endpoint "${e}" is not a URL: set it to e.g. ${DEFAULT_ENDPOINT}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new HubError(`the Hugging Face endpoint "${e}" must be an http(s) URL, e.g. ${DEFAULT_ENDPOINT}`);
  }
  return e;
}

/** A token from the environment, as the hub's own tools read it. */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || undefined;
}

/** `owner/name`, the only form a model repo id takes on the hub. */
export function checkRepoId(repo: string): string {
  const r = repo.trim();
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(r) || r.includes('..')) {
    throw new HubError(`"${repo}" is not a Hugging Face model id: write it as owner/name, e.g. ${DEFAULT_REPO}`);
  }
  return r;
}

/** A repository path segment-encoded for a URL (keeps the `/` between folders). */
export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

export async function listRepo(repoId: string, revision: string, o: HubOptions): Promise<RepoListing> {
  const repo = checkRepoId(repoId);
  const base = o.endpoint.replace(/\/+$/, '');
  const rev = await getJson(`${base}/api/models/${repo}/revision/${encodeURIComponent(revision)}`, repo, o);
  const commit = (rev.body as { sha?: unknown })?.sha;
  if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/.test(commit)) {
    throw new HubError(`the hub's answer for ${repo}@${revision} has no commit sha (${rev.url})`);
  }
  const files: HubFile[] = [];
  let next: string | null = `${base}/api/models/${repo}/tree/${commit}?recursive=true`;
  for (let page = 0; next; page++) {
    if (page > 10000) throw new HubError(`the file listing of ${repo} does not end (more than 10000 pages)`);
    const r = await getJson(next, repo, o);
    if (!Array.isArray(r.body)) throw new HubError(`the hub's file listing of ${repo} is not a list (${r.url})`);
    for (const e of r.body) {
      const f = parseTreeEntry(e, repo);
      if (f) files.push(f);
    }
    next = nextLink(r.link, r.url);
  }
  if (!files.length) throw new HubError(`${repo}@${revision} has no files`);
  files.sort((a, b) => a.size - b.size || a.path.localeCompare(b.path)); // small files (config) first
  return { repo, commit, files };
}

function parseTreeEntry(e: unknown, repo: string): HubFile | null {
  const x = e as { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown; size?: unknown } | null };
  if (!x || typeof x !== 'object' || x.type !== 'file') return null;
  const bad = (why: string) => new HubError(`the hub's file listing of ${repo} has an entry ${JSON.stringify(x.path)} that ${why}`);
  if (typeof x.path !== 'string' || !safeRelPath(x.path)) throw bad('is not a safe relative path');
  if (x.lfs && typeof x.lfs === 'object') {
    const oid = String(x.lfs.oid ?? '').replace(/^sha256:/, '').toLowerCase();
    const size = Number(x.lfs.size ?? x.size);
    if (!/^[0-9a-f]{64}$/.test(oid)) throw bad('has no sha256');
    if (!Number.isSafeInteger(size) || size < 0) throw bad('has no size');
    return { path: x.path, size, check: { kind: 'sha256', hex: oid } };
  }
  const oid = String(x.oid ?? '').toLowerCase();
  const size = Number(x.size);
  if (!/^[0-9a-f]{40}$/.test(oid)) throw bad('has no git oid');
  if (!Number.isSafeInteger(size) || size < 0) throw bad('has no size');
  return { path: x.path, size, check: { kind: 'gitBlob', hex: oid } };
}

/** A path the hub may name that stays inside the target folder once joined to it. */
export function safeRelPath(p: string): boolean {
  if (!p || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

function nextLink(link: string | null, base: string): string | null {
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return new URL(m[1], base).toString();
  }
  return null;
}

async function getJson(url: string, repo: string, o: HubOptions): Promise<{ body: unknown; link: string | null; url: string }> {
  const res = await hubFetch(url, { token: o.token, endpoint: o.endpoint, signal: o.signal, what: repo });
  const text = await res.text();
  try {
    return { body: JSON.parse(text), link: res.headers.get('link'), url };
  } catch {
    throw new HubError(`the hub answered ${url} with something that is not JSON: is ${o.endpoint} a Hugging Face hub?`);
  }
}
