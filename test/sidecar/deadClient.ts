/**
 * A client process that dies: spawns a real sidecar, initializes it with the params given as JSON
 * in argv[2], starts `argv[3]` ('ingest' or 'ask'), prints `sidecar <pid>` and then `busy` once the
 * work is under way, and waits to be killed. The hardening tests SIGKILL it and watch the sidecar.
 */
import { initialize, spawnSidecar } from '../../src/sidecar/client';
import { Ask, Ingest, InitializeParams, Progress } from '../../src/sidecar/protocol';

async function main(): Promise<void> {
  const params = JSON.parse(process.argv[2]) as Omit<InitializeParams, 'protocolVersion'>;
  const what = process.argv[3];
  const h = spawnSidecar({ onStderr: (l) => process.env.DEAD_CLIENT_LOG && require('fs').appendFileSync(process.env.DEAD_CLIENT_LOG, l + '\n') });
  process.stdout.write(`sidecar ${h.process.pid}\n`);
  await initialize(h.connection, params);
  let said = false;
  const busy = () => {
    if (!said) process.stdout.write('busy\n');
    said = true;
  };
  h.connection.onNotification(Progress, (p) => { if (p.chunksDone >= 3) busy(); });
  if (what === 'ask') {
    void h.connection.sendRequest(Ask, { question: 'Describe every stage. '.repeat(20), maxTokens: 4000, temperature: 1 }).catch(() => undefined);
    setTimeout(busy, 300);
  } else {
    void h.connection.sendRequest(Ingest, { paths: 'all' }).catch(() => undefined);
  }
  setInterval(() => undefined, 1000);
}

void main().catch((e) => {
  process.stdout.write(`error ${(e as Error).message}\n`);
  process.exit(1);
});
