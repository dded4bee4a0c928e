/**
 * Child process for the kill -9 test: opens the store and commits the deterministic script
 * forever (until killed). argv: storeDir, valueFormat. Prints nothing: the parent reads the
 * manifest's seq after the kill.
 */
import { SourceTable } from '../../src/memory/provenance';
import { MemoryStore } from '../../src/memory/store/store';
import { ValueFormat } from '../../src/memory/store/codec';
import { DIMS, IDENTITY, POLICY, applyStep, initialState } from './storeOps';

const [dir, fmt] = process.argv.slice(2);
const { store, state, sources, extra } = MemoryStore.open(dir, { identity: IDENTITY, dims: DIMS, policy: POLICY, valueFormat: fmt as ValueFormat }, initialState);
let step = Number(extra.steps ?? 0);
const src: SourceTable = sources;
for (;;) {
  const compacted = applyStep(state, src, step);
  step++;
  store.commit(state, src, { steps: step }, { rewrite: compacted });
}
