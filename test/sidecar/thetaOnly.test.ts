/**
 * The real sidecar with `initialize.thetaOnly` (Θ off, MemoryLLM) against the same repository fed
 * with Θ on: θ only keeps Θ at the checkpoint's shipped rows however much is fed, M+ merges the
 * repository into Θ; `ask.retrieval` counts the rows a question read by the file that wrote them;
 * a store fed one way is refused by a run the other way.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { initialize, shutdown, spawnSidecar } from '../../src/sidecar/client';
import { Ask, ErrorCodes, Ingest, Status } from '../../src/sidecar/protocol';
import { fixtureWorkspace } from '../helpers/fixtureWorkspace';

const SHIPPED_LTM = 96; // the small fixture's ltm_initial_size

describe('sidecar: θ only (Θ off) vs M+, and what a question retrieved', function () {
  this.timeout(300000);
  const ws = fixtureWorkspace('sidecar-theta-only', {
    model: { preset: 'small', seed: 9 },
    // Enough injections for several merges (small fixture: K 32, a merge every 4 injections).
    repo: (repo) => {
      for (let i = 0; i < 10; i++) {
        fs.mkdirSync(path.join(repo, `m${i}`), { recursive: true });
        fs.writeFileSync(path.join(repo, `m${i}`, `part${i}.ts`), `export const VALUE_${i} = ${1000 + i * 37};\nexport function f${i}(x: number) { return x * ${i} + VALUE_${i}; }\n`);
      }
    },
  });

  async function run(store: string, thetaOnly: boolean) {
    const h = spawnSidecar({ onStderr: () => undefined });
    try {
      await initialize(h.connection, { modelDir: ws.model, storeDir: store, device: 'cpu', workspaceFolders: [ws.repo], watch: false, seed: 1, thetaOnly });
      const fed = await h.connection.sendRequest(Ingest, { paths: 'all' });
      const status = await h.connection.sendRequest(Status);
      const ask = await h.connection.sendRequest(Ask, { question: 'What is the value of VALUE_3?', maxTokens: 2, retrieval: true });
      await shutdown(h);
      return { fed, status, ask };
    } finally {
      h.process.kill('SIGKILL');
    }
  }

  it('θ only keeps Θ as shipped; M+ merges the repository into Θ and retrieves from it', async () => {
    const theta = await run(path.join(ws.root, 'store-theta'), true);
    const mplus = await run(path.join(ws.root, 'store-mplus'), false);
    assert.ok(theta.fed.chunksInjected >= 10 && theta.fed.chunksInjected === mplus.fed.chunksInjected, `same work fed (${theta.fed.chunksInjected})`);
    assert.strictEqual(theta.status.memory.ltmTokensPerLayer, SHIPPED_LTM, 'θ only: Θ is the shipped rows, nothing merged');
    assert.ok(mplus.status.memory.ltmTokensPerLayer > SHIPPED_LTM, `M+: Θ grew (${mplus.status.memory.ltmTokensPerLayer})`);

    const rt = theta.ask.retrieval!;
    const rm = mplus.ask.retrieval!;
    assert.strictEqual(rt.length, 4);
    assert.strictEqual(rm.length, 4);
    for (const l of rt) {
      // Θ holds only shipped rows: every candidate and every retrieved row came with the checkpoint.
      assert.deepStrictEqual(l.candidatesByFile, [{ path: '(checkpoint)', rows: SHIPPED_LTM }]);
      assert.deepStrictEqual(l.retrievedByFile.map((f) => f.path), ['(checkpoint)']);
      assert.ok(l.stmByFile.some((f) => f.path.startsWith('m')), 'θ holds repository rows');
    }
    for (const l of rm) {
      const sum = (xs: { rows: number }[]) => xs.reduce((a, f) => a + f.rows, 0);
      assert.strictEqual(l.scored, true, 'M+ Θ ≥ R: retrieval scores');
      assert.strictEqual(sum(l.retrievedByFile), l.retrieved);
      assert.strictEqual(sum(l.candidatesByFile), l.candidates);
      assert.strictEqual(l.retrieved, 64, 'R distinct rows');
      assert.ok(l.candidatesByFile.some((f) => /^m\d\/part\d\.ts$/.test(f.path)), 'Θ holds rows the repository wrote, by file');
      for (const f of l.retrievedByFile) {
        const c = l.candidatesByFile.find((x) => x.path === f.path);
        assert.ok(c && f.rows <= c.rows, `${f.path}: retrieved ${f.rows} of ${c?.rows}`);
      }
    }
  });

  it('a store fed θ only is refused with Θ on (and the reverse), naming the store', async () => {
    for (const [store, reopenThetaOnly] of [[path.join(ws.root, 'store-theta'), false], [path.join(ws.root, 'store-mplus'), true]] as const) {
      const h = spawnSidecar({ onStderr: () => undefined });
      try {
        await assert.rejects(
          initialize(h.connection, { modelDir: ws.model, storeDir: store, device: 'cpu', workspaceFolders: [ws.repo], watch: false, thetaOnly: reopenThetaOnly }),
          (e: unknown) => e instanceof ResponseError && e.code === ErrorCodes.BadStore && e.message.includes(store) && /--store/.test(e.message),
        );
      } finally {
        h.process.kill('SIGKILL');
      }
    }
  });
});
