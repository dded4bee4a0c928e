/**
 * The sidecar's side of the wire: Content-Length framing read strictly, so no input can make the
 * process deaf or make it buffer without bound.
 *
 * Frame: header lines `Name: value` ending in CRLF CRLF, then exactly Content-Length bytes of
 * UTF-8 JSON. Rules (each violation is a framing error: it is reported, then the reader closes,
 * which stops the sidecar cleanly — commit, release the store, exit):
 *  - the header block is at most MAX_HEADER_BYTES and is ASCII;
 *  - Content-Length is present once, all digits, and at most MAX_FRAME_BYTES;
 *  - the stream does not end inside a frame (a partial frame at EOF is reported, not waited on).
 * A well-framed body that is not JSON, or JSON that is not a JSON-RPC message, is not a framing
 * error: the caller answers it with a JSON-RPC error (-32700 parse error, -32600 invalid request)
 * and reading goes on.
 */
import { AbstractMessageReader, DataCallback, Disposable, Message, MessageWriter } from 'vscode-jsonrpc/node';
import { Readable } from 'stream';

/** Largest header block (all header lines together). */
export const MAX_HEADER_BYTES = 8192;
/** Largest body: far above any legitimate request (a question is bounded in tokens, see answer.ts). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export type BadMessage = { code: -32700 | -32600; message: string; id: number | string | null };

export class FramingError extends Error {}

export class StrictMessageReader extends AbstractMessageReader {
  private buf: Buffer = Buffer.alloc(0);
  private want = -1; // body length of the frame being read; -1 while reading a header
  private done = false;
  private callback: DataCallback | null = null;

  /**
   * `onBadMessage` is called for a well-framed body that is not a JSON-RPC message (the caller
   * replies); `onFramingError` once, before the reader closes.
   */
  constructor(
    private readonly input: Readable,
    private readonly onBadMessage: (bad: BadMessage) => void,
    private readonly onFramingError: (e: FramingError) => void,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (d: Buffer) => this.onData(d);
    const onEnd = () => this.end(this.buf.length > 0 || this.want >= 0 ? 'the stream ended inside a frame' : null);
    const onError = (e: Error) => {
      this.fireError(e);
      this.end(null);
    };
    this.input.on('data', onData);
    this.input.on('end', onEnd);
    this.input.on('close', onEnd);
    this.input.on('error', onError);
    return Disposable.create(() => {
      this.input.off('data', onData);
      this.input.off('end', onEnd);
      this.input.off('close', onEnd);
      this.input.off('error', onError);
    });
  }

  /** Closes the reader once; `why` set: a framing error is reported first. */
  private end(why: string | null): void {
    if (this.done) return;
    this.done = true;
    this.buf = Buffer.alloc(0);
    this.input.pause();
    if (why) {
      const e = new FramingError(`framing error: ${why}`);
      this.onFramingError(e);
      this.fireError(e);
    }
    this.fireClose();
  }

  private onData(d: Buffer): void {
    if (this.done) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (!this.done) {
      if (this.want < 0) {
        const eoh = this.buf.indexOf('\r\n\r\n');
        if (eoh < 0) {
          if (this.buf.length > MAX_HEADER_BYTES) return this.end(`no end of header within ${MAX_HEADER_BYTES} bytes (not a Content-Length framed stream)`);
          return;
        }
        if (eoh > MAX_HEADER_BYTES) return this.end(`header longer than ${MAX_HEADER_BYTES} bytes`);
        const header = this.buf.subarray(0, eoh);
        if (header.some((b) => b > 0x7e || (b < 0x20 && b !== 0x0d && b !== 0x0a && b !== 0x09))) return this.end('header has non-ASCII or control bytes');
        let length: number | null = null;
        for (const line of header.toString('ascii').split('\r\n')) {
          const i = line.indexOf(':');
          if (i <= 0) return this.end(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
          if (line.slice(0, i).trim().toLowerCase() !== 'content-length') continue;
          const v = line.slice(i + 1).trim();
          if (length !== null) return this.end('Content-Length given twice');
          if (!/^\d{1,12}$/.test(v)) return this.end(`Content-Length ${JSON.stringify(v.slice(0, 40))} is not a non-negative integer`);
          length = Number(v);
          if (length > MAX_FRAME_BYTES) return this.end(`Content-Length ${length} exceeds the ${MAX_FRAME_BYTES}-byte limit`);
        }
        if (length === null) return this.end('header has no Content-Length');
        this.want = length;
        this.buf = this.buf.subarray(eoh + 4);
      }
      if (this.buf.length < this.want) return;
      const body = this.buf.subarray(0, this.want);
      this.buf = this.buf.subarray(this.want);
      this.want = -1;
      this.deliver(body);
    }
  }

  private deliver(body: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return this.onBadMessage({ code: -32700, message: `parse error: ${(e as Error).message}`, id: null });
    }
    const o = msg as Record<string, unknown>;
    if (!o || typeof o !== 'object' || Array.isArray(o) || o.jsonrpc !== '2.0' || !(typeof o.method === 'string' || 'id' in o)) {
      const id = o && typeof o === 'object' && (typeof o.id === 'number' || typeof o.id === 'string') ? o.id : null;
      return this.onBadMessage({ code: -32600, message: 'invalid request: not a JSON-RPC 2.0 message (batches are not supported)', id });
    }
    this.callback?.(msg as Message);
  }
}

/**
 * Tracks writes so the process can exit only after its last reply (e.g. to `shutdown`) is on the
 * wire. A failed write (the client is gone) resolves here; the inner writer reports it.
 */
export class TrackingWriter implements MessageWriter {
  private pending = new Set<Promise<void>>();

  constructor(readonly inner: MessageWriter) {}

  get onError(): MessageWriter['onError'] { return this.inner.onError; }
  get onClose(): MessageWriter['onClose'] { return this.inner.onClose; }
  end(): void { this.inner.end(); }
  dispose(): void { this.inner.dispose(); }

  write(msg: Message): Promise<void> {
    const p = this.inner.write(msg).catch(() => undefined);
    this.pending.add(p);
    void p.then(() => this.pending.delete(p));
    return p;
  }

  /** Resolves when every write issued so far has completed (or failed). */
  async drained(): Promise<void> {
    // A reply is handed to write() in a microtask after its handler resolves: one turn first.
    await new Promise<void>((r) => setImmediate(r));
    while (this.pending.size) await Promise.all([...this.pending]);
  }
}
