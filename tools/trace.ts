/**
 * Runs a script of operations against the engine and records everything a checker needs
 * (the `mplus trace` format, shared with ../shared/golden/compare.py):
 *   OPS:    {"ops":[{"op":"inject","tokens":[…],"drop"?:[[…per layer…]]},
 *                   {"op":"generate","tokens":[…],"steps":S}]}
 *   RESULT: {"results":[{"delta":[L][K][d]} | {"retrieved":[L][R],"logits":[S+1][V],"tokens":[S]}],
 *            "state":{"layers":[{stm,stm_ages,ltm,ltm_keys,ltm_ages,ltm_rf,cache,cache_keys,
 *                     cache_ages}],"update_step"}}
 * `state` is the memory after the last injection (generation does not change memory).
 * With `everyState`, each inject result also carries `state`: the memory right after that op, its
 * float rows packed as {"f32": base64 of little-endian float32, "shape": [rows, width]} (4× smaller
 * than decimal lists, and exact). A checker then runs each op from the engine's own previous state
 * (training/mplus/verify.py): a trained model's write recurrence amplifies float rounding, so two
 * correct float32 implementations part over a long script but agree op by op.
 */
import { MemoryState } from '../src/memory/state';
import { MPlusEngine } from '../src/engine/mplus';
import { argmax } from '../src/engine/sampling';

export type TraceOp =
  | { op: 'inject'; tokens: number[]; drop?: number[][] }
  | { op: 'generate'; tokens: number[]; steps: number };

export interface TraceResult {
  results: Array<{ delta: number[][][]; state?: StateJson<PackedRows> } | { retrieved: number[][]; logits: number[][]; tokens: number[] }>;
  state: StateJson;
}

export function parseOps(json: unknown, file: string): TraceOp[] {
  const ops = (json as { ops?: unknown })?.ops;
  if (!Array.isArray(ops)) throw new Error(`${file}: expected {"ops": [...]}`);
  return ops.map((o, i) => {
    const op = o as Record<string, unknown>;
    const where = `${file}: ops[${i}]`;
    if (!Array.isArray(op.tokens) || !op.tokens.every((t) => Number.isInteger(t))) throw new Error(`${where}: "tokens" must be a list of token ids`);
    if (op.op === 'inject') {
      if (op.drop !== undefined && !(Array.isArray(op.drop) && op.drop.every((l) => Array.isArray(l)))) {
        throw new Error(`${where}: "drop" must be a list (per layer) of index lists`);
      }
      return { op: 'inject', tokens: op.tokens as number[], drop: op.drop as number[][] | undefined };
    }
    if (op.op === 'generate') {
      if (!Number.isInteger(op.steps) || (op.steps as number) < 0) throw new Error(`${where}: "steps" must be a non-negative integer`);
      return { op: 'generate', tokens: op.tokens as number[], steps: op.steps as number };
    }
    throw new Error(`${where}: unknown op ${JSON.stringify(op.op)} (inject or generate)`);
  });
}

function rows(data: Float32Array, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += width) out.push(Array.from(data.subarray(i, i + width)));
  return out;
}

/** Rows of `width` floats, packed: base64 of their little-endian float32 bytes. */
export interface PackedRows { f32: string; shape: [number, number] }

function packed(data: Float32Array, width: number): PackedRows {
  // the view's own bytes (x86 and ARM are little-endian, as the format says)
  return { f32: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), shape: [data.length / width, width] };
}

/** One layer's memory in the trace format; float tables as decimal rows, or packed (--every-state). */
export interface LayerJson<Rows = number[][]> {
  stm: Rows; stm_ages: number[];
  ltm: Rows; ltm_keys: Rows; ltm_ages: number[]; ltm_rf: number[];
  cache: Rows; cache_keys: Rows; cache_ages: number[];
}
export interface StateJson<Rows = number[][]> { layers: Array<LayerJson<Rows>>; update_step: number }

export function stateJson(m: MemoryState): StateJson;
export function stateJson(m: MemoryState, pack: true): StateJson<PackedRows>;
export function stateJson(m: MemoryState, pack = false): StateJson<number[][] | PackedRows> {
  const { hidden: d, keyDim: s } = m.dims;
  const rows_: (data: Float32Array, width: number) => number[][] | PackedRows = pack ? packed : rows;
  return {
    layers: m.layers.map((l) => ({
      stm: rows_(l.stm.data, d),
      stm_ages: Array.from(l.stmAges.data),
      ltm: rows_(l.ltm.data, d),
      ltm_keys: rows_(l.ltmKeys.data, s),
      ltm_ages: Array.from(l.ltmAges.data),
      ltm_rf: Array.from(l.ltmRf.data),
      cache: rows_(l.cache.data, d),
      cache_keys: rows_(l.cacheKeys.data, s),
      cache_ages: Array.from(l.cacheAges.data),
    })),
    update_step: m.updateStep,
  };
}

/** Runs `ops` against `memory` (default: the checkpoint's own, fresh); `everyState`: see above. */
export async function runTrace(engine: MPlusEngine, ops: TraceOp[], memory: MemoryState = engine.initialMemory(),
  { everyState = false } = {}): Promise<TraceResult> {
  const results: TraceResult['results'] = [];
  const d = engine.config.hiddenSize;
  for (const op of ops) {
    if (op.op === 'inject') {
      const r = await engine.inject(memory, op.tokens, { drop: op.drop });
      const delta = r.delta.map((x) => rows(x, d));
      results.push(everyState ? { delta, state: stateJson(memory, true) } : { delta });
    } else {
      const q = await engine.prefill(memory, op.tokens);
      const logits = [Array.from(q.logits)];
      const tokens: number[] = [];
      let cur = q.logits;
      for (let s = 0; s < op.steps; s++) {
        const t = argmax(cur);
        tokens.push(t);
        cur = await engine.decode(q, t);
        logits.push(Array.from(cur));
      }
      results.push({ retrieved: q.retrieved, logits, tokens });
    }
  }
  return { results, state: stateJson(memory) };
}
