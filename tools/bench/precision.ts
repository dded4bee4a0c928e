/**
 * `mplus bench precision`: how far each reduced precision's results are from f32 on the same
 * checkpoint, the same tokens and the same drop plans (so memory rows are comparable by index):
 *   - logits: max |Δ| / max |f32| per logit vector (the question's last prefill row and every
 *     decode step), the worst and the mean over vectors;
 *   - greedy tokens: f32 decodes greedily; the other precision is fed the same tokens (teacher
 *     forcing, so one early difference does not cascade) and its argmax compared at every step;
 *   - retrieval: per question and layer, the share of f32's top-R rows the precision also picked;
 *   - memory: max relative error of the injected deltas of the first injection.
 */
import type { KvFormat } from '../../src/engine/graphs/layer';
import { parseArgs } from 'util';
import { MPlusEngine } from '../../src/engine/mplus';
import { PRECISIONS, Precision, defaultBlock, isPrecision } from '../../src/engine/quant/precision';
import { argmax } from '../../src/engine/sampling';
import { Rng } from '../../src/util/rng';
import { benchFixture } from './fixture';
import { loraMergeError } from './loraMerge';
import { PRESETS, Preset } from '../fixture';

export interface PrecisionBenchOptions {
  model: string;
  precisions: Precision[];
  block?: number;
  injections?: number;
  questions?: number;
  questionTokens?: number;
  decodeTokens?: number;
  seed?: number;
  quantCacheDir?: string;
  /** K/V width of the compared runs (the f32 reference always keeps float32); default: the engine's. */
  kvFormat?: KvFormat;
}

export interface PrecisionRun {
  logits: Float32Array[];
  tokens: number[];
  retrieved: number[][][];
  delta: Float32Array[];
}

export interface PrecisionReport {
  precision: Precision;
  logitsMaxRelError: number;
  logitsMeanRelError: number;
  greedyAgreement: number;
  topROverlap: number;
  /** Lowest overlap of any one question and layer. */
  topROverlapMin: number;
  deltaMaxRelError: number;
  quantizedWeightMiB: number | null;
}

/** One vector's max |a − ref| over max |ref|. */
export function relError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return m > 0 ? d / m : d;
}

/** Runs the fixed script; with `forced`, decodes those tokens instead of its own greedy ones. */
async function script(o: PrecisionBenchOptions, precision: Precision, forced?: number[]): Promise<{ run: PrecisionRun; quantMiB: number | null }> {
  const kvFormat = forced ? o.kvFormat : 'f32'; // `forced` tokens: a compared run; none: the reference
  const e = await MPlusEngine.load(o.model, { seed: o.seed ?? 1, precision, quantBlock: o.block, quantCacheDir: o.quantCacheDir, kvFormat });
  try {
    const c = e.config;
    const rng = new Rng(o.seed ?? 1);
    const toks = (n: number) => Array.from({ length: n }, () => rng.int(c.vocabSize));
    const dropPlan = () => Array.from({ length: c.numLayers }, () => {
      const s = new Set<number>();
      while (s.size < c.numTokens) s.add(rng.int(c.stmSize));
      return [...s].sort((a, b) => a - b);
    });
    const mem = e.initialMemory();
    const n = Math.min(512, 4 * c.numTokens);
    const run: PrecisionRun = { logits: [], tokens: [], retrieved: [], delta: [] };
    const injections = o.injections ?? Math.max(8, c.updateLtmFrequency * 2 + 1);
    for (let i = 0; i < injections; i++) {
      const r = await e.inject(mem, toks(n), { drop: dropPlan() });
      if (i === 0) run.delta = r.delta;
    }
    let f = 0;
    for (let qi = 0; qi < (o.questions ?? 4); qi++) {
      const q = await e.prefill(mem, toks(o.questionTokens ?? 32));
      run.retrieved.push(q.retrieved);
      let logits = q.logits;
      for (let t = 0; t < (o.decodeTokens ?? 16); t++) {
        run.logits.push(logits);
        const tok = forced ? forced[f++] : argmax(logits);
        run.tokens.push(argmax(logits));
        logits = await e.decode(q, tok);
      }
    }
    return { run, quantMiB: e.quant ? e.quant.bytes / 2 ** 20 : null };
  } finally {
    await e.close();
  }
}

export async function benchPrecision(o: PrecisionBenchOptions): Promise<{ reports: PrecisionReport[] }> {
  const ref = (await script(o, 'f32')).run;
  const reports: PrecisionReport[] = [];
  for (const p of o.precisions) {
    const { run, quantMiB } = await script(o, p, ref.tokens);
    const errs = run.logits.map((l, i) => relError(l, ref.logits[i]));
    const overlaps: number[] = [];
    run.retrieved.forEach((layers, qi) => layers.forEach((rows, l) => {
      const want = new Set(ref.retrieved[qi][l]);
      overlaps.push(rows.filter((r) => want.has(r)).length / Math.max(1, want.size));
    }));
    reports.push({
      precision: p,
      logitsMaxRelError: Math.max(...errs),
      logitsMeanRelError: errs.reduce((a, b) => a + b, 0) / errs.length,
      greedyAgreement: run.tokens.filter((t, i) => t === ref.tokens[i]).length / ref.tokens.length,
      topROverlap: overlaps.reduce((a, b) => a + b, 0) / overlaps.length,
      topROverlapMin: Math.min(...overlaps),
      deltaMaxRelError: Math.max(...run.delta.map((d, l) => relError(d, ref.delta[l]))),
      quantizedWeightMiB: quantMiB,
    });
  }
  return { reports };
}

export async function benchPrecisionCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      preset: { type: 'string' }, model: { type: 'string' }, precisions: { type: 'string' }, block: { type: 'string' },
      seed: { type: 'string' }, json: { type: 'boolean' }, lora: { type: 'boolean' }, kv: { type: 'string' },
    },
  });
  const preset = (values.preset ?? 'tiny') as Preset;
  if (!values.model && !PRESETS.includes(preset)) throw new Error(`--preset must be one of ${PRESETS.join(', ')}`);
  const model = values.model ?? benchFixture(preset, 'f32');
  const precisions = (values.precisions ?? 'bf16,int8,int4').split(',');
  const kv = values.kv;
  if (kv !== undefined && kv !== 'f32' && kv !== 'f16') throw new Error(`--kv must be f32 or f16, got ${kv}`);
  // f32 weights against the f32 reference only differ when the K/V width does
  for (const p of precisions) if (!isPrecision(p) || (p === 'f32' && kv !== 'f16')) throw new Error(`--precisions: ${p} is not one of ${PRECISIONS.filter((x) => x !== 'f32').join(', ')} (f32 too with --kv f16)`);
  // one block for every precision when given, else each precision's default (defaultBlock)
  const block = values.block === undefined ? undefined : Number(values.block);
  if (values.lora) {
    for (const bits of [8, 4] as const) {
      const b = block ?? defaultBlock(bits === 8 ? 'int8' : 'int4');
      const m = loraMergeError(model, bits, b);
      console.log(`LoRA at ${bits} bits, block ${b}, ${m.linears} adapted linears: relative weight error unmerged ${m.unmerged.toExponential(3)}, merged ${m.merged.toExponential(3)}`);
    }
    return;
  }
  const r = await benchPrecision({ model, precisions: precisions as Precision[], block, seed: values.seed === undefined ? 1 : Number(values.seed), kvFormat: kv });
  if (values.json) return void console.log(JSON.stringify({ model, block, ...r }));
  const blocks = block === undefined ? `block ${(precisions as Precision[]).filter((p) => p === 'int8' || p === 'int4').map((p) => `${defaultBlock(p)} at ${p}`).join(', ') || 'n/a'}` : `block ${block}`;
  console.log(`model ${model}, ${blocks}${kv ? `, compared runs with ${kv} K/V` : ''}; each row against f32 (float32 K/V) on the same tokens and drops`);
  console.log('precision  logits max rel err  mean rel err  greedy agree  top-R overlap (min)  delta max rel err  linear weights MiB');
  const f = (x: number, d = 4) => x.toFixed(d);
  for (const x of r.reports) {
    console.log(`${x.precision.padEnd(10)} ${f(x.logitsMaxRelError).padStart(18)}  ${f(x.logitsMeanRelError).padStart(12)}  ${(f(100 * x.greedyAgreement, 1) + '%').padStart(12)}  ` +
      `${(f(100 * x.topROverlap, 1) + '% (' + f(100 * x.topROverlapMin, 1) + '%)').padStart(19)}  ${f(x.deltaMaxRelError).padStart(17)}  ${x.quantizedWeightMiB === null ? 'as shipped' : f(x.quantizedWeightMiB, 1)}`);
  }
}
