/**
 * `mplus fixture|trace|bench` — the developer tools, with their own entry point (bin/mplus.js
 * hands these commands here; the product's CLI, src/cli, is a protocol client only).
 *   mplus fixture --out DIR --preset tiny|small|mplus-8b-shape --seed S [--dtype f32|bf16]
 *   mplus trace --model DIR --ops OPS.json --out RESULT.json [--seed S] [--every-state]
 *   mplus bench engine|store|ingest|discover …
 * Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad usage.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { MPlusEngine } from '../src/engine/mplus';
import { OrtExecutor } from '../src/engine/executor';
import type { KvFormat } from '../src/engine/graphs/layer';
import { VALUE_FORMATS, ValueFormat, rowBytes } from '../src/memory/store/codec';
import { benchDiscover } from './bench/discover';
import { BENCH_MEMORIES, BenchMemory, benchEngine } from './bench/engine';
import { ROW_FORMATS, RowFormat } from '../src/memory/rows';
import { benchFixture } from './bench/fixture';
import { benchPrecisionCmd } from './bench/precision';
import { PRECISIONS, Precision, isPrecision } from '../src/engine/quant/precision';
import { benchIngestCmd } from './bench/ingest';
import { benchRetentionCmd } from './bench/retention';
import { lookupCmd } from './lookup';
import { benchGatherSweep } from './bench/gather';
import { benchSaveCommit, benchStore } from './bench/store';
import { PRESETS, Preset, writeFixture } from './fixture';
import { parseOps, runTrace } from './trace';

export class UsageError extends Error {}

/** The commands this entry point serves. */
export const TOOL_COMMANDS = ['fixture', 'trace', 'bench', 'lookup'];

const USAGE = `usage: mplus <tool> [options]
  fixture --out DIR --preset ${PRESETS.join('|')} --seed S [--dtype f32|bf16]
          write a deterministic random M+ checkpoint in the Hugging Face layout
  trace   --model DIR --ops OPS.json --out RESULT.json [--seed S] [--every-state]
          run a script of inject/generate ops and write every intermediate a checker needs
          (--every-state: also the memory after each injection, packed float32)
  bench engine (--preset small|tiny|medium | --model DIR) [--dtype f32|bf16] [--json]
          [--precision f32|bf16|int8|int4] [--block 32] [--injections N] [--decode-tokens N] [--device cpu|cuda]
          [--state f32|bf16] (θ/cache rows; default: the checkpoint's dtype)
          [--memory store|ram] (store: θ/cache/Θ on disk, committed per injection, as in the sidecar — the default)
          [--kv f32|f16] (a question's K/V cache; default: f16 for a bf16 checkpoint, else f32)
          injection tokens/s, prefill ms, decode tokens/s, peak RSS, vs measured matmul rate
  bench precision (--preset tiny|small|medium | --model DIR) [--precisions bf16,int8,int4] [--block 32] [--lora] [--kv f32|f16]
          logits error, greedy-token agreement and retrieved top-R overlap of each precision vs f32
  bench store [--rows 150000] [--format bf16|f32|q8] [--save-ltm-rows 0]
          commit MB/s, open ms, gather of R=2560 rows at mplus-8b row size
  bench store --sweep [--layers 30000,150000] [--gaps 0,16384,65536] [--max-bytes N] [--reps 3]
          gather of R=2560 random / clustered rows, cold and warm, row by row vs each read window
  bench ingest [--repo .] [--model DIR | --preset small]
          files/s, repository tokens/s and peak RSS of a real sidecar feeding a repository
  bench discover [--files 100000]
          discovery and watch-setup time and RSS on a generated tree
  bench retention [--model DIR] [--tokens 0,8192,32768] [--facts 16] [--seed 1|19-36|1,4,7-9] [--modes theta,mplus]
          [--precision P] [--out BASE] [--min-exact X]
          facts fed, then N tokens of unrelated code, then each asked: exact hits and fact rows
          retrieved, θ only (MemoryLLM) vs M+, real sidecar; BASE.md/.svg/.json, resumable
          (several seeds: each written as BASE-sSEED, BASE their pool with standard errors)
  lookup  [--repo .] [--model DIR] [--store DIR] [--seed S] [--all] [--alone] [--json]
          ask a lookup model the value of one of the repository's constants (--all: of every one) and check the answer
          (--alone: each constant's file fed alone into a fresh memory)
exit codes: 0 ok, 1 failure, 2 usage`;

function int(v: string | undefined, name: string, def?: number): number {
  if (v === undefined) {
    if (def === undefined) throw new UsageError(`--${name} is required`);
    return def;
  }
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${v}`);
  return n;
}

function need(v: string | undefined, name: string): string {
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
}

function dtypeOf(v: string | undefined): 'f32' | 'bf16' {
  if (v === undefined || v === 'f32' || v === 'bf16') return v ?? 'f32';
  throw new UsageError(`--dtype must be f32 or bf16, got ${v}`);
}

function precisionOf(v: string | undefined): Precision | undefined {
  if (v === undefined || isPrecision(v)) return v;
  throw new UsageError(`--precision must be one of ${PRECISIONS.join(', ')}, got ${v}`);
}

function presetOf(v: string | undefined): Preset {
  if (!PRESETS.includes(v as Preset)) throw new UsageError(`--preset must be one of ${PRESETS.join(', ')}, got ${v}`);
  return v as Preset;
}

async function cmdFixture(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' }, preset: { type: 'string' }, seed: { type: 'string' }, dtype: { type: 'string' } } });
  const out = need(values.out, 'out');
  const r = writeFixture({ out, preset: presetOf(values.preset), seed: int(values.seed, 'seed'), dtype: dtypeOf(values.dtype) });
  console.log(`wrote ${r.files.length} file(s), ${(r.bytes / 2 ** 20).toFixed(1)} MiB, to ${out}`);
}

async function cmdTrace(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: {
    model: { type: 'string' }, ops: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' }, 'every-state': { type: 'boolean' },
  } });
  const opsFile = need(values.ops, 'ops');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(opsFile, 'utf8'));
  } catch (e) {
    throw new Error(`${opsFile}: cannot read ops: ${(e as Error).message}`);
  }
  const ops = parseOps(json, opsFile);
  // A trace is compared with the official float32 run: its K/V stay float32 whatever the checkpoint.
  const engine = await MPlusEngine.load(need(values.model, 'model'), { seed: int(values.seed, 'seed', 0), kvFormat: 'f32' });
  try {
    const result = await runTrace(engine, ops, engine.initialMemory(), { everyState: values['every-state'] === true });
    fs.writeFileSync(need(values.out, 'out'), JSON.stringify(result));
  } finally {
    await engine.close();
  }
}

async function cmdBench(args: string[]): Promise<void> {
  const [what, ...rest] = args;
  if (what === 'store') return benchStoreCmd(rest);
  if (what === 'ingest') return void (await benchIngestCmd(rest));
  if (what === 'discover') return benchDiscoverCmd(rest);
  if (what === 'retention') return benchRetentionCmd(rest);
  if (what === 'precision') return benchPrecisionCmd(rest);
  const { values } = parseArgs({
    args: rest,
    options: {
      preset: { type: 'string' }, model: { type: 'string' }, dtype: { type: 'string' }, json: { type: 'boolean' },
      injections: { type: 'string' }, 'decode-tokens': { type: 'string' }, precision: { type: 'string' }, block: { type: 'string' },
      device: { type: 'string' }, state: { type: 'string' }, kv: { type: 'string' }, memory: { type: 'string' },
    },
  });
  if (what !== 'engine') throw new UsageError(`unknown benchmark ${JSON.stringify(what)} (engine, store, ingest, discover, retention, precision)`);
  const model = values.model ?? benchFixture(presetOf(values.preset ?? 'small'), dtypeOf(values.dtype));
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda' && device !== 'webgpu') throw new UsageError(`--device must be cpu, cuda or webgpu, got ${device}`);
  const r = await benchEngine({
    model,
    executor: new OrtExecutor({ device }),
    injections: values.injections === undefined ? undefined : int(values.injections, 'injections'),
    decodeTokens: values['decode-tokens'] === undefined ? undefined : int(values['decode-tokens'], 'decode-tokens'),
    precision: precisionOf(values.precision),
    quantBlock: values.block === undefined ? undefined : int(values.block, 'block'),
    stateFormat: stateFormatOf(values.state),
    kvFormat: kvFormatOf(values.kv),
    memory: benchMemoryOf(values.memory),
  });
  if (values.json) {
    console.log(JSON.stringify({ model, ...r }));
    return;
  }
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(`model            ${model}`);
  console.log(`executor         ${r.executor}`);
  console.log(`precision        ${r.precision}${r.quantizedWeightMiB === null ? '' : ` (${f(r.quantizedWeightMiB)} MiB of linear weights${r.quantizedThisRun ? ', quantized in this run' : ', from the cache'})`}`);
  console.log(`engine load      ${f(r.loadMs, 0)} ms`);
  console.log(`matmul rate      ${f(r.matmulGflops)} GFLOP/s (float32, measured on this executor)`);
  console.log(`session setup    ${f(r.sessionSetupMs, 0)} ms`);
  console.log(`injection        ${f(r.injectTokensPerS)} tokens/s  (${f(r.injectGflopsPerChunk, 3)} GFLOP per chunk, ${f(100 * r.injectFractionOfMatmul)}% of matmul rate)`);
  console.log(`question prefill ${f(r.prefillMs)} ms  (${f(r.prefillGflops, 3)} GFLOP, ${f(100 * r.prefillFractionOfMatmul)}% of matmul rate; θ's K/V computed)`);
  console.log(`next question    ${f(r.prefillCachedMs)} ms  (${f(r.prefillCachedGflops, 3)} GFLOP; θ's K/V kept from the question before)`);
  console.log(`injection again  ${f(r.injectWarmMs, 0)} ms with θ's K/V updated (${f(r.thetaKvUpdateMs, 0)} ms of it: K new rows projected per layer)`);
  console.log(`question after   ${f(r.prefillAfterInjectionMs)} ms  (θ's K/V updated by the injection, not recomputed)`);
  console.log(`decode           ${f(r.decodeTokensPerS)} tokens/s  (${f(r.decodeGflopsPerToken, 3)} GFLOP per token, ${f(100 * r.decodeFractionOfMatmul)}% of matmul rate)`);
  console.log(`                 ${f(r.decodeWeightMiB)} MiB of ${r.quantizedWeightMiB === null ? 'float32' : r.precision} weights per token → ${f(r.decodeImpliedGBps)} GB/s streamed (decode is bandwidth-bound)`);
  const ltmMiB = f((r.ltmRowsPerLayer * r.kvLayers * rowBytes(r.stateFormat, r.hiddenSize)) / 2 ** 20);
  console.log(`Θ rows per layer ${r.ltmRowsPerLayer} (${ltmMiB} MiB of values, ${r.stateFormat}, ${r.memory === 'store' ? 'on disk' : 'in RAM here; the sidecar keeps Θ on disk'})`);
  console.log(`θ                ${f(r.thetaMiB)} MiB (${r.stateFormat}); in RAM ${f(r.thetaInRamMiB)} MiB (memory: ${r.memory === 'store' ? 'a store, θ/cache/Θ on disk as in the sidecar' : 'all in RAM'})`);
  if (r.commitMs !== null) console.log(`commit           ${f(r.commitMs, 0)} ms after each injection (untimed above)`);
  console.log(`θ K/V cache      ${f(r.thetaKvMiB)} MiB (${r.kvFormat}, kept between questions until θ changes)`);
  console.log(`question K/V     ${f(r.questionKvMiB)} MiB (${r.kvFormat}, ${r.questionKvPositions} positions × ${r.kvLayers} layers, after decoding)`);
  console.log(`peak RSS         ${f(r.peakRssMiB)} MiB (by the end of ${Object.entries(r.phasePeakMiB).map(([k, v]) => `${k} ${f(v, 0)}`).join(', ')})`);
}

function benchMemoryOf(v: string | undefined): BenchMemory | undefined {
  if (v === undefined || (BENCH_MEMORIES as readonly string[]).includes(v)) return v as BenchMemory | undefined;
  throw new UsageError(`--memory must be one of ${BENCH_MEMORIES.join(', ')}, got ${v}`);
}

function kvFormatOf(v: string | undefined): KvFormat | undefined {
  if (v === undefined || v === 'f32' || v === 'f16') return v;
  throw new UsageError(`--kv must be f32 or f16, got ${v}`);
}

function stateFormatOf(v: string | undefined): RowFormat | undefined {
  if (v === undefined || (ROW_FORMATS as readonly string[]).includes(v)) return v as RowFormat | undefined;
  throw new UsageError(`--state must be one of ${ROW_FORMATS.join(', ')}, got ${v}`);
}

async function benchStoreCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      rows: { type: 'string' }, 'save-ltm-rows': { type: 'string' }, format: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' },
      sweep: { type: 'boolean' }, layers: { type: 'string' }, gaps: { type: 'string' }, 'max-bytes': { type: 'string' }, reps: { type: 'string' },
    },
  });
  const format = (values.format ?? 'bf16') as ValueFormat;
  if (!VALUE_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${VALUE_FORMATS.join(', ')}`);
  if (values.sweep) return benchGatherSweepCmd(values, format);
  const r = await benchStore({ rows: int(values.rows, 'rows', 150000), format, dir: values.dir });
  const sv = await benchSaveCommit({ dir: values.dir && path.join(values.dir, 'save'), ltmRows: int(values['save-ltm-rows'], 'save-ltm-rows', 0) });
  if (values.json) return void console.log(JSON.stringify({ ...r, saveCommit: sv }));
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(`Θ rows (1 layer) ${r.rows} × ${r.width} values, ${r.format} on disk → ${f(r.storeBytes / 2 ** 30, 2)} GiB`);
  console.log(`commit           ${f(r.commitMBps)} MB/s (fsync included; ${f(r.commitSeconds)} s in all)`);
  console.log(`open             ${f(r.openMs)} ms (manifest, state, every key read and verified; values not read)`);
  console.log(`gather ${r.gatherRows} rows  ${f(r.gatherFirstMs)} ms first (${r.pageCacheDropped ? 'page cache dropped' : 'page cache NOT dropped: needs GNU dd'}), ${f(r.gatherWarmMs)} ms warm; ${r.gatherReads} reads each`);
  console.log(`peak RSS         ${f(r.peakRssMiB)} MiB`);
  const mb = (x: number) => f(x / 1e6);
  console.log(`θ (1 layer)      ${sv.stmRows} × ${sv.width}, bf16, Θ ${sv.ltmRows} rows: first commit ${mb(sv.firstCommitBytes)} MB in ${f(sv.firstCommitMs)} ms; ` +
    `after ${sv.injections} injection (an editor save) ${mb(sv.saveCommitBytes)} MB in ${f(sv.saveCommitMs)} ms (median)`);
}

async function benchGatherSweepCmd(values: { layers?: string; gaps?: string; 'max-bytes'?: string; reps?: string; dir?: string; json?: boolean }, format: ValueFormat): Promise<void> {
  const list = (v: string | undefined, name: string) => v?.split(',').map((x) => int(x, name));
  const r = await benchGatherSweep({
    layers: list(values.layers, 'layers'), gaps: list(values.gaps, 'gaps'), format, dir: values.dir,
    maxBytes: values['max-bytes'] === undefined ? undefined : int(values['max-bytes'], 'max-bytes'), reps: values.reps === undefined ? undefined : int(values.reps, 'reps'),
  });
  if (values.json) return void console.log(JSON.stringify(r));
  console.log(`gather ${r.gatherRows} rows of width ${r.width}, ${r.format}, segments of ${r.segmentRows} rows; first read ${r.pageCacheDropped ? 'from a dropped page cache' : 'NOT from a dropped page cache (needs GNU dd)'}; medians`);
  console.log('Θ rows   pattern    read window                 first ms  warm ms  warm CPU ms   reads  MiB read');
  for (const x of r.rows) {
    const w = x.gapBytes === null ? 'row by row' : `gap ≤ ${x.gapBytes >> 10} KiB, ≤ ${x.maxBytes >> 10} KiB`;
    console.log(`${String(x.layerRows).padEnd(8)} ${x.pattern.padEnd(10)} ${w.padEnd(27)} ${x.coldMs.toFixed(1).padStart(8)} ${x.warmMs.toFixed(1).padStart(8)} ${x.warmCpuMs.toFixed(1).padStart(12)} ${String(x.reads).padStart(7)} ${x.readMiB.toFixed(1).padStart(9)}`);
  }
  const b = r.warm;
  console.log(`warm gather of ${r.gatherRows} random rows, each part alone (CPU ms, best of 3): one read per row ${b.readsMs.toFixed(1)}, crc32 ${b.crcMs.toFixed(1)}, ` +
    `${r.format} decode ${b.decodeMs.toFixed(1)}, allocating + first touch of the ${(r.gatherRows * r.width * 4 / 2 ** 20).toFixed(0)} MiB float32 result ${b.outputMs.toFixed(1)}`);
}

async function benchDiscoverCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { files: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' } } });
  const r = await benchDiscover({ files: int(values.files, 'files', 100000), dir: values.dir });
  if (values.json) return void console.log(JSON.stringify(r));
  console.log(`files            ${r.files}`);
  console.log(`discovery        ${r.discoverMs.toFixed(0)} ms (${(r.files / (r.discoverMs / 1000)).toFixed(0)} files/s)`);
  console.log(`watch setup      ${r.watchSetupMs.toFixed(0)} ms`);
  console.log(`RSS              ${r.rssMiB.toFixed(1)} MiB (watcher adds ${r.watcherRssMiB.toFixed(1)} MiB)`);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'fixture': await cmdFixture(rest); break;
      case 'trace': await cmdTrace(rest); break;
      case 'bench': await cmdBench(rest); break;
      case 'lookup': await lookupCmd(rest); break;
      case undefined: case 'help': case '--help': case '-h':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default: throw new UsageError(`unknown tool ${JSON.stringify(cmd)}`);
    }
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`mplus: ${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`mplus ${cmd}: ${err.message}`);
    if (process.env.MPLUS_DEBUG) console.error(err.stack);
    return 1;
  }
}
