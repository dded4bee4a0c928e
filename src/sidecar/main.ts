/**
 * The sidecar process: `node out/src/sidecar/main.js` (or `mplus serve`). Speaks the protocol on
 * stdin/stdout; stdout carries nothing else (logs go to the client as notifications, crashes to
 * stderr).
 */
import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import { serve } from './server';
import { openService } from './service';

export function runSidecar(): void {
  // Anything printed to stdout would corrupt the framing: route console output to stderr.
  console.log = (...a: unknown[]) => process.stderr.write(a.map(String).join(' ') + '\n');
  console.info = console.log;
  const conn = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  serve(conn, openService, (code) => process.exit(code));
  conn.listen();
  process.on('uncaughtException', (e) => {
    process.stderr.write(`mplus sidecar: uncaught ${e.stack ?? e}\n`);
  });
}

if (require.main === module) runSidecar();
