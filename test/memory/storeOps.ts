/**
 * A deterministic script of memory updates for store tests, without a model: step i injects
 * pseudo-random rows from file `f<i % 7>`, every 5th step marks a file stale and compacts. The
 * kill -9 writer and the in-memory replica run the same script, so "state after commit n" is
 * known exactly to both.
 */
import { dropPreferring, randomDrop } from '../../src/memory/drop';
import { Rng } from '../../src/util/rng';
import { SourceTable } from '../../src/memory/provenance';
import { MemoryDims, MemoryState } from '../../src/memory/state';

export const DIMS: MemoryDims = { layers: 2, hidden: 16, keyDim: 4, tokensPerInjection: 4, stmSize: 24, retrieveSize: 8 };
export const POLICY = { updateLtmFrequency: 2, decayFrequency: 1, initialRf: 4 };
export const IDENTITY = { configHash: 'c'.repeat(64), weightFingerprint: 'w'.repeat(64) };

export function initialState(): MemoryState {
  const rng = new Rng(7);
  const { layers: L, stmSize: N, hidden: d, keyDim: s } = DIMS;
  const mem = Float32Array.from({ length: L * N * d }, () => rng.float() * 2 - 1);
  const ltm = Array.from({ length: L }, () => ({
    values: Float32Array.from({ length: 3 * d }, () => rng.float()),
    keys: Float32Array.from({ length: 3 * s }, () => rng.float()),
    rf: new Float32Array(3).fill(4),
    ages: Float32Array.from([9, 5, 1]),
  }));
  return MemoryState.initial(DIMS, POLICY, mem, ltm);
}

/** Applies step i (0-based) to state + sources; returns whether it compacted. */
export function applyStep(state: MemoryState, sources: SourceTable, i: number): boolean {
  const rng = new Rng(1000 + i);
  const { layers: L, stmSize: N, hidden: d, keyDim: s, tokensPerInjection: K } = DIMS;
  state.isStale = sources.isStale;
  const file = `src/f${i % 7}.ts`;
  const source = sources.add({ file, startLine: i + 1, endLine: i + 3, startByte: 0, endByte: 10, hash: `h${i}` });
  state.applyInjection({
    drop: Array.from({ length: L }, (_, l) => {
      const stale = state.preferredDrops(l);
      return stale.length ? dropPreferring(rng, N, K, stale) : randomDrop(rng, N, K);
    }),
    delta: Array.from({ length: L }, () => Float32Array.from({ length: K * d }, () => rng.float() * 4 - 2)),
    droppedKeys: Array.from({ length: L }, () => Float32Array.from({ length: K * s }, () => rng.float())),
    source,
  });
  if (i % 5 === 4) {
    sources.markStale(`src/f${(i * 3) % 7}.ts`);
    state.compact();
    return true;
  }
  return false;
}

/** Every number of the state, for exact comparison. */
export function snapshot(state: MemoryState): unknown {
  return {
    updateStep: state.updateStep,
    // *Id columns are row identities (layer.ts), numbered afresh by a reopen: not memory content
    layers: state.layers.map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.endsWith('Id')).map(([k, v]) => [k, Array.from((v as { data: ArrayLike<number> }).data)]))),
  };
}
