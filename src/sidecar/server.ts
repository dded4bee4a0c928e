/**
 * The protocol server: binds JSON-RPC requests to the memory service and owns the process
 * lifecycle. Rules:
 *  - nothing but `initialize` (and `shutdown`) is served before a successful `initialize`;
 *  - a malformed or failing request gets a JSON-RPC error, never a dead process;
 *  - `shutdown`, SIGTERM and stdin closing all stop work at a safe point, commit, and exit 0.
 */
import { CancellationToken, MessageConnection, NotificationType, ResponseError } from 'vscode-jsonrpc/node';
import {
  Ask, AskParams, AskResult, Cancel, DEVICE_REQUESTS, ErrorCodes, isDeviceRequest, isPrecision, PRECISIONS, Forget, ForgetParams, Ingest, IngestParams, Initialize,
  InitializeParams, InitializeResult, Log, LogParams, PROTOCOL_VERSION, Rebuild, RebuildResult, Shutdown, Status, StatusResult, SetPaused, Focus, Verify,
} from './protocol';

/** What the server needs from the layer that does the work (src/sidecar/service.ts). */
export interface Service {
  ingest(p: IngestParams, token: CancellationToken): Promise<import('./protocol').IngestResult>;
  ask(p: AskParams, token: CancellationToken): Promise<AskResult>;
  forget(p: ForgetParams): Promise<import('./protocol').ForgetResult>;
  status(): StatusResult;
  verify(): import('./protocol').VerifyResult;
  cancel(target: import('./protocol').CancelParams['target']): number;
  setPaused(paused: boolean): Promise<StatusResult>;
  focus(paths: string[]): void;
  rebuild(): Promise<RebuildResult>;
  /** Stop at a safe point, commit, release the store. */
  close(): Promise<void>;
}

/**
 * `start.say` hears what the start is doing now (a sentence), for requests answered meanwhile;
 * `start.signal` aborts when the sidecar stops before the start finished.
 */
export interface StartControl {
  say(what: string): void;
  signal: AbortSignal;
}
export type ServiceFactory = (p: InitializeParams, conn: MessageConnection, start: StartControl) => Promise<{ service: Service; result: Omit<InitializeResult, 'protocolVersion' | 'serverVersion'> }>;

export const SERVER_VERSION: string = (() => {
  try {
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

function asResponseError(e: unknown, fallback = -32603): ResponseError<unknown> {
  if (e instanceof ResponseError) return e;
  const err = e as Error & { rpcCode?: number; rpcData?: unknown };
  return new ResponseError(err.rpcCode ?? fallback, err.message ?? String(e), err.rpcData);
}

/**
 * Sends a notification and forgets it. Never throws: once the client is gone the connection
 * throws synchronously ("Connection is closed"), and a throw here would abort the shutdown that
 * commits and releases the store.
 */
export function notify<P>(conn: MessageConnection, type: NotificationType<P>, params: P): void {
  try {
    void conn.sendNotification(type, params as never).catch(() => undefined);
  } catch {
    // the client is gone: nobody to tell
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return !!x && typeof x === 'object' && !Array.isArray(x);
}

function invalid(msg: string): ResponseError<void> {
  return new ResponseError(-32602, msg);
}

export function serve(conn: MessageConnection, factory: ServiceFactory, exit: (code: number) => void): { stop: (why: string) => Promise<void> } {
  let service: Service | null = null;
  let initializing: Promise<unknown> | null = null;
  /** What a start in progress is doing (loading, quantizing n of m): said to requests meanwhile. */
  let startingWhat = 'loading the model';
  const startAbort = new AbortController();
  let stopping: Promise<void> | null = null;
  const log = (level: LogParams['level'], message: string) => notify(conn, Log, { level, message });

  const ready = (): Service => {
    if (!service && initializing) throw new ResponseError(ErrorCodes.NotInitialized, `the sidecar is starting (${startingWhat}): ask again once "initialize" has answered`);
    if (!service) throw new ResponseError(ErrorCodes.NotInitialized, 'the sidecar is not initialized: send "initialize" first');
    return service;
  };

  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      try {
        log('info', `shutting down (${why})`);
        startAbort.abort(); // a start in progress (quantizing) stops instead of finishing first
        await initializing?.catch(() => undefined);
        await service?.close();
      } catch (e) {
        try {
          process.stderr.write(`mplus sidecar: error while closing: ${(e as Error).message}\n`);
        } catch {
          // stderr is gone too
        }
      }
    })();
    return stopping;
  };

  conn.onRequest(Initialize, async (p: InitializeParams) => {
    if (!isObject(p)) throw invalid('initialize: params must be an object');
    if (p.protocolVersion !== PROTOCOL_VERSION) {
      throw new ResponseError(ErrorCodes.VersionMismatch,
        `protocol version mismatch: client speaks ${p.protocolVersion}, this sidecar ${PROTOCOL_VERSION} (server ${SERVER_VERSION}); reinstall so both come from one version`);
    }
    if (service || initializing) throw new ResponseError(ErrorCodes.Busy, 'already initialized');
    for (const k of ['modelDir', 'storeDir'] as const) if (typeof p[k] !== 'string' || !p[k]) throw invalid(`initialize: "${k}" must be a path`);
    if (!Array.isArray(p.workspaceFolders) || !p.workspaceFolders.every((f) => typeof f === 'string')) throw invalid('initialize: "workspaceFolders" must be a list of paths');
    if (!isDeviceRequest(p.device)) throw invalid(`initialize: "device" must be ${DEVICE_REQUESTS.join(', ')}, got ${JSON.stringify(p.device)}`);
    if (p.precision !== undefined && !isPrecision(p.precision)) throw invalid(`initialize: "precision" must be ${PRECISIONS.join(', ')}, got ${JSON.stringify(p.precision)}`);
    startingWhat = 'loading the model';
    const job = factory(p, conn, { say: (what) => (startingWhat = what), signal: startAbort.signal });
    initializing = job;
    try {
      const { service: s, result } = await job;
      service = s;
      return { protocolVersion: PROTOCOL_VERSION, serverVersion: SERVER_VERSION, ...result };
    } catch (e) {
      throw asResponseError(e, ErrorCodes.BadModel);
    } finally {
      initializing = null;
    }
  });

  conn.onRequest(Ingest, async (p: IngestParams, token) => {
    if (!isObject(p) || !(p.paths === 'all' || (Array.isArray(p.paths) && p.paths.every((x) => typeof x === 'string')))) {
      throw invalid('ingest: "paths" must be "all" or a list of paths');
    }
    try { return await ready().ingest(p, token); } catch (e) { throw asResponseError(e); }
  });

  conn.onRequest(Ask, async (p: AskParams, token) => {
    if (!isObject(p) || typeof p.question !== 'string' || !p.question.trim()) throw invalid('ask: "question" must be a non-empty string');
    if (p.maxTokens !== undefined && !(Number.isInteger(p.maxTokens) && p.maxTokens > 0 && p.maxTokens <= 4096)) throw invalid('ask: "maxTokens" must be an integer in 1..4096');
    if (p.temperature !== undefined && !(typeof p.temperature === 'number' && p.temperature >= 0 && p.temperature <= 5)) throw invalid('ask: "temperature" must be in 0..5');
    if (p.topP !== undefined && !(typeof p.topP === 'number' && p.topP > 0 && p.topP <= 1)) throw invalid('ask: "topP" must be in (0, 1]');
    try { return await ready().ask(p, token); } catch (e) { throw asResponseError(e); }
  });

  conn.onRequest(Forget, async (p: ForgetParams) => {
    if (!isObject(p) || !Array.isArray(p.paths) || !p.paths.every((x) => typeof x === 'string')) throw invalid('forget: "paths" must be a list of paths');
    try { return await ready().forget(p); } catch (e) { throw asResponseError(e); }
  });

  conn.onRequest(Status, () => ready().status());

  conn.onRequest(Verify, () => {
    try { return ready().verify(); } catch (e) { throw asResponseError(e); }
  });

  conn.onRequest(SetPaused, async (p) => {
    if (!isObject(p) || typeof p.paused !== 'boolean') throw invalid('setPaused: "paused" must be true or false');
    return ready().setPaused(p.paused);
  });

  conn.onRequest(Rebuild, async () => {
    try { return await ready().rebuild(); } catch (e) { throw asResponseError(e, ErrorCodes.BadStore); }
  });

  conn.onNotification(Focus, (p) => {
    if (service && isObject(p) && Array.isArray(p.paths)) service.focus(p.paths.filter((x): x is string => typeof x === 'string'));
  });

  conn.onRequest(Cancel, (p) => {
    const t = isObject(p) ? p.target : undefined;
    if (!(t === 'ingest' || t === 'all' || (isObject(t) && typeof t.askId === 'string'))) throw invalid('cancel: "target" must be "ingest", "all" or {"askId"}');
    return { cancelled: service ? service.cancel(t) : 0 };
  });

  conn.onRequest(Shutdown, async () => {
    await stop('shutdown request');
    setImmediate(() => exit(0));
  });

  conn.onClose(() => void stop('stdin closed').then(() => exit(0)));
  process.on('SIGTERM', () => void stop('SIGTERM').then(() => exit(0)));
  process.on('SIGINT', () => void stop('SIGINT').then(() => exit(0)));
  return { stop };
}
