/**
 * One HTTP GET against the hub with the hub's rules: redirects followed by hand so the token is
 * sent to the hub's own origin only (LFS files redirect to a CDN with a signed URL that must not
 * see it), and status codes turned into errors that say what to do.
 */

/** Something the user can act on; the message names the file or repository and the fix. */
export class HubError extends Error {
  constructor(message: string, readonly retryable = false) {
    super(message);
    this.name = 'HubError';
  }
}

/** The hub refused the token (or wants one): the UI asks for a token on this one. */
export class HubAuthError extends HubError {
  constructor(message: string) {
    super(message);
    this.name = 'HubAuthError';
  }
}

export class DownloadCancelled extends Error {
  constructor() {
    super('download cancelled; downloaded parts are kept and the next download resumes them');
    this.name = 'DownloadCancelled';
  }
}

export interface FetchOptions {
  token?: string;
  /** The hub origin: only requests to it carry the token. */
  endpoint: string;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Repository or file named in errors. */
  what: string;
  /** Statuses the caller handles itself (e.g. 416 for a Range past the end). */
  accept?: number[];
}

const MAX_REDIRECTS = 10;

export async function hubFetch(url: string, o: FetchOptions): Promise<Response> {
  const hubOrigin = new URL(o.endpoint).origin;
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'mplus-repo-memory', ...o.headers };
    if (o.token && new URL(current).origin === hubOrigin) headers.authorization = `Bearer ${o.token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: 'manual', signal: o.signal });
    } catch (e) {
      if (o.signal?.aborted) throw new DownloadCancelled();
      throw new HubError(`could not reach ${new URL(current).host} for ${o.what}: ${causeOf(e)}`, true);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      current = new URL(res.headers.get('location')!, current).toString();
      continue;
    }
    if (res.ok || o.accept?.includes(res.status)) return res;
    await res.body?.cancel();
    throw statusError(res.status, o.what, current);
  }
  throw new HubError(`too many redirects fetching ${o.what} (${url})`);
}

function statusError(status: number, what: string, url: string): HubError {
  if (status === 401 || status === 403) {
    // The hub also answers 401 for a repository that does not exist (it does not say which).
    return new HubAuthError(`the hub refused access to ${what} (HTTP ${status}): the repository id is wrong, or it is private or gated; ` +
      'check the id, or accept its terms on the hub and give a token (HF_TOKEN) that can read it');
  }
  if (status === 404) return new HubError(`${what} was not found on the hub (HTTP 404 for ${url}): check the repository id and revision`);
  if (status === 429 || status >= 500) return new HubError(`the hub is busy or failing (HTTP ${status}) for ${what}`, true);
  return new HubError(`the hub answered HTTP ${status} for ${what} (${url})`);
}

/** The low-level reason (ECONNRESET, ECONNREFUSED, …) behind fetch's generic "fetch failed". */
export function causeOf(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
}
