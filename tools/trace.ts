/**
 * Runs a script of operations against the engine and records everything a checker needs
 * (the `mplus trace` format, shared with ../shared/golden/compare.py):
 *   OPS:    {"ops":[{"op":"inject","tokens":[…],"drop"?:[[…per layer…]]},
 *                   {"op":"generate","tokens":[…],"steps":S}]}
 *   RESULT: {"results":[{"delta":[L][K][d]} | {"retrieved":[L][R],"logits":[S+1][V],"tokens":[S]}],
 *            "state":{"layers":[{stm,stm_ages,ltm,ltm_keys,ltm_ages,ltm_rf,cache,cache_keys,
 *                     cache_ages}],"update_step"}}
 * `state` is the memory after the last injection (generation does not change memory).
 */
import { MemoryState } from '../src/memory/state';
import { MPlusEngine } from '../src/engine/mplus';
import { argmax } from '../src/engine/sampling';

export type TraceOp =
  | { op: 'inject'; tokens: number[]; drop?: number[][] }
  | { op: 'generate'; tokens: number[]; steps: number };

export interface TraceResult {
  results: Array<{ delta: number[][][] } | { retrieved: number[][]; logits: number[][]; tokens: number[] }>;
  state: ReturnType<typeof stateJson>;
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

export function stateJson(m: MemoryState) {
  const { hidden: d, keyDim: s } = m.dims;
  return {
    layers: m.layers.map((l) => ({
      stm: rows(l.stm.data, d),
      stm_ages: Array.from(l.stmAges.data),
      ltm: rows(l.ltm.data, d),
      ltm_keys: rows(l.ltmKeys.data, s),
      ltm_ages: Array.from(l.ltmAges.data),
      ltm_rf: Array.from(l.ltmRf.data),
      cache: rows(l.cache.data, d),
      cache_keys: rows(l.cacheKeys.data, s),
      cache_ages: Array.from(l.cacheAges.data),
    })),
    update_step: m.updateStep,
  };
}

/** Runs `ops` against `memory` (default: the checkpoint's own, fresh). */
export async function runTrace(engine: MPlusEngine, ops: TraceOp[], memory: MemoryState = engine.initialMemory()): Promise<TraceResult> {
  const results: TraceResult['results'] = [];
  const d = engine.config.hiddenSize;
  for (const op of ops) {
    if (op.op === 'inject') {
      const r = await engine.inject(memory, op.tokens, { drop: op.drop });
      results.push({ delta: r.delta.map((x) => rows(x, d)) });
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
