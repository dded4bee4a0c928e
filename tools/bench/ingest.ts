/**
 * `mplus bench ingest --repo DIR`: a real sidecar process feeds a repository into a fresh store
 * (fixture model by default) and we report files/s, repository tokens/s (tokens of the chunks
 * injected) and the sidecar's peak RSS (VmHWM from /proc).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ingest } from '../../src/sidecar/protocol';
import { benchFixture } from './fixture';

function peakRssMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export async function benchIngestCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { repo: { type: 'string' }, model: { type: 'string' }, preset: { type: 'string' }, json: { type: 'boolean' } } });
  const repo = path.resolve(values.repo ?? '.');
  const model = values.model ?? benchFixture((values.preset ?? 'small') as 'small', 'f32');
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-ingest-'));
  const h = spawnSidecar({ onStderr: (l) => process.stderr.write(`[sidecar] ${l}\n`) });
  try {
    const init = await initialize(h.connection, { modelDir: model, storeDir: store, device: 'auto', workspaceFolders: [repo], watch: false, seed: 1 });
    const t0 = performance.now();
    const r = await h.connection.sendRequest(Ingest, { paths: 'all' });
    const secs = (performance.now() - t0) / 1000;
    const rss = peakRssMiB(h.process.pid!);
    const out = {
      repo, model, device: init.device.description, files: r.filesDone, chunks: r.chunksInjected, tokens: r.tokensInjected, seconds: secs,
      filesPerS: r.filesDone / secs, tokensPerS: r.tokensInjected / secs, peakRssMiB: rss, errors: r.errors.length,
    };
    if (values.json) console.log(JSON.stringify(out));
    else {
      console.log(`repository       ${repo}`);
      console.log(`model            ${model} (${init.device.description})`);
      console.log(`fed              ${r.filesDone} files, ${r.chunksInjected} chunks, ${r.tokensInjected} tokens in ${secs.toFixed(1)} s`);
      console.log(`files/s          ${out.filesPerS.toFixed(2)}`);
      console.log(`tokens/s         ${out.tokensPerS.toFixed(0)} (repository tokens injected)`);
      console.log(`sidecar peak RSS ${rss === null ? 'n/a' : rss.toFixed(0) + ' MiB'}`);
    }
    await shutdown(h);
  } finally {
    h.process.kill('SIGKILL');
    fs.rmSync(store, { recursive: true, force: true });
  }
}
