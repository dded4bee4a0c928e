/**
 * A Hugging Face hub on 127.0.0.1 for the download tests: the revision and tree APIs (paginated),
 * `resolve` (small files served directly, LFS files redirected to a second "CDN" server on
 * another port, i.e. another origin), `Range` requests, and faults a real network has: a
 * connection dropped mid-file, a flipped byte, a server that ignores Range. It records every
 * request so tests can assert how a file was fetched.
 */
import * as crypto from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';

export interface HubFileSpec {
  path: string;
  content: Buffer;
  lfs: boolean;
}

export interface Faults {
  /** Close the connection after this many body bytes, on the next `times` GETs of the file. */
  drop?: { afterBytes: number; times: number };
  /** Flip one byte in the next `times` full deliveries (use Infinity for always). */
  corrupt?: { times: number };
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean;
}

export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export class LocalHub {
  readonly commit = crypto.createHash('sha1').update('local-hub-commit').digest('hex');
  readonly requests: SeenRequest[] = [];
  readonly faults = new Map<string, Faults>();
  /** When set, the API and resolve answer 401 without `Bearer <token>`. */
  requiredToken: string | null = null;
  /** Tree API page size (its `Link: rel="next"` pagination). */
  pageSize = 2;
  private hub!: http.Server;
  private cdn!: http.Server;
  hubUrl = '';
  cdnUrl = '';

  constructor(readonly repo: string, readonly files: HubFileSpec[]) {}

  static sha256(b: Buffer): string {
    return crypto.createHash('sha256').update(b).digest('hex');
  }

  static gitOid(b: Buffer): string {
    return crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
  }

  async start(): Promise<void> {
    this.hub = http.createServer((q, s) => this.onHub(q, s));
    this.cdn = http.createServer((q, s) => this.onCdn(q, s));
    this.hubUrl = await listen(this.hub);
    this.cdnUrl = await listen(this.cdn);
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  private record(server: 'hub' | 'cdn', q: http.IncomingMessage): void {
    this.requests.push({ server, method: q.method ?? '', url: q.url ?? '', range: q.headers.range, authorization: q.headers.authorization });
  }

  private onHub(q: http.IncomingMessage, s: http.ServerResponse): void {
    this.record('hub', q);
    if (this.requiredToken && q.headers.authorization !== `Bearer ${this.requiredToken}`) {
      s.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Invalid credentials"}');
      return;
    }
    const u = new URL(q.url ?? '/', this.hubUrl);
    const api = `/api/models/${this.repo}`;
    if (u.pathname.startsWith(`${api}/revision/`)) {
      json(s, { id: this.repo, sha: this.commit, siblings: this.files.map((f) => ({ rfilename: f.path })) });
      return;
    }
    if (u.pathname === `${api}/tree/${this.commit}` && u.searchParams.get('recursive') === 'true') {
      const entries = this.treeEntries();
      const at = Number(u.searchParams.get('cursor') ?? 0);
      const page = entries.slice(at, at + this.pageSize);
      const headers: Record<string, string> = {};
      if (at + this.pageSize < entries.length) {
        headers.link = `<${api}/tree/${this.commit}?recursive=true&cursor=${at + this.pageSize}>; rel="next"`;
      }
      json(s, page, headers);
      return;
    }
    const prefix = `/${this.repo}/resolve/${this.commit}/`;
    if (u.pathname.startsWith(prefix)) {
      const f = this.files.find((x) => x.path === decodeURIComponent(u.pathname.slice(prefix.length)));
      if (!f) return void s.writeHead(404).end('Entry not found');
      const common = { 'x-repo-commit': this.commit };
      if (f.lfs) {
        // As the hub does: a relative-origin redirect to signed storage, with the LFS metadata.
        const sha = LocalHub.sha256(f.content);
        s.writeHead(302, {
          ...common, location: `${this.cdnUrl}/lfs/${sha}?sig=x`, 'x-linked-etag': `"${sha}"`, 'x-linked-size': String(f.content.length),
        }).end();
        return;
      }
      this.serveBytes(q, s, f, { ...common, etag: `"${LocalHub.gitOid(f.content)}"` });
      return;
    }
    s.writeHead(404).end('not found');
  }

  private onCdn(q: http.IncomingMessage, s: http.ServerResponse): void {
    this.record('cdn', q);
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(q.url ?? '');
    const f = m && this.files.find((x) => x.lfs && LocalHub.sha256(x.content) === m[1]);
    if (!f) return void s.writeHead(404).end();
    this.serveBytes(q, s, f, { etag: `"${m![1]}"` });
  }

  private treeEntries(): object[] {
    const dirs = new Set<string>();
    for (const f of this.files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    return [
      ...[...dirs].map((d) => ({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d })),
      ...this.files.map((f) => ({
        type: 'file', path: f.path, size: f.lfs ? 134 : f.content.length, oid: LocalHub.gitOid(f.lfs ? Buffer.from(`pointer ${f.path}`) : f.content),
        ...(f.lfs ? { lfs: { oid: LocalHub.sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
      })),
    ];
  }

  private serveBytes(q: http.IncomingMessage, s: http.ServerResponse, f: HubFileSpec, headers: Record<string, string>): void {
    const faults = this.faults.get(f.path) ?? {};
    let body = f.content;
    let status = 200;
    const h: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    const m = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    if (m && !faults.ignoreRange) {
      const from = Number(m[1]);
      if (from >= f.content.length) {
        s.writeHead(416, { 'content-range': `bytes */${f.content.length}` }).end();
        return;
      }
      body = f.content.subarray(from);
      status = 206;
      h['content-range'] = `bytes ${from}-${f.content.length - 1}/${f.content.length}`;
    } else if (faults.corrupt && faults.corrupt.times > 0) {
      faults.corrupt.times--;
      body = Buffer.from(f.content);
      body[body.length >> 1] ^= 0xff;
    }
    h['content-length'] = String(body.length);
    s.writeHead(status, h);
    if (faults.drop && faults.drop.times > 0) {
      faults.drop.times--;
      // Send part of the body, then cut the TCP connection as a dropped network would.
      s.write(body.subarray(0, Math.min(faults.drop.afterBytes, body.length - 1)), () => setTimeout(() => s.socket?.destroy(), 20));
      return;
    }
    s.end(body);
  }
}

function json(s: http.ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  s.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}
