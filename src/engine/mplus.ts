/**
 * The M+ passes on an Executor (MPLUS-SPEC "Injection" and "Generation").
 *
 * Shapes (d hidden, K tokens per injection, N = |θ|, R retrieved, b = 1 with bos_embedding):
 *   inject(x: n tokens):  per layer S = [bos_l ; θ_l tail K ; h] (T = b+K+n), positional
 *     embedding added to S's last K rows, p = min(b+K, T−K); y = layer(S[0..p) | S[p..T));
 *     delta_l = last K rows of y; next h = last n rows of y. Then drop → cache, append delta.
 *   ask(q: m tokens):  per layer retrieve R rows of Θ (+cache) with this layer's input h,
 *     S = [bos_l ; retrieved ; θ_l ; h], p = b+R+N; k/v of all p+m rows become the KV cache.
 *   decode: ordinary Llama step at position p+m+t against that cache, adapter decoder_adapter.
 * The engine owns no memory state and no files: every pass is handed the Memory (memory/memory.ts)
 * it reads and updates, so the same engine runs against an in-RAM state or the on-disk store.
 */
import * as crypto from 'crypto';
import * as os from 'os';
import { Checkpoint } from '../model/checkpoint';
import { MPlusConfig, hasSelector } from '../model/config';
import { dropPreferring, randomDrop } from '../memory/drop';
import { Rng } from '../util/rng';
import { orderByAge, repeatFill, topR, usesScores } from '../memory/retrieval';
import type { Memory } from '../memory/memory';
import type { RowFormat } from '../memory/rows';
import { LtmPolicyParams, MemoryDims, MemoryState } from '../memory/state';
import { AnyTensor, Executor, GraphSession, HostTensor, OrtExecutor, Device, f32 } from './executor';
import { buildLmHeadGraph, buildRetrieverGraph, buildScoresGraph } from './graphs/heads';
import { KvFormat, buildLayerGraph } from './graphs/layer';
import type { WeightSource } from './graphs/common';
import { BLOCK_SIZES, PRECISIONS, Precision, defaultBlock, isPrecision } from './quant/precision';
import { loadQuantizedWeightsOffThread } from './quant/quantizeOffThread';
import { QuantLog, QuantizedWeights, linearWeightNames } from './quant/weightCache';
import { concatTables, ropeInvFreq, ropeTables } from './rope';
import { kvBytes, kvFormatOf, stateFormatOf } from './stateFormat';
import { SamplingOptions, sampleToken } from './sampling';

export interface EngineOptions {
  executor?: Executor;
  device?: Device;
  threads?: number;
  /** Seed of the random drop and of sampling; default: random. */
  seed?: number;
  /** Round RoPE inv_freq to bf16 (⚑ official bf16 runs); default: config torch_dtype is bfloat16. */
  bf16Rope?: boolean;
  /** Scratch bound of one prefill block (default SCRATCH_BYTES); tests make it small. */
  scratchBytes?: number;
  /** Precision of the linear layers (default f32; see quant/precision.ts). */
  precision?: Precision;
  /** Weights per quantization scale (default: defaultBlock of the precision). */
  quantBlock?: number;
  /** Folder of the quantized-weights cache (default: defaultQuantCacheRoot()). */
  quantCacheDir?: string;
  /** Where quantization progress and per-tensor fallbacks are reported (default: stderr). */
  log?: QuantLog;
  /** Stops a quantization in progress (load then rejects with QuantizationCancelled). */
  signal?: AbortSignal;
  /** Width of a question's K/V cache (default: kvFormatOf the checkpoint, see stateFormat.ts). */
  kvFormat?: KvFormat;
}

/**
 * Bounded work for any question. A question's prefill runs in blocks of rows (each block attends
 * to the memory prefix, the earlier blocks' K/V and itself), and retrieval scores are reduced
 * block by block, so no step materialises a [heads × m × (p+m)] or [m × |Θ|] float32 array for a
 * long question m: peak memory grows linearly with m (the KV cache), not with m².
 * SCRATCH_BYTES bounds one block's attention scores (and their softmax), and one block's
 * retrieval logits.
 */
const SCRATCH_BYTES = 256 * 2 ** 20;
/**
 * Longest question, in tokens, whatever the model allows: beyond it the quadratic attention time
 * makes an answer minutes long on a CPU (MPLUS_MAX_QUESTION_TOKENS overrides). See
 * MPlusEngine.questionLimit for the other bounds.
 */
const QUESTION_TOKENS_CAP = Number(process.env.MPLUS_MAX_QUESTION_TOKENS) || 16384;
/** Share of the machine's memory a question's KV cache and activations may take. */
const QUESTION_MEMORY_SHARE = 0.25;

export interface QuestionLimit {
  /** Longest question in tokens (chat template included). */
  tokens: number;
  /** What sets it, for the error message. */
  why: string;
}

export interface InjectOptions {
  /** Explicit drop plan: per layer K ascending θ indices. Default: random. */
  drop?: number[][];
  /** Provenance id recorded for the new tokens. */
  source?: number;
}

export interface InjectResult {
  /** Per layer, the K new memory tokens [K·d]. */
  delta: Float32Array[];
  drop: number[][];
}

/** Keys and values of some positions of one layer, [kvH, positions, hd] each. */
export interface KvPair {
  k: AnyTensor;
  v: AnyTensor;
}

/**
 * θ's keys before RoPE and its values, one layer [kvH, N, hd] each, and the position of θ's first
 * row in a question (after bos and the retrieved rows): the layer graph rotates the keys there.
 */
export interface ThetaKv extends KvPair {
  at: number;
}

/** A question after prefill: what it retrieved, its KV cache, and the next position. */
export interface Question {
  /** Per layer, the R candidate indices (Θ first, then cache) in prefix order. */
  retrieved: number[][];
  /** Per layer, the retrieval scores of the selected candidates (null where repeat-filled). */
  retrievedScores: Array<Float32Array | null>;
  /** Logits of the last prefill position. */
  logits: Float32Array;
  /**
   * Per layer, keys/values of the question's own positions so far [kvH, positions, hd] (bos, the
   * retrieved rows, the question, the answer), in the engine's kvFormat.
   */
  kv: KvPair[];
  /** Per layer, θ's keys/values this question attends to (the engine's θ K/V cache when it was asked). */
  mem: ThetaKv[];
  position: number;
  /**
   * Per layer, the attention mass the question's rows put on each memory token during prefill,
   * normalised per layer by (heads × question rows): `retrieved` [R] aligned with `retrieved`
   * indices, `stm` [N] aligned with θ rows.
   */
  memoryAttention: Array<{ retrieved: Float32Array; stm: Float32Array }>;
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Token ids that end the answer (default: the config's eos ids). */
  stop?: number[];
  seed?: number;
}

export interface GeneratedStep {
  token: number;
  /** Logits the token was chosen from. */
  logits: Float32Array;
}

function memoryDims(cfg: MPlusConfig): MemoryDims {
  return {
    layers: cfg.numLayers, hidden: cfg.hiddenSize, keyDim: cfg.selectorHiddenDim,
    tokensPerInjection: cfg.numTokens, stmSize: cfg.stmSize, retrieveSize: cfg.retrieveSize,
  };
}

function memoryPolicy(cfg: MPlusConfig): LtmPolicyParams {
  return { updateLtmFrequency: cfg.updateLtmFrequency, decayFrequency: cfg.decayFrequency, initialRf: cfg.initialRfWhenMovingStmToLtm };
}

const ADAPTER_INJECT: HostTensor = { data: new Float32Array([1, 0]), dims: [2] };
const ADAPTER_GENERATE: HostTensor = { data: new Float32Array([0, 1]), dims: [2] };

export class MPlusEngine {
  readonly config: MPlusConfig;
  private readonly layerSessions: Array<Promise<GraphSession> | undefined>;
  private readonly retrieverSessions: Array<Promise<GraphSession> | undefined>;
  private scoresSession?: Promise<GraphSession>;
  private headSession?: Promise<GraphSession>;
  private readonly invFreq: Float32Array;
  private readonly bos: Float32Array | null;
  private readonly posEmb: Float32Array;
  private readonly rng: Rng;
  private readonly scratchBytes: number;
  /** Quantized linear weights; undefined at f32 (graphs read the checkpoint directly). */
  readonly quant?: QuantizedWeights;
  readonly precision: Precision;
  /** Width a question's K/V cache is held in (layer graphs take and return it so). */
  readonly kvFormat: KvFormat;
  /** A zero-position K/V in kvFormat: what a layer graph gets for an absent past or memory. */
  private readonly emptyKv: AnyTensor;
  /**
   * θ's K/V per layer for questions (keys before RoPE), with the θ version it was computed for.
   * Kept across injections: an injection moves the rows it keeps and projects only its K new ones.
   */
  private readonly thetaKvCache: Array<{ version: number; kv: KvPair } | undefined> = [];
  /** Rotary tables of θ's positions in a question, [N, hd] each (the same for every layer and question). */
  private memRope?: { at: number; count: number; cos: Float32Array; sin: Float32Array };
  /** How many layer θ K/V computations over all of θ this engine made (tests check the cache is reused). */
  thetaKvComputed = 0;
  /** How many layer θ K/V updates after an injection (K new rows projected) this engine made, and their time. */
  thetaKvUpdated = 0;
  thetaKvUpdateMs = 0;
  /** θ rows projected by updates since a question last read the cache (see inject). */
  private rowsUpdatedUnread = 0;

  private constructor(readonly checkpoint: Checkpoint, readonly executor: Executor, opts: EngineOptions, quant: QuantizedWeights | undefined) {
    const cfg = checkpoint.config;
    this.config = cfg;
    for (let l = 0; l < cfg.numLayers; l++) {
      if (!hasSelector(cfg, l)) {
        throw new Error(`${checkpoint.dir}: layer ${l} has no retriever (selector_layers); M+ checkpoints with partial retrievers are not supported yet`);
      }
    }
    this.layerSessions = new Array(cfg.numLayers);
    this.retrieverSessions = new Array(cfg.numLayers);
    this.invFreq = ropeInvFreq(cfg, opts.bf16Rope ?? cfg.torchDtype === 'bfloat16');
    const w = checkpoint.weights;
    this.bos = w.bosEmbedding ? checkpoint.files.readF32(w.bosEmbedding) : null;
    this.posEmb = checkpoint.files.readF32(w.newMemoryPosEmb);
    this.rng = new Rng(opts.seed ?? crypto.randomInt(2 ** 31));
    this.scratchBytes = opts.scratchBytes ?? SCRATCH_BYTES;
    this.precision = opts.precision ?? 'f32';
    this.kvFormat = opts.kvFormat ?? kvFormatOf(cfg);
    this.emptyKv = this.kvTensor(0);
    this.quant = quant;
  }

  /**
   * Opens the checkpoint in `dir` for running. At a quantized precision the weights cache is
   * checked or built in a worker thread first (quantizeOffThread.ts): the caller's event loop
   * stays free meanwhile; `opts.log` hears its progress.
   */
  static async load(dir: string, opts: EngineOptions = {}): Promise<MPlusEngine> {
    const precision = opts.precision ?? 'f32';
    if (!isPrecision(precision)) throw new Error(`precision must be one of ${PRECISIONS.join(', ')}, got ${String(precision)}`);
    const block = opts.quantBlock ?? defaultBlock(precision);
    if (!BLOCK_SIZES.includes(block)) throw new Error(`quantization block must be one of ${BLOCK_SIZES.join(', ')}, got ${block}`);
    const ckpt = Checkpoint.open(dir);
    try {
      let quant: QuantizedWeights | undefined;
      // bf16 of a checkpoint whose linear weights are all bf16 already is the f32 path's graphs.
      const alreadyBf16 = precision === 'bf16' && linearWeightNames(ckpt).every((n) => ckpt.files.info(n).dtype === 'BF16');
      if (precision !== 'f32' && !alreadyBf16) {
        const log: QuantLog = opts.log ?? ((level, msg) => process.stderr.write(`mplus engine ${level}: ${msg}\n`));
        let said = 0;
        quant = await loadQuantizedWeightsOffThread(ckpt.dir, {
          precision, block, root: opts.quantCacheDir, log,
          // a line every few seconds at full size, not one per tensor
          progress: (done, total) => {
            if (done < total && Date.now() - said < 2000) return;
            said = Date.now();
            log('info', `quantizing to ${precision}: ${done} of ${total} weights`);
          },
        }, opts.signal);
      }
      const executor = opts.executor ?? new OrtExecutor({ device: opts.device, threads: opts.threads });
      return new MPlusEngine(ckpt, executor, opts, quant);
    } catch (e) {
      ckpt.close();
      throw e;
    }
  }

  /**
   * θ and Θ as this engine's checkpoint ships them (a fresh copy each call), θ held in `format`
   * (bf16 θ is converted one layer at a time, so the float32 whole is never held).
   */
  initialMemory(format: RowFormat = 'f32'): MemoryState {
    return MPlusEngine.initialMemory(this.checkpoint, format);
  }

  /**
   * The precision memory rows are held in for this model: its checkpoint's (bf16 for a bf16
   * checkpoint such as mplus-8b, whose official runs compute θ in bf16; else f32). The sidecar's
   * store and the benchmarks use it; golden cases and traces pass 'f32' explicitly.
   */
  stateFormat(): RowFormat {
    return stateFormatOf(this.config);
  }

  /** The shape of this model's memory. */
  memoryDims(): MemoryDims {
    return memoryDims(this.config);
  }

  /** The model's Θ update and expiry parameters (the spec's default capacity policy). */
  memoryPolicy(): LtmPolicyParams {
    return memoryPolicy(this.config);
  }

  /** θ and Θ as the checkpoint ships them. */
  static initialMemory(ckpt: Checkpoint, format: RowFormat = 'f32'): MemoryState {
    const w = ckpt.weights;
    const cfg = ckpt.config;
    return MemoryState.initial(
      memoryDims(cfg),
      memoryPolicy(cfg),
      // one layer at a time: a full-size θ is never held twice while it is split into layers
      (l) => ckpt.files.readSliceF32(w.memory, l * cfg.stmSize * cfg.hiddenSize, cfg.stmSize * cfg.hiddenSize),
      w.ltm?.map((t) => ({
        values: ckpt.files.readF32(t.values), keys: ckpt.files.readF32(t.keys),
        rf: ckpt.files.readF32(t.rf), ages: ckpt.files.readF32(t.ages),
      })) ?? null,
      format,
    );
  }

  async close(): Promise<void> {
    const all = [...this.layerSessions, ...this.retrieverSessions, this.scoresSession, this.headSession];
    for (const s of all) if (s) await (await s).release();
    this.checkpoint.close();
  }

  // ---- sessions (built lazily, once) ----

  private get src(): WeightSource {
    const files = this.checkpoint.files;
    if (!this.quant) return { dir: this.checkpoint.dir, info: (n: string) => files.info(n) };
    return { dir: this.quant.dir, info: (n: string) => files.info(n), quant: this.quant, readF32: (n: string) => files.readF32(n) };
  }

  private layer(l: number): Promise<GraphSession> {
    return (this.layerSessions[l] ??= this.executor.createSession(
      `layer ${l}`, buildLayerGraph(this.config, this.src, this.checkpoint.weights.layers[l], l, this.kvFormat), this.src.dir));
  }

  private retriever(l: number): Promise<GraphSession> {
    return (this.retrieverSessions[l] ??= this.executor.createSession(
      `retriever ${l}`, buildRetrieverGraph(this.config, this.src, this.checkpoint.weights.layers[l], l), this.src.dir));
  }

  private scores(): Promise<GraphSession> {
    return (this.scoresSession ??= this.executor.createSession('scores', buildScoresGraph(this.config.selectorHiddenDim), this.checkpoint.dir));
  }

  private head(): Promise<GraphSession> {
    return (this.headSession ??= this.executor.createSession(
      'lm head', buildLmHeadGraph(this.config, this.src, this.checkpoint.weights), this.src.dir));
  }

  /** Builds every session now (otherwise they are built on first use). */
  async warmup(): Promise<void> {
    const jobs: Promise<GraphSession>[] = [this.scores(), this.head()];
    for (let l = 0; l < this.config.numLayers; l++) jobs.push(this.layer(l), this.retriever(l));
    await Promise.all(jobs);
  }

  // ---- pieces ----

  embed(tokens: number[]): Float32Array {
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize) {
        throw new RangeError(`token id ${t} is outside the vocabulary 0..${this.config.vocabSize - 1} of ${this.checkpoint.dir}`);
      }
    }
    return this.checkpoint.files.readRowsF32(this.checkpoint.weights.embed, tokens);
  }

  private bosRow(l: number): Float32Array {
    const d = this.config.hiddenSize;
    return this.bos ? this.bos.subarray(l * d, (l + 1) * d) : new Float32Array(0);
  }

  /**
   * Runs layer l over S = prefix ‖ x, attending also to `mem` (θ's cached K/V, not returned) and
   * `past` (this sequence's earlier K/V). Positions: the prefix rows follow the past (P..), the x
   * rows follow the prefix and the mem rows (P + p + M..) — θ sits between the retrieved rows and the
   * question, and its cached keys carry their own positions. Returns y for the x rows and past ‖ the
   * new rows' K/V.
   */
  private async runLayer(
    l: number, prefix: Float32Array, x: Float32Array, adapter: HostTensor,
    o: { past?: KvPair; mem?: ThetaKv; withMass?: boolean; prefixAt?: number; unrotated?: boolean } = {},
  ): Promise<{ y: Float32Array; k: AnyTensor; v: AnyTensor; mass?: Float32Array }> {
    const { hiddenSize: d, numKvHeads: KV, headDim: hd, numHeads: H } = this.config;
    const p = prefix.length / d;
    const n = x.length / d;
    const P = o.past ? o.past.k.dims[1] : 0;
    const M = o.mem ? o.mem.k.dims[1] : 0;
    const prefixAt = o.prefixAt ?? P;
    const xAt = prefixAt + p + M;
    // unrotated: cos 1, sin 0 — RoPE is then exactly the identity (k·1 + rot(k)·0 = k)
    const tk = o.unrotated ? identityTables(p + n, hd)
      : p ? concatTables(ropeTables(this.invFreq, prefixAt, p), ropeTables(this.invFreq, xAt, n)) : ropeTables(this.invFreq, xAt, n);
    const tq = o.unrotated ? identityTables(n, hd) : ropeTables(this.invFreq, xAt, n);
    const tm = o.mem ? this.memTables(o.mem.at, M) : { cos: new Float32Array(0), sin: new Float32Array(0) };
    const Tk = M + P + p + n;
    const G = H / KV;
    const mask = new Float32Array(G * n * Tk);
    for (let gi = 0; gi < G; gi++) {
      for (let i = 0; i < n; i++) {
        const row = (gi * n + i) * Tk;
        const sees = Tk - n + i; // bottom-right causal alignment
        for (let j = sees + 1; j < Tk; j++) mask[row + j] = -Infinity;
      }
    }
    const empty = this.emptyKv;
    const r = await (await this.layer(l)).run({
      prefix: { data: prefix, dims: [p, d] },
      x: { data: x, dims: [n, d] },
      mem_k: o.mem?.k ?? empty,
      mem_v: o.mem?.v ?? empty,
      cos_m: { data: tm.cos, dims: [M, hd] },
      sin_m: { data: tm.sin, dims: [M, hd] },
      past_k: o.past?.k ?? empty,
      past_v: o.past?.v ?? empty,
      cos_k: { data: tk.cos, dims: [p + n, hd] },
      sin_k: { data: tk.sin, dims: [p + n, hd] },
      cos_q: { data: tq.cos, dims: [n, hd] },
      sin_q: { data: tq.sin, dims: [n, hd] },
      mask: { data: mask, dims: [G * n, Tk] },
      adapter,
    }, o.withMass ? ['y', 'k_all', 'v_all', 'attn_mass'] : ['y', 'k_all', 'v_all']);
    return { y: f32(r.y), k: r.k_all, v: r.v_all, mass: r.attn_mass && f32(r.attn_mass) };
  }

  /** A zeroed K or V of `positions` positions [kv heads, positions, head dim], in kvFormat. */
  private kvTensor(positions: number): AnyTensor {
    const dims = [this.config.numKvHeads, positions, this.config.headDim];
    const n = dims[0] * positions * dims[2];
    return this.kvFormat === 'f16' ? { data: new Uint16Array(n), dims, half: true } : { data: new Float32Array(n), dims };
  }

  /**
   * runLayer over x in blocks of rows (see SCRATCH_BYTES): block i sees mem, the prefix, the K/V of
   * blocks < i (as past) and itself, at the same absolute positions as in one pass, so the result
   * equals one pass up to float rounding. `mass` sums the blocks' attention mass per key
   * (mem ‖ prefix ‖ x).
   */
  private async runLayerBlocked(l: number, prefix: Float32Array, x: Float32Array, adapter: HostTensor, withMass: boolean, mem?: ThetaKv)
    : Promise<{ y: Float32Array; k: AnyTensor; v: AnyTensor; mass?: Float32Array }> {
    const { hiddenSize: d, numHeads: H } = this.config;
    const p = prefix.length / d;
    const n = x.length / d;
    const M = mem ? mem.k.dims[1] : 0;
    // scores + softmax of one block: ~3 × H × rows × Tk float32
    const rows = Math.max(16, Math.min(512, Math.floor(this.scratchBytes / (3 * 4 * H * (M + p + n)))));
    if (n <= rows) return this.runLayer(l, prefix, x, adapter, { mem, withMass });
    const y = new Float32Array(x.length);
    const mass = withMass ? new Float32Array(M + p + n) : undefined;
    let past: KvPair | undefined;
    for (let s = 0; s < n; s += rows) {
      const e = Math.min(n, s + rows);
      const out = await this.runLayer(l, s === 0 ? prefix : new Float32Array(0), x.subarray(s * d, e * d), adapter, { past, mem, withMass });
      y.set(out.y, s * d);
      past = { k: out.k, v: out.v };
      if (mass) for (let j = 0; j < out.mass!.length; j++) mass[j] += out.mass![j];
    }
    return { y, k: past!.k, v: past!.v, mass };
  }

  /**
   * θ_l's keys (before RoPE) and values for a question whose θ rows start at position `at` (after
   * bos and the retrieved rows; the layer graph rotates the keys there), with the reading adapter.
   * Computed once per θ version and kept: every later question reuses it, and an injection updates
   * it (updateThetaKv) instead of dropping it. θ is 80% of a question's memory prefix at mplus-8b
   * shape (10,240 of 12,801 rows). One cache per engine (the sidecar asks one memory); held in the
   * engine's kvFormat.
   */
  private async thetaKv(memory: Memory, l: number, at: number): Promise<ThetaKv> {
    const version = memory.stmVersion(l);
    const hit = this.thetaKvCache[l];
    if (hit && hit.version === version) return { ...hit.kv, at };
    this.thetaKvCache[l] = undefined; // the old one goes before the new one is built
    const N = memory.dims.stmSize;
    const kv = { k: this.kvTensor(N), v: this.kvTensor(N) };
    await this.projectTheta(memory, l, 0, N, kv);
    this.thetaKvCache[l] = { version, kv };
    this.thetaKvComputed++;
    return { ...kv, at };
  }

  /**
   * K/V (keys unrotated) of θ_l's rows s0..e0−1 into those positions of `kv`. In blocks of θ rows,
   * read from memory block by block (θ may be on disk): a row's K/V is its own projection, so
   * blocks equal one pass, and the transients are one block's (~16 float32 rows of activations per
   * θ row) instead of θ_l's — 160 MiB of float32 rows alone at mplus-8b shape.
   */
  private async projectTheta(memory: Memory, l: number, s0: number, e0: number, kv: KvPair): Promise<void> {
    const d = this.config.hiddenSize;
    const B = Math.max(16, Math.min(e0 - s0, Math.floor(this.scratchBytes / (16 * 4 * d))));
    for (let s = s0; s < e0; s += B) {
      const e = Math.min(e0, s + B);
      const rows = memory.stmRows(l, Array.from({ length: e - s }, (_, i) => s + i));
      // The layer graph needs one output row: the block's last row again, after it; its K/V is not kept.
      const out = await this.runLayer(l, rows, rows.subarray((e - s - 1) * d), ADAPTER_GENERATE, { unrotated: true });
      copyPositions(out.k, 0, kv.k, s, e - s);
      copyPositions(out.v, 0, kv.v, s, e - s);
    }
  }

  /**
   * θ_l's K/V after an injection, from the K/V before it: θ became [its rows not in `dropped`,
   * ascending; K new rows] (Memory.applyInjection), and a key before RoPE depends only on its row,
   * so the kept rows' K/V move down unchanged and only the K new rows are projected — K rows
   * instead of N (256 of 10,240 at mplus-8b shape). A new tensor: a question asked before the
   * injection keeps reading the old one.
   */
  private async updateThetaKv(memory: Memory, l: number, old: KvPair, dropped: readonly number[]): Promise<KvPair> {
    const { stmSize: N, numTokens: K } = this.config;
    const t0 = performance.now();
    const kv = { k: this.kvTensor(N), v: this.kvTensor(N) };
    const isDropped = new Uint8Array(N);
    for (const i of dropped) isDropped[i] = 1;
    let j = 0;
    for (let i = 0; i < N;) {
      if (isDropped[i]) { i++; continue; }
      let e = i;
      while (e < N && !isDropped[e]) e++;
      copyPositions(old.k, i, kv.k, j, e - i);
      copyPositions(old.v, i, kv.v, j, e - i);
      j += e - i;
      i = e;
    }
    if (j !== N - K) throw new Error(`θ K/V update: ${j} rows kept of ${N}, expected ${N - K} (a drop of ${dropped.length} distinct rows)`);
    await this.projectTheta(memory, l, N - K, N, kv);
    this.thetaKvUpdated++;
    this.thetaKvUpdateMs += performance.now() - t0;
    return kv;
  }

  /** Rotary tables of `count` θ rows from position `at`, built once. */
  private memTables(at: number, count: number): { cos: Float32Array; sin: Float32Array } {
    const m = this.memRope;
    if (m && m.at === at && m.count === count) return m;
    const t = ropeTables(this.invFreq, at, count);
    this.memRope = { at, count, ...t };
    return t;
  }

  /** Drops the θ K/V cache (the next question recomputes it): to free its memory, or to time it. */
  forgetThetaKv(): void {
    this.thetaKvCache.length = 0;
  }

  /** Bytes the θ K/V cache holds now, every layer. */
  thetaKvBytes(): number {
    return this.thetaKvCache.reduce((a, c) => a + (c ? c.kv.k.data.byteLength + c.kv.v.data.byteLength : 0), 0);
  }

  /**
   * The longest question this engine takes, in tokens, leaving room for `answerTokens`: the
   * smallest of (1) the model's positions less the memory prefix (bos + R + N) and the answer,
   * (2) what QUESTION_MEMORY_SHARE of this machine's memory holds (the KV cache of every layer
   * and a few rows of activations per token), (3) QUESTION_TOKENS_CAP.
   */
  questionLimit(answerTokens: number): QuestionLimit {
    const { maxPositionEmbeddings, numLayers: L, numKvHeads: KV, headDim: hd, hiddenSize: d, retrieveSize: R, stmSize: N } = this.config;
    const prefix = (this.bos ? 1 : 0) + R + N;
    const byPositions = maxPositionEmbeddings - prefix - answerTokens;
    const perToken = kvBytes(this.kvFormat) * L * 2 * KV * hd + 4 * 8 * d;
    const byMemory = Math.floor((os.totalmem() * QUESTION_MEMORY_SHARE) / perToken);
    const options: QuestionLimit[] = [
      { tokens: byPositions, why: `the model's ${maxPositionEmbeddings} positions less ${prefix} memory tokens and ${answerTokens} answer tokens` },
      { tokens: byMemory, why: `${Math.round(QUESTION_MEMORY_SHARE * 100)}% of this machine's ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory at ${(perToken / 1024).toFixed(0)} KiB per question token` },
      { tokens: QUESTION_TOKENS_CAP, why: `the question length cap (MPLUS_MAX_QUESTION_TOKENS, default 16384)` },
    ];
    return options.reduce((a, b) => (b.tokens < a.tokens ? b : a));
  }

  /** query_proj / key_proj of input_layernorm(rows) for layer l. */
  async project(l: number, rows: Float32Array): Promise<{ q: Float32Array; k: Float32Array }> {
    const d = this.config.hiddenSize;
    const r = await (await this.retriever(l)).run({ x: { data: rows, dims: [rows.length / d, d] } });
    return { q: f32(r.q), k: f32(r.k) };
  }

  private async logits(lastRow: Float32Array): Promise<Float32Array> {
    const r = await (await this.head()).run({ x: { data: lastRow, dims: [1, this.config.hiddenSize] } });
    return f32(r.logits);
  }

  // ---- injection ----

  /** Writes one chunk into memory: the forward pass with adapter `default`, then the update. */
  async inject(memory: Memory, tokens: number[], opts: InjectOptions = {}): Promise<InjectResult> {
    const cfg = this.config;
    const { hiddenSize: d, numTokens: K, numLayers: L, stmSize: N } = cfg;
    if (tokens.length === 0) throw new RangeError('cannot inject an empty chunk');
    // Stale θ tokens (their file changed) are dropped first; otherwise the spec's random drop.
    const drop = opts.drop ?? Array.from({ length: L }, (_, l) => {
      const stale = memory.preferredDrops(l);
      return stale.length ? dropPreferring(this.rng, N, K, stale) : randomDrop(this.rng, N, K);
    });
    if (drop.length !== L) throw new Error(`drop plan has ${drop.length} layers, the model has ${L}`);
    const n = tokens.length;
    let h = this.embed(tokens);
    const b = this.bos ? 1 : 0;
    const T = b + K + n;
    const p = Math.min(b + K, T - K);
    const delta: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      const S = new Float32Array(T * d);
      S.set(this.bosRow(l), 0);
      S.set(memory.stmTail(l), b * d);
      S.set(h, (b + K) * d);
      for (let r = T - K; r < T; r++) for (let j = 0; j < d; j++) S[r * d + j] += this.posEmb[j];
      const { y } = await this.runLayer(l, S.subarray(0, p * d), S.subarray(p * d), ADAPTER_INJECT);
      const rows = T - p;
      delta.push(y.slice((rows - K) * d));
      h = y.slice((rows - n) * d);
    }
    // θ only keeps nothing it drops: no keys to compute.
    const droppedKeys: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      droppedKeys.push(memory.thetaOnly ? new Float32Array(0) : (await this.project(l, memory.stmRows(l, drop[l]))).k);
    }
    // θ's K/V cache, where a question built one for this θ, follows the injection (updateThetaKv);
    // a layer whose cache is stale, or absent, is computed whole by the next question. Updates no
    // question has read yet stop once they have projected N rows, what one recompute costs: a long
    // ingestion then pays at most that once more (rather than K rows per injection throughout)
    // and does not hold the cache (1.3 GB at mplus-8b shape) while it runs.
    this.rowsUpdatedUnread += K;
    const keep = this.rowsUpdatedUnread <= N;
    const warm = this.thetaKvCache.map((c, l) => (keep && c && c.version === memory.stmVersion(l) ? c.kv : undefined));
    this.forgetThetaKv();
    memory.applyInjection({ drop, delta, droppedKeys, source: opts.source ?? -1, rereadRows: Math.max(0, K - n) });
    for (let l = 0; l < L; l++) {
      const old = warm[l];
      if (!old) continue;
      warm[l] = undefined; // one layer's old and new K/V alive at a time
      this.thetaKvCache[l] = { version: memory.stmVersion(l), kv: await this.updateThetaKv(memory, l, old, drop[l]) };
    }
    return { delta, drop };
  }

  // ---- generation ----

  /** Retrieval for layer l with its input h [m, d]: candidate indices in prefix order. */
  private async retrieve(memory: Memory, l: number, h: Float32Array): Promise<{ idx: number[]; scores: Float32Array | null; rows: Float32Array }> {
    const R = this.config.retrieveSize;
    const cands = memory.candidates(l);
    const M = cands.ltmCount;
    let selected: number[];
    let selScores: Float32Array | null = null;
    if (!usesScores(M, R)) {
      selected = repeatFill(M, R);
    } else {
      const { q } = await this.project(l, h);
      const s = this.config.selectorHiddenDim;
      const keys = cands.keys();
      // mean over question rows of sigmoid(q·k): reduced block by block (SCRATCH_BYTES), as
      // a length-weighted mean of the blocks' means.
      const m = q.length / s;
      const C = keys.length / s;
      const rows = Math.max(1, Math.floor(this.scratchBytes / (2 * 4 * C)));
      let scores: Float32Array;
      if (m <= rows) {
        scores = f32((await (await this.scores()).run({ q: { data: q, dims: [m, s] }, keys: { data: keys, dims: [C, s] } })).scores);
      } else {
        scores = new Float32Array(C);
        for (let a = 0; a < m; a += rows) {
          const b = Math.min(m, a + rows);
          const part = f32((await (await this.scores()).run({ q: { data: q.subarray(a * s, b * s), dims: [b - a, s] }, keys: { data: keys, dims: [C, s] } })).scores);
          for (let c = 0; c < C; c++) scores[c] += (part[c] * (b - a)) / m;
        }
      }
      selected = topR(scores, R);
      selScores = Float32Array.from(selected, (c) => scores[c]);
    }
    const idx = orderByAge(selected, cands.age);
    if (selScores) {
      const byCand = new Map(selected.map((c, i) => [c, selScores![i]]));
      selScores = Float32Array.from(idx, (c) => byCand.get(c)!);
    }
    return { idx, scores: selScores, rows: cands.gather(idx) };
  }

  /** Prefill of a question with adapter `decoder_adapter`: retrieval per layer, KV cache, logits. */
  async prefill(memory: Memory, tokens: number[]): Promise<Question> {
    const { hiddenSize: d, numLayers: L } = this.config;
    if (tokens.length === 0) throw new RangeError('cannot ask an empty question');
    this.rowsUpdatedUnread = 0; // this question reads the cache the updates kept
    const m = tokens.length;
    let h = this.embed(tokens);
    const retrieved: number[][] = [];
    const retrievedScores: Array<Float32Array | null> = [];
    const kv: Question['kv'] = [];
    const mem: Question['mem'] = [];
    const memoryAttention: Question['memoryAttention'] = [];
    const b = this.bos ? 1 : 0;
    let position = 0;
    for (let l = 0; l < L; l++) {
      const r = await this.retrieve(memory, l, h);
      retrieved.push(r.idx);
      retrievedScores.push(r.scores);
      const bos = this.bosRow(l);
      const R = r.idx.length;
      // [bos ; retrieved] are computed per question; θ's K/V come from the cache (positions b+R..)
      const theta = await this.thetaKv(memory, l, b + R);
      const N = theta.k.dims[1];
      const prefix = new Float32Array(bos.length + r.rows.length);
      prefix.set(bos, 0);
      prefix.set(r.rows, bos.length);
      const out = await this.runLayerBlocked(l, prefix, h, ADAPTER_GENERATE, true, theta);
      kv.push({ k: out.k, v: out.v });
      mem.push(theta);
      const norm = 1 / (this.config.numHeads * m);
      // attention mass over keys θ (N) ‖ bos (b) ‖ retrieved (R) ‖ question
      memoryAttention.push({
        retrieved: Float32Array.from(out.mass!.subarray(N + b, N + b + R), (x) => x * norm),
        stm: Float32Array.from(out.mass!.subarray(0, N), (x) => x * norm),
      });
      h = out.y;
      position = b + R + N + m;
    }
    const logits = await this.logits(h.subarray((m - 1) * d));
    return { retrieved, retrievedScores, logits, kv, mem, position, memoryAttention };
  }

  /** Feeds one token after a prefill; returns the next logits and extends the KV cache. */
  async decode(q: Question, token: number): Promise<Float32Array> {
    let h = this.embed([token]);
    const empty = new Float32Array(0);
    for (let l = 0; l < this.config.numLayers; l++) {
      const out = await this.runLayer(l, empty, h, ADAPTER_GENERATE, { past: q.kv[l], mem: q.mem[l] });
      q.kv[l] = { k: out.k, v: out.v };
      h = out.y;
    }
    q.position++;
    return this.logits(h);
  }

  /**
   * Answers: prefill, then up to maxTokens tokens (stopping after a stop token, which is yielded).
   * Logits of each step are the distribution the yielded token was drawn from.
   */
  async *generate(memory: Memory, tokens: number[], opts: GenerateOptions, prefilled?: Question): AsyncGenerator<GeneratedStep, Question> {
    const q = prefilled ?? (await this.prefill(memory, tokens));
    const stop = new Set(opts.stop ?? this.config.eosTokenIds);
    const rng = opts.seed === undefined ? this.rng : new Rng(opts.seed);
    let logits = q.logits;
    for (let i = 0; i < opts.maxTokens; i++) {
      const token = sampleToken(logits, opts, rng);
      yield { token, logits };
      if (stop.has(token) || i === opts.maxTokens - 1) break;
      logits = await this.decode(q, token);
    }
    return q;
  }
}

/** Positions from..from+n−1 of `src` [KV, T, hd] into positions at..at+n−1 of `dst` [KV, P, hd] (same element type). */
function copyPositions(src: AnyTensor, from: number, dst: AnyTensor, at: number, n: number): void {
  const [KV, T, hd] = src.dims;
  const P = dst.dims[1];
  if (src.data.constructor !== dst.data.constructor) throw new Error('copyPositions: K/V of different widths');
  for (let h = 0; h < KV; h++) (dst.data as Float32Array).set((src.data as Float32Array).subarray((h * T + from) * hd, (h * T + from + n) * hd), (h * P + at) * hd);
}

/** RoPE tables that leave a vector unchanged: cos 1, sin 0, [rows, hd]. */
function identityTables(rows: number, hd: number): { cos: Float32Array; sin: Float32Array } {
  return { cos: new Float32Array(rows * hd).fill(1), sin: new Float32Array(rows * hd) };
}
