/**
 * Checks a RESULT-shaped object against a golden case, with the tolerance rules of
 * /work/shared/golden/compare.py (own code, same rules):
 *  - every float quantity: max |got − expected| ≤ TOL · max(1, max |expected|), TOL = 1e-4,
 *    shapes must agree;
 *  - ages, tokens and update_step exact;
 *  - retrieved indices are checked by the rows they select from the expected state's ltm + cache
 *    (so equal rows at different indices are interchangeable).
 * `maxErrors` reports, per quantity name, the max abs error and its allowance (for reports).
 */
import * as fs from 'fs';
import * as path from 'path';

export const TOL = 1e-4;

type Nested = number | Nested[];

export interface Expected {
  results: Array<{ delta?: number[][][]; retrieved_values?: number[][][]; logits?: number[][]; tokens?: number[] }>;
  state: {
    layers: Array<Record<string, number[] | number[][]>>;
    update_step: number;
  };
}

export interface ResultLike {
  results?: ReadonlyArray<object>;
  state?: { layers?: ReadonlyArray<object>; update_step?: number };
}

export interface QuantityError {
  err: number;
  allowed: number;
}

function shapeOf(x: unknown): number[] | null {
  if (typeof x === 'number') return [];
  if (!Array.isArray(x)) return null;
  if (x.length === 0) return [0];
  const inner = shapeOf(x[0]);
  if (inner === null) return null;
  for (const e of x) {
    const s = shapeOf(e);
    if (s === null || s.length !== inner.length || s.some((v, i) => v !== inner[i])) return null; // ragged
  }
  return [x.length, ...inner];
}

function flatten(x: Nested, out: number[] = []): number[] {
  if (typeof x === 'number') out.push(x);
  else for (const e of x) flatten(e, out);
  return out;
}

/** Compares one float quantity; pushes a message on mismatch; records the error in `errs`. */
function close(name: string, got: unknown, exp: unknown, bad: string[], errs?: Map<string, QuantityError>): void {
  const gs = shapeOf(got);
  const es = shapeOf(exp);
  if (gs === null || es === null || gs.length !== es.length || gs.some((v, i) => v !== es[i])) {
    bad.push(`${name}: shape ${JSON.stringify(gs)} != ${JSON.stringify(es)}`);
    return;
  }
  const g = flatten(got as Nested);
  const e = flatten(exp as Nested);
  if (e.length === 0) return;
  let err = 0;
  let scale = 1;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(g[i] - e[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? NaN : Math.max(err, d); // NaN sticks
    scale = Math.max(scale, Math.abs(e[i]));
  }
  const allowed = TOL * scale;
  errs?.set(name, { err, allowed });
  if (!(err <= allowed)) bad.push(`${name}: max abs err ${err.toPrecision(3)} (allowed ${allowed.toPrecision(3)})`);
}

function intsEqual(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  return a.every((x, i) => Math.trunc(Number(x)) === Math.trunc(Number(b[i])));
}

export function loadExpected(caseDirOrExpected: string | Expected): Expected {
  if (typeof caseDirOrExpected !== 'string') return caseDirOrExpected;
  return JSON.parse(fs.readFileSync(path.join(caseDirOrExpected, 'expected.json'), 'utf8')) as Expected;
}

/** Returns the list of mismatches (empty = everything within tolerance). */
export function compareResult(caseDirOrExpected: string | Expected, result: ResultLike, errs?: Map<string, QuantityError>): string[] {
  const exp = loadExpected(caseDirOrExpected);
  const bad: string[] = [];
  const er = exp.results;
  const gr = result.results ?? [];
  if (gr.length !== er.length) bad.push(`${gr.length} results, expected ${er.length}`);
  for (let i = 0; i < Math.min(er.length, gr.length); i++) {
    const e = er[i];
    const g = gr[i] as Record<string, unknown>;
    if (e.delta !== undefined) {
      close(`op${i}.delta`, g.delta, e.delta, bad, errs);
      continue;
    }
    close(`op${i}.logits`, g.logits, e.logits, bad, errs);
    if (!intsEqual(g.tokens, e.tokens) || (g.tokens as unknown[]).some((t) => !Number.isInteger(t))) {
      bad.push(`op${i}.tokens ${JSON.stringify(g.tokens)} != ${JSON.stringify(e.tokens)}`);
    }
    const rv = e.retrieved_values ?? [];
    const gotIdx = (g.retrieved as unknown[][] | undefined) ?? [];
    rv.forEach((rows, l) => {
      const st = exp.state.layers[l];
      const pool = [...(st.ltm as number[][]), ...(st.cache as number[][])];
      const idx = gotIdx[l];
      if (!Array.isArray(idx)) {
        bad.push(`op${i}.layer${l}.retrieved: missing`);
        return;
      }
      const bads = idx.filter((x) => !Number.isInteger(x) || (x as number) < 0 || (x as number) >= pool.length);
      if (bads.length) {
        bad.push(`op${i}.layer${l}.retrieved: indices ${JSON.stringify(bads.slice(0, 5))} outside 0..${pool.length - 1}`);
        return;
      }
      close(`op${i}.layer${l}.retrieved`, idx.map((x) => pool[x as number]), rows, bad, errs);
    });
  }
  const es = exp.state;
  const gs = result.state ?? {};
  if (gs.update_step !== es.update_step) bad.push(`update_step ${gs.update_step} != ${es.update_step}`);
  es.layers.forEach((e, l) => {
    const g = (gs.layers?.[l] ?? {}) as Record<string, unknown>;
    for (const k of ['stm', 'ltm', 'ltm_keys', 'cache', 'cache_keys', 'ltm_rf']) close(`state.layer${l}.${k}`, g[k], e[k], bad, errs);
    for (const k of ['stm_ages', 'ltm_ages', 'cache_ages']) {
      if (!intsEqual(g[k] ?? [], e[k])) bad.push(`state.layer${l}.${k} differs`);
    }
  });
  return bad;
}
