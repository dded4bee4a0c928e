/**
 * The sidecar process: `node out/src/sidecar/main.js` (or `mplus serve`). Speaks the protocol on
 * stdin/stdout; stdout carries nothing else (logs go to the client as notifications, crashes to
 * stderr).
 *
 * A sidecar never outlives its client: stdin ending, a write to stdout or stderr failing (EPIPE:
 * the reading end is gone) or the parent process changing (it died and we were re-parented) all
 * stop work at a safe point, commit, release the store's lock and exit — and if that takes longer
 * than CLOSE_DEADLINE_MS the process exits anyway (the store is crash-safe: the last commit
 * stands). No error path can loop: stderr is written only while it works, and the uncaught
 * exception handler never throws or re-enters.
 */
import { ResponseMessage, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import { StrictMessageReader, TrackingWriter } from './framing';
import { serve } from './server';
import { openService } from './service';

/** Longest a client-less sidecar spends committing before it exits regardless. */
const CLOSE_DEADLINE_MS = 15000;
/** How often the parent process is checked. */
const PARENT_POLL_MS = 1000;

const BROKEN_PIPE = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'ECONNRESET']);

export function runSidecar(): void {
  let stderrOk = true;
  let deadline: NodeJS.Timeout | null = null;
  let stop: (why: string) => Promise<void> = async () => undefined;
  let exiting = false;

  /** Best effort: a line on stderr while stderr works; never throws. */
  const stderrLine = (s: string): void => {
    if (!stderrOk) return;
    try {
      process.stderr.write(s.endsWith('\n') ? s : s + '\n');
    } catch {
      stderrOk = false;
    }
  };
  // Anything printed to stdout would corrupt the framing: route console output to stderr.
  console.log = (...a: unknown[]) => stderrLine(a.map(String).join(' '));
  console.info = console.log;
  console.warn = console.log;
  console.error = console.log;

  const armDeadline = (why: string): void => {
    if (deadline) return;
    deadline = setTimeout(() => {
      stderrLine(`mplus sidecar: still closing ${CLOSE_DEADLINE_MS / 1000} s after ${why}; exiting (the store keeps its last commit)`);
      process.exit(1);
    }, CLOSE_DEADLINE_MS);
    deadline.unref();
  };

  const writer = new TrackingWriter(new StreamMessageWriter(process.stdout));
  const exit = (code: number): void => {
    if (exiting) return;
    exiting = true;
    // The last reply (to `shutdown`) goes out before the process ends; a dead pipe does not wait.
    void writer.drained().then(() => process.exit(code));
    setTimeout(() => process.exit(code), 2000).unref();
  };

  /** The client is gone (or unusable): stop at a safe point, commit, release, exit. */
  const clientGone = (why: string): void => {
    armDeadline(why);
    void stop(why).then(() => exit(0));
  };

  process.stdout.on('error', (e: NodeJS.ErrnoException) => clientGone(`stdout: ${e.code ?? e.message}`));
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    stderrOk = false;
    clientGone(`stderr: ${e.code ?? e.message}`);
  });

  const reader = new StrictMessageReader(
    process.stdin,
    (bad) => void writer.write({ jsonrpc: '2.0', id: bad.id, error: { code: bad.code, message: bad.message } } as ResponseMessage),
    (e) => stderrLine(`mplus sidecar: ${e.message}; closing the connection`),
  );
  const conn = createMessageConnection(reader, writer);
  stop = serve(conn, openService, exit).stop;
  conn.onClose(() => armDeadline('the connection closed'));
  conn.listen();

  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) clientGone(`the client process ${parent} exited`);
  }, PARENT_POLL_MS).unref();

  let inHandler = false;
  process.on('uncaughtException', (e: Error & { code?: string }) => {
    if (e && BROKEN_PIPE.has(e.code ?? '')) return clientGone(`client gone (${e.code})`);
    if (inHandler) return;
    inHandler = true;
    try {
      stderrLine(`mplus sidecar: uncaught ${e?.stack ?? e}`);
    } finally {
      inHandler = false;
    }
  });
}

if (require.main === module) runSidecar();
