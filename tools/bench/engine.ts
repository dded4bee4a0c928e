/**
 * `mplus bench engine`: injection tokens/s, question prefill ms, decode tokens/s and peak RSS,
 * each next to the FLOPs it needed and the machine's measured float32 matmul rate on the same
 * executor, so "fraction of the physical floor" can be read off directly.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MPlusConfig } from '../../src/model/config';
import { Rng } from '../../src/util/rng';
import { Executor, OrtExecutor } from '../../src/engine/executor';
import { GraphBuilder, OnnxDType } from '../../src/engine/onnx/builder';
import { MPlusEngine, Question } from '../../src/engine/mplus';
import { Precision } from '../../src/engine/quant/precision';
import type { RowFormat } from '../../src/memory/rows';
import type { KvFormat } from '../../src/engine/graphs/layer';
import { MemoryState } from '../../src/memory/state';
import { MemoryStore } from '../../src/memory/store/store';
import { rowBytes } from '../../src/memory/store/codec';
import { StoredMemory } from '../../src/memory/store/storedMemory';

export interface EngineBenchOptions {
  model: string;
  executor?: Executor;
  /** Tokens per injected chunk (default: 4·K capped at 512, as chunks are up to 512 tokens). */
  chunkTokens?: number;
  injections?: number;
  questionTokens?: number;
  decodeTokens?: number;
  seed?: number;
  precision?: Precision;
  quantBlock?: number;
  quantCacheDir?: string;
  /** Precision θ and the cache are held in (default: the engine's stateFormat()). */
  stateFormat?: RowFormat;
  /** Width of a question's K/V cache (default: the engine's, kvFormatOf the checkpoint). */
  kvFormat?: KvFormat;
  /**
   * Where memory lives: 'store' (default) as the sidecar holds it — a store in a temporary
   * folder, θ, the cache and Θ on disk, committed after every injection (untimed) — or 'ram',
   * all of it in RAM (MemoryState, as traces and golden cases run).
   */
  memory?: BenchMemory;
}

export type BenchMemory = 'store' | 'ram';
export const BENCH_MEMORIES: readonly BenchMemory[] = ['store', 'ram'];

export interface EngineBenchResult {
  executor: string;
  matmulGflops: number;
  injectTokensPerS: number;
  injectGflopsPerChunk: number;
  injectFractionOfMatmul: number;
  /** A question whose θ K/V had to be computed (the first one asked of this θ). */
  prefillMs: number;
  prefillGflops: number;
  prefillFractionOfMatmul: number;
  /** A question asked again with no injection between: θ's K/V kept from the one before. */
  prefillCachedMs: number;
  prefillCachedGflops: number;
  /** The engine's θ K/V cache, every layer. */
  thetaKvMiB: number;
  /** One more injection after the questions, θ's K/V updated (its K new rows projected), and its share of that. */
  injectWarmMs: number;
  thetaKvUpdateMs: number;
  /** The question after that injection: θ's K/V not recomputed. */
  prefillAfterInjectionMs: number;
  decodeTokensPerS: number;
  decodeGflopsPerToken: number;
  decodeFractionOfMatmul: number;
  /** Weight bytes one decode step streams, at the run's precision (f32 layout at f32/bf16: ORT widens bf16 on the CPU). */
  decodeWeightMiB: number;
  decodeImpliedGBps: number;
  sessionSetupMs: number;
  peakRssMiB: number;
  /** Peak RSS so far at the end of each phase (load, sessions, injection, prefill, decode): where the peak was reached. */
  phasePeakMiB: Record<string, number>;
  ltmRowsPerLayer: number;
  hiddenSize: number;
  precision: Precision;
  /** Bytes of the linear weights as the graphs hold them (quantized file; null at f32/bf16-as-shipped). */
  quantizedWeightMiB: number | null;
  /** Time to load the engine: quantization (first run) or cache check included. */
  loadMs: number;
  quantizedThisRun: boolean;
  stateFormat: RowFormat;
  /** θ's bytes as memory holds them (every layer). */
  thetaMiB: number;
  memory: BenchMemory;
  /** θ's bytes held in RAM at the end (all of θ for 'ram'; rows awaiting a commit for 'store'). */
  thetaInRamMiB: number;
  /** Median time of the commit after an injection ('store' only). */
  commitMs: number | null;
  kvFormat: KvFormat;
  /** The asked question's K/V cache after decoding, every layer. */
  questionKvMiB: number;
  questionKvPositions: number;
  kvLayers: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** FLOPs (2 per multiply-add) of one layer over `rows` output rows, `kvRows` key/value rows, and attention over `keys`. */
export function layerFlops(c: MPlusConfig, rows: number, kvRows: number, keys: number): number {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: hd, intermediateSize: f } = c;
  const r = c.lora.r;
  const lora = (i: number, o: number) => 2 * r * (i + o);
  const qo = rows * (2 * d * H * hd + lora(d, H * hd) + 2 * H * hd * d);
  const kv = kvRows * 2 * (2 * d * KV * hd + lora(d, KV * hd));
  const attn = rows * keys * H * hd * 4;
  const mlp = rows * (3 * 2 * d * f + 3 * lora(d, f));
  return qo + kv + attn + mlp;
}

/** float32 bytes of the weights one decode token reads: all layers (base + both LoRAs) and lm_head. */
export function decodeWeightBytes(c: MPlusConfig): number {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: hd, intermediateSize: f, vocabSize: V } = c;
  const r = c.lora.r;
  const lin = (i: number, o: number) => i * o + 2 * r * (i + o);
  const layer = lin(d, H * hd) + 2 * lin(d, KV * hd) + H * hd * d + 2 * lin(d, f) + lin(f, d) + 2 * d;
  return 4 * (c.numLayers * layer + V * d + d);
}

/** float32 bytes of the base linear weights of all layers and lm_head (what quantization replaces). */
export function linearBaseBytesF32(c: MPlusConfig): number {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: hd, intermediateSize: f, vocabSize: V } = c;
  return 4 * (c.numLayers * (2 * d * H * hd + 2 * d * KV * hd + 3 * d * f) + V * d);
}

/** Measures the executor's float32 GEMM rate on an [m,k]·[k,n] product. */
export async function measureMatmulGflops(executor: Executor, m = 512, k = 1024, n = 1024): Promise<number> {
  const g = new GraphBuilder('matmul_rate');
  const a = g.input('a', OnnxDType.FLOAT, [m, k]);
  const b = g.input('b', OnnxDType.FLOAT, [k, n]);
  g.output(g.op('MatMul', [a, b]), 'c', OnnxDType.FLOAT, [m, n]);
  const s = await executor.createSession('matmul rate', g.toBytes(), process.cwd());
  const feeds = { a: { data: new Float32Array(m * k).fill(0.5), dims: [m, k] }, b: { data: new Float32Array(k * n).fill(0.25), dims: [k, n] } };
  await s.run(feeds);
  const times: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 1500 || times.length < 5) {
    const t = performance.now();
    await s.run(feeds);
    times.push((performance.now() - t) / 1000);
  }
  await s.release();
  return (2 * m * k * n) / median(times) / 1e9;
}

export async function benchEngine(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const executor = o.executor ?? new OrtExecutor();
  const matmulGflops = await measureMatmulGflops(executor);
  const tl = performance.now();
  const engine = await MPlusEngine.load(o.model, {
    executor, seed: o.seed ?? 1, precision: o.precision, quantBlock: o.quantBlock, quantCacheDir: o.quantCacheDir, kvFormat: o.kvFormat,
  });
  const loadMs = performance.now() - tl;
  const peakMiB = () => process.resourceUsage().maxRSS / 1024;
  const phasePeakMiB: Record<string, number> = { load: peakMiB() };
  let storeDir: string | undefined;
  let stored: StoredMemory | undefined;
  try {
    const c = engine.config;
    const rng = new Rng(o.seed ?? 1);
    // θ and the cache held as the sidecar holds them (bf16 for a bf16 checkpoint), unless told.
    const stateFormat = o.stateFormat ?? engine.stateFormat();
    const where = o.memory ?? 'store';
    let memory: MemoryState | StoredMemory;
    if (where === 'store') {
      storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mplus-bench-store-'));
      // the sidecar's store options for this model (service.ts), without a budget
      const storeOpts = { identity: engine.checkpoint.identity(), dims: engine.memoryDims(), policy: engine.memoryPolicy(), valueFormat: stateFormat, thetaFormat: stateFormat };
      memory = stored = new StoredMemory(MemoryStore.open(storeDir, storeOpts, () => engine.initialMemory(stateFormat)));
    } else {
      memory = engine.initialMemory(stateFormat);
    }
    const commitTimes: number[] = [];
    const commit = () => {
      if (!stored) return;
      const tc = performance.now();
      stored.commit({});
      commitTimes.push(performance.now() - tc);
    };
    phasePeakMiB.memory = peakMiB();
    const tok = (n: number) => Array.from({ length: n }, () => rng.int(c.vocabSize));
    const t0 = performance.now();
    await engine.warmup();
    const sessionSetupMs = performance.now() - t0;
    phasePeakMiB.sessions = peakMiB();

    const n = o.chunkTokens ?? Math.min(512, 4 * c.numTokens);
    // Enough injections to merge into Θ at least once, so retrieval scores real candidates.
    const injections = o.injections ?? Math.max(8, c.updateLtmFrequency + 1);
    if (injections < 1) throw new Error('--injections must be at least 1');
    // First-run allocations out of the timing, unless a single injection is all that was asked.
    if (injections > 1) {
      await engine.inject(memory, tok(n));
      commit();
    }
    // Medians of per-unit times: this VM's neighbours make single timings swing ±40%.
    const injTimes: number[] = [];
    for (let i = 0; i < injections; i++) {
      const ti = performance.now();
      await engine.inject(memory, tok(n));
      injTimes.push((performance.now() - ti) / 1000);
      commit();
    }
    const injSec = median(injTimes) * injections;
    phasePeakMiB.injection = peakMiB();
    const K = c.numTokens;
    const T = 1 + K + n;
    const p = Math.min(1 + K, T - K);
    const injFlops = c.numLayers * layerFlops(c, T - p, T, T);

    const m = o.questionTokens ?? 32;
    const q = tok(m);
    const preTimes: number[] = [];
    // A full-size run (few injections asked) keeps to one prefill, untimed warm-up included (each is
    // minutes at mplus-8b shape); small ones warm up once, then take the median of 5.
    const prefills = injections >= 8 ? 5 : 1;
    let question: Question | undefined = prefills > 1 ? await engine.prefill(memory, q) : undefined;
    for (let i = 0; i < prefills; i++) {
      question = undefined; // one question's KV cache alive at a time (1.6 GB at mplus-8b shape)
      engine.forgetThetaKv(); // as the first question after an injection: θ's K/V computed
      const tp = performance.now();
      question = await engine.prefill(memory, q);
      preTimes.push(performance.now() - tp);
    }
    const prefillMs = median(preTimes);
    const cachedTimes: number[] = [];
    for (let i = 0; i < prefills; i++) {
      question = undefined;
      const tp = performance.now();
      question = await engine.prefill(memory, q); // θ's K/V kept from the question before
      cachedTimes.push(performance.now() - tp);
    }
    const prefillCachedMs = median(cachedTimes);
    phasePeakMiB.prefill = peakMiB();
    let asked: Question | undefined = question!; // prefills ≥ 1: the loop above set it
    const P = 1 + c.retrieveSize + c.stmSize;
    const prefillFlops = c.numLayers * layerFlops(c, m, P + m, P + m) + 2 * c.hiddenSize * c.vocabSize;
    const prefillCachedFlops = c.numLayers * layerFlops(c, m, P - c.stmSize + m, P + m) + 2 * c.hiddenSize * c.vocabSize;

    const steps = o.decodeTokens ?? 32;
    if (steps < 1) throw new Error('--decode-tokens must be at least 1');
    const decTimes: number[] = [];
    for (let i = 0; i < steps; i++) {
      const td = performance.now();
      await engine.decode(asked!, (i * 7919) % c.vocabSize);
      decTimes.push((performance.now() - td) / 1000);
    }
    const decSec = median(decTimes) * steps;
    phasePeakMiB.decode = peakMiB();
    const decFlops = c.numLayers * layerFlops(c, 1, 1, P + m + steps / 2) + 2 * c.hiddenSize * c.vocabSize;
    const questionKv = {
      questionKvMiB: asked!.kv.reduce((a, x) => a + x.k.data.byteLength + x.v.data.byteLength, 0) / 2 ** 20,
      questionKvPositions: asked!.kv[0].k.dims[1],
      kvLayers: asked!.kv.length,
    };
    const thetaKvMiB = engine.thetaKvBytes() / 2 ** 20;

    // One more injection with θ's K/V warm: the engine updates it (K new rows projected per layer;
    // the engine times that part), and the next question does not recompute it.
    question = asked = undefined; // the old question would keep the old θ K/V alive beside the new
    const tw = performance.now();
    const updateMs0 = engine.thetaKvUpdateMs;
    await engine.inject(memory, tok(n));
    const injectWarmMs = performance.now() - tw;
    const thetaKvUpdateMs = engine.thetaKvUpdateMs - updateMs0;
    commit();
    const tq = performance.now();
    question = await engine.prefill(memory, q);
    const prefillAfterInjectionMs = performance.now() - tq;
    question = undefined;
    phasePeakMiB.update = peakMiB();

    const rate = matmulGflops * 1e9;
    const thetaMiB = (c.numLayers * c.stmSize * rowBytes(stateFormat, c.hiddenSize)) / 2 ** 20;
    // Quantized: the base linears and lm_head come from the quantized file (which also holds the
    // retriever projections decode does not read: under 2% of it at these shapes); LoRA and norms stay f32.
    const decodeBytes = engine.quant ? decodeWeightBytes(c) - linearBaseBytesF32(c) + engine.quant.bytes : decodeWeightBytes(c);
    return {
      executor: executor.description,
      matmulGflops,
      injectTokensPerS: (injections * n) / injSec,
      injectGflopsPerChunk: injFlops / 1e9,
      injectFractionOfMatmul: (injFlops * injections) / injSec / rate,
      prefillMs,
      prefillGflops: prefillFlops / 1e9,
      prefillFractionOfMatmul: prefillFlops / (prefillMs / 1000) / rate,
      prefillCachedMs,
      prefillCachedGflops: prefillCachedFlops / 1e9,
      thetaKvMiB,
      injectWarmMs,
      thetaKvUpdateMs,
      prefillAfterInjectionMs,
      decodeTokensPerS: steps / decSec,
      decodeGflopsPerToken: decFlops / 1e9,
      decodeFractionOfMatmul: (decFlops * steps) / decSec / rate,
      decodeWeightMiB: decodeBytes / 2 ** 20,
      decodeImpliedGBps: (decodeBytes * steps) / decSec / 1e9,
      sessionSetupMs,
      peakRssMiB: peakMiB(),
      phasePeakMiB,
      ltmRowsPerLayer: memory.counts().ltm,
      hiddenSize: c.hiddenSize,
      precision: engine.precision,
      stateFormat,
      thetaMiB,
      memory: where,
      thetaInRamMiB: stored ? stored.thetaPendingBytes() / 2 ** 20 : thetaMiB,
      commitMs: commitTimes.length ? median(commitTimes) : null,
      kvFormat: engine.kvFormat,
      ...questionKv,
      quantizedWeightMiB: engine.quant ? engine.quant.bytes / 2 ** 20 : null,
      loadMs,
      quantizedThisRun: engine.quant?.built ?? false,
    };
  } finally {
    stored?.close();
    await engine.close();
    if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
  }
}
