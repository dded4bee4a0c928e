/**
 * Independent float64 reference implementation of M+ (test-only), written straight from
 * /work/shared/MPLUS-SPEC.md ("M+ as the official implementation executes it").
 *
 * Deliberately independent of src/engine and src/memory: it only uses the model layer
 * (src/model: config parsing, safetensors reading, tensor-name mapping) to *load* tensors; every
 * piece of arithmetic below is plain loops over Float64Array. Clarity over speed — it is meant
 * for tiny checkpoints (golden cases), not for mplus-8b.
 *
 * Comments of the form «spec: …» quote or paraphrase the spec line each step implements.
 *
 * Readings of the spec that the golden case `tiny-f32` confirmed (see also the final report):
 *  - `state` in expected.json is the memory after the last inject; generation does not touch the
 *    memory, so it is also the state at the end of the run.
 *  - update_step is one global counter (not per layer), incremented once per injection by K, and
 *    compared with update_ltm_frequency·K after the per-layer drop/append.
 *  - Merge expiry: "keep = {rf > 0.01}; if |keep| > R drop the rest (rf stays decremented);
 *    otherwise add decay back" — golden final Θ has 32 rows per layer with rf 1 (merge 3) and 2
 *    (merge 4), which is exactly what this reading gives.
 *  - Retrieval tie order (equal ages): the larger candidate index (Θ first, then cache) first,
 *    i.e. the top-R candidates put in ascending candidate-index order, stable-sorted ascending by
 *    age, reversed. (Option `tieOrder: 'score'` — the same stable sort over the top-k list in
 *    descending-score order — fails the golden: retrieved rows and logits differ.)
 *  - n < K (op with 5 tokens, K = 8): p = T−K, new_memory_positional_emb goes on the last K rows
 *    of S, i.e. also on the θ-tail rows, and delta includes rows that came from the θ tail; adding
 *    it to the last min(K, n) rows only fails the golden.
 *  - RoPE: llama3 inv_freq scaling is required (plain inv_freq fails); a float32 golden has no
 *    bf16 rounding of inv_freq (bf16Rope: true fails); float32 vs float64 inv_freq is immaterial.
 *  - NOT exercised by the golden: the repeat-fill retrieval path (its only question comes after
 *    four merges, when |Θ| = 32 ≥ R = 16 in every layer) and the bf16 RoPE quirk.
 */
import * as path from 'path';
import { Checkpoint } from '../../src/model/checkpoint';
import { MPlusConfig, hasSelector } from '../../src/model/config';
import { roundToBf16 } from '../../src/model/dtype';
import { Adapter, LinearWeights } from '../../src/model/tensorNames';

type Vec = Float64Array;

/** A dense row-major matrix [rows, cols] in float64 (a torch Linear weight is [out, in]). */
interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export interface RefOptions {
  /** spec "Precision": when the model runs in bf16, RoPE inv_freq is rounded to bf16 before use. */
  bf16Rope?: boolean;
  /**
   * How ties in age are broken when ordering the retrieved rows (spec ✎ + golden README):
   *  'index' (default): stable ascending sort by age of the candidates in ascending index order,
   *          reversed → equal ages: larger candidate index first;
   *  'score': the same stable sort applied to the top-k list in descending-score order.
   */
  tieOrder?: 'index' | 'score';
}

export interface InjectOp {
  op: 'inject';
  tokens: number[];
  drop: number[][];
}
export interface GenerateOp {
  op: 'generate';
  tokens: number[];
  steps: number;
}
export type Op = InjectOp | GenerateOp;

export interface LayerState {
  stm: number[][];
  stm_ages: number[];
  ltm: number[][];
  ltm_keys: number[][];
  ltm_ages: number[];
  ltm_rf: number[];
  cache: number[][];
  cache_keys: number[][];
  cache_ages: number[];
}
export interface StateJson {
  layers: LayerState[];
  update_step: number;
}
export interface InjectResult {
  delta: number[][][];
}
export interface GenerateResult {
  retrieved: number[][];
  logits: number[][];
  tokens: number[];
}
export type OpResult = InjectResult | GenerateResult;

/** Per-layer memory: θ (short-term), Θ (long-term), and the dropped cache not yet merged. */
interface LayerMemory {
  stm: Vec[];
  stmAges: number[];
  ltm: Vec[];
  ltmKeys: Vec[];
  ltmAges: number[];
  ltmRf: number[];
  cache: Vec[];
  cacheKeys: Vec[];
  cacheAges: number[];
}

/** Weights of one layer as float64 matrices; linear layers per adapter (effective W + (α/r)·B·A). */
interface RefLayer {
  q: Record<Adapter, Mat>;
  k: Record<Adapter, Mat>;
  v: Record<Adapter, Mat>;
  o: Record<Adapter, Mat>;
  gate: Record<Adapter, Mat>;
  up: Record<Adapter, Mat>;
  down: Record<Adapter, Mat>;
  inputNorm: Vec;
  postNorm: Vec;
  queryProj: Mat[] | null;
  keyProj: Mat[] | null;
}

/** Per-layer K/V of every position seen so far (index = absolute position), after RoPE for K. */
interface KvCache {
  k: Vec[]; // each [numKvHeads * headDim]
  v: Vec[];
}

// ---------------------------------------------------------------------------------------------
// Small float64 math helpers
// ---------------------------------------------------------------------------------------------

function toF64(a: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i];
  return out;
}

/** y = W x for W [out, in]. */
function matvec(w: Mat, x: Vec): Vec {
  if (x.length !== w.cols) throw new Error(`matvec: x has ${x.length}, W has ${w.cols} columns`);
  const y = new Float64Array(w.rows);
  for (let o = 0; o < w.rows; o++) {
    let s = 0;
    const base = o * w.cols;
    for (let i = 0; i < w.cols; i++) s += w.data[base + i] * x[i];
    y[o] = s;
  }
  return y;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function addInto(a: Vec, b: Vec): Vec {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

function rowsOf(flat: ArrayLike<number>, width: number): Vec[] {
  const n = flat.length / width;
  const out: Vec[] = [];
  for (let r = 0; r < n; r++) {
    const row = new Float64Array(width);
    for (let i = 0; i < width; i++) row[i] = flat[r * width + i];
    out.push(row);
  }
  return out;
}

const toList = (v: Vec): number[] => Array.from(v);

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

export class MPlusReference {
  readonly cfg: MPlusConfig;
  readonly opts: Required<RefOptions>;
  private readonly embed: Mat;
  private readonly lmHead: Mat;
  private readonly finalNorm: Vec;
  private readonly bos: Vec[] | null; // per layer [d]
  private readonly newMemPosEmb: Vec; // [d]
  private readonly layers: RefLayer[];
  /** RoPE inverse frequencies, [headDim/2]. */
  readonly invFreq: Float64Array;
  private readonly mem: LayerMemory[];
  private updateStep = 0;

  constructor(dir: string, opts: RefOptions = {}) {
    const ck = Checkpoint.open(path.resolve(dir));
    try {
      this.cfg = ck.config;
      this.opts = {
        // spec "Precision": the bf16 RoPE quirk applies when the model runs in bf16.
        bf16Rope: opts.bf16Rope ?? ck.config.torchDtype === 'bfloat16',
        tieOrder: opts.tieOrder ?? 'index',
      };
      const cfg = this.cfg;
      const d = cfg.hiddenSize;
      const files = ck.files;
      const w = ck.weights;
      const mat = (name: string): Mat => {
        const info = files.info(name);
        const cols = info.shape[info.shape.length - 1];
        const data = toF64(files.readF32(name));
        return { rows: data.length / cols, cols, data };
      };
      const vec = (name: string): Vec => toF64(files.readF32(name));

      // spec "Parameters / LoRA": effective weight W + (lora_alpha/r)·B·A; adapter `default` while
      // injecting, `decoder_adapter` while generating. Merged names: W alone.
      const scale = cfg.lora.loraAlpha / cfg.lora.r;
      const linear = (lw: LinearWeights): Record<Adapter, Mat> => {
        const base = mat(lw.base);
        const withAdapter = (ad: Adapter): Mat => {
          // Without add_decoder_lora the generation path has no adapter of its own: it keeps `default`.
          const pair = lw.lora[ad] ?? (!cfg.addDecoderLora ? lw.lora.default : undefined);
          const out: Mat = { rows: base.rows, cols: base.cols, data: new Float64Array(base.data) };
          if (!pair) return out;
          const A = mat(pair.a); // [r, in]
          const B = mat(pair.b); // [out, r]
          for (let o = 0; o < base.rows; o++) {
            for (let i = 0; i < base.cols; i++) {
              let s = 0;
              for (let j = 0; j < A.rows; j++) s += B.data[o * B.cols + j] * A.data[j * A.cols + i];
              out.data[o * base.cols + i] += scale * s;
            }
          }
          return out;
        };
        return { default: withAdapter('default'), decoder_adapter: withAdapter('decoder_adapter') };
      };

      this.embed = mat(w.embed);
      this.lmHead = mat(w.lmHead);
      this.finalNorm = vec(w.norm);
      this.bos = w.bosEmbedding ? rowsOf(files.readF32(w.bosEmbedding), d) : null;
      this.newMemPosEmb = vec(w.newMemoryPosEmb);
      this.layers = w.layers.map((lw) => ({
        q: linear(lw.q),
        k: linear(lw.k),
        v: linear(lw.v),
        o: linear(lw.o),
        gate: linear(lw.gate),
        up: linear(lw.up),
        down: linear(lw.down),
        inputNorm: vec(lw.inputNorm),
        postNorm: vec(lw.postNorm),
        queryProj: lw.queryProj ? lw.queryProj.map(mat) : null,
        keyProj: lw.keyProj ? lw.keyProj.map(mat) : null,
      }));

      this.invFreq = this.computeInvFreq();

      // Initial memory: θ = `memory` [L, N, d] with stm ages all zero (spec: "stm_ages start as
      // zeros"); Θ as shipped (`ltm.{l}`, `ltm_keys.{l}`, `ltm_recall_frequencies.{l}`,
      // `ltm_ages.{l}`), or empty; dropped cache empty; update_step 0.
      const memFlat = files.readF32(w.memory);
      const N = cfg.stmSize;
      this.mem = [];
      for (let l = 0; l < cfg.numLayers; l++) {
        const stm = rowsOf(memFlat.subarray(l * N * d, (l + 1) * N * d), d);
        const lt = w.ltm?.[l];
        this.mem.push({
          stm,
          stmAges: new Array<number>(N).fill(0),
          ltm: lt ? rowsOf(files.readF32(lt.values), d) : [],
          ltmKeys: lt ? rowsOf(files.readF32(lt.keys), cfg.selectorHiddenDim) : [],
          ltmAges: lt ? Array.from(files.readF32(lt.ages), (x) => Math.round(x)) : [],
          ltmRf: lt ? Array.from(files.readF32(lt.rf)) : [],
          cache: [],
          cacheKeys: [],
          cacheAges: [],
        });
      }
    } finally {
      ck.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // RoPE
  // -------------------------------------------------------------------------------------------

  /**
   * inv_freq[i] = 1 / theta^(2i/head_dim), then HF `_compute_llama3_parameters` when
   * rope_scaling.rope_type = "llama3":
   *   low_freq_wavelen = old_ctx / low_freq_factor, high_freq_wavelen = old_ctx / high_freq_factor;
   *   wavelen > low_freq_wavelen → inv_freq / factor;
   *   medium (high_freq_wavelen ≤ wavelen ≤ low_freq_wavelen) → (1−s)·inv/factor + s·inv with
   *   s = (old_ctx/wavelen − low_freq_factor)/(high_freq_factor − low_freq_factor);
   *   else unchanged. (HF computes in float32; float64 here differs by ~1e-7 relative.)
   * spec "Precision": under bf16, inv_freq is rounded to bf16 (then upcast) — option bf16Rope.
   */
  private computeInvFreq(): Float64Array {
    const { headDim, ropeTheta, ropeScaling: rs } = this.cfg;
    const half = headDim / 2;
    const inv = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      const base = 1 / Math.pow(ropeTheta, (2 * i) / headDim);
      let f = base;
      if (rs.ropeType === 'llama3') {
        const lowWl = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
        const highWl = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
        const wavelen = (2 * Math.PI) / base;
        const scaled = wavelen > lowWl ? base / rs.factor : base;
        const medium = !(wavelen < highWl) && !(wavelen > lowWl);
        if (medium) {
          const s = (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
          f = ((1 - s) * scaled) / rs.factor + s * scaled;
        } else {
          f = scaled;
        }
      }
      inv[i] = this.opts.bf16Rope ? roundToBf16(f) : f;
    }
    return inv;
  }

  /** HF rotate_half RoPE on one head vector (x1 = first half, x2 = second half) at `pos`. */
  private rope(x: Vec, off: number, pos: number): void {
    const half = this.cfg.headDim / 2;
    for (let i = 0; i < half; i++) {
      const ang = pos * this.invFreq[i];
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      const x1 = x[off + i];
      const x2 = x[off + half + i];
      x[off + i] = x1 * c - x2 * s;
      x[off + half + i] = x2 * c + x1 * s;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Layer arithmetic (spec "Layer arithmetic (both paths)")
  // -------------------------------------------------------------------------------------------

  /** spec: "RMSNorm in float32 then weight * x" — x / sqrt(mean(x²) + eps), times weight. */
  private rmsNorm(x: Vec, w: Vec): Vec {
    let ss = 0;
    for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
    const r = 1 / Math.sqrt(ss / x.length + this.cfg.rmsNormEps);
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = w[i] * (x[i] * r);
    return out;
  }

  /** Retriever projector: Linear(d→2s) · act · Linear(2s→s) (num_selector_layers 2) or one Linear. */
  private project(proj: Mat[], x: Vec): Vec {
    let h = matvec(proj[0], x);
    for (let j = 1; j < proj.length; j++) {
      const a = new Float64Array(h.length);
      for (let i = 0; i < h.length; i++) a[i] = silu(h[i]); // hidden_act = silu
      h = matvec(proj[j], a);
    }
    return h;
  }

  /**
   * One decoder layer over `rows` whose absolute positions are firstPos .. firstPos+T−1.
   * spec: q from normed rows p..T−1; k and v from all T rows; RoPE with absolute positions;
   * GQA attention, scale 1/√head_dim, softmax; query row i (absolute) sees every key j ≤ i
   * (bottom-right causal alignment: the whole prefix plus causal among the rest); o_proj;
   * residual is S[p..T−1]; then RMSNorm + SwiGLU MLP + residual. Output has T−p rows.
   * The new K/V (all T rows) are appended to `kv` (which holds positions 0..firstPos−1).
   */
  private layer(l: number, ad: Adapter, rows: Vec[], p: number, kv: KvCache): Vec[] {
    const cfg = this.cfg;
    const L = this.layers[l];
    const { numHeads: H, numKvHeads: Hkv, headDim: hd } = cfg;
    const group = H / Hkv;
    const firstPos = kv.k.length;
    // K, V for all T rows (normed), RoPE on K at absolute positions.
    const normed = rows.map((x) => this.rmsNorm(x, L.inputNorm));
    for (let t = 0; t < rows.length; t++) {
      const k = matvec(L.k[ad], normed[t]);
      for (let h = 0; h < Hkv; h++) this.rope(k, h * hd, firstPos + t);
      kv.k.push(k);
      kv.v.push(matvec(L.v[ad], normed[t]));
    }
    const scale = 1 / Math.sqrt(hd);
    const out: Vec[] = [];
    for (let t = p; t < rows.length; t++) {
      const pos = firstPos + t; // absolute position of this query row
      const q = matvec(L.q[ad], normed[t]);
      for (let h = 0; h < H; h++) this.rope(q, h * hd, pos);
      const attn = new Float64Array(H * hd);
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group); // GQA: query head h reads kv head h / (H/Hkv)
        // keys j = 0..pos (j ≤ i)
        const sc = new Float64Array(pos + 1);
        let mx = -Infinity;
        for (let j = 0; j <= pos; j++) {
          let s = 0;
          const kj = kv.k[j];
          for (let e = 0; e < hd; e++) s += q[h * hd + e] * kj[kh * hd + e];
          sc[j] = s * scale;
          if (sc[j] > mx) mx = sc[j];
        }
        let z = 0;
        for (let j = 0; j <= pos; j++) {
          sc[j] = Math.exp(sc[j] - mx);
          z += sc[j];
        }
        for (let j = 0; j <= pos; j++) {
          const pj = sc[j] / z;
          const vj = kv.v[j];
          for (let e = 0; e < hd; e++) attn[h * hd + e] += pj * vj[kh * hd + e];
        }
      }
      // o_proj + residual S[t]
      const h1 = addInto(rows[t], matvec(L.o[ad], attn));
      // post_attention_layernorm + SwiGLU MLP + residual
      const n2 = this.rmsNorm(h1, L.postNorm);
      const g = matvec(L.gate[ad], n2);
      const u = matvec(L.up[ad], n2);
      const m = new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) m[i] = silu(g[i]) * u[i];
      out.push(addInto(h1, matvec(L.down[ad], m)));
    }
    return out;
  }

  private embedTokens(tokens: number[]): Vec[] {
    const d = this.cfg.hiddenSize;
    return tokens.map((t) => {
      if (!Number.isInteger(t) || t < 0 || t >= this.embed.rows) throw new Error(`token ${t} outside vocabulary`);
      return this.embed.data.slice(t * d, (t + 1) * d);
    });
  }

  private keyOf(l: number, token: Vec): Vec {
    const L = this.layers[l];
    if (!L.keyProj) throw new Error(`layer ${l} has no retriever (selector_layers) — not supported by the reference`);
    // spec: key = key_proj(input_layernorm_l(token)) (map_from_hidden_states)
    return this.project(L.keyProj, this.rmsNorm(token, L.inputNorm));
  }

  // -------------------------------------------------------------------------------------------
  // Injection (spec "Injection of one chunk x")
  // -------------------------------------------------------------------------------------------

  inject(tokens: number[], drop: number[][]): InjectResult {
    const cfg = this.cfg;
    const K = cfg.numTokens;
    const N = cfg.stmSize;
    const R = cfg.retrieveSize;
    const n = tokens.length;
    if (drop.length !== cfg.numLayers) throw new Error(`drop plan has ${drop.length} layers, model has ${cfg.numLayers}`);
    // 1. Adapter `default`. h = embed(x).
    let h = this.embedTokens(tokens);
    const deltas: Vec[][] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      // 2. S = [bos_l ; θ_l[N−K..N−1] ; h]; T = 1+K+n; p = min(1+K, T−K).
      const bos = this.bos ? [this.bos[l]] : [];
      const S: Vec[] = [...bos.map((r) => new Float64Array(r)), ...this.mem[l].stm.slice(N - K).map((r) => new Float64Array(r)), ...h.map((r) => new Float64Array(r))];
      const T = S.length;
      const p = Math.min(bos.length + K, T - K);
      // Add new_memory_positional_emb to the last K rows of S (before the layer; residual sees it).
      for (let t = T - K; t < T; t++) S[t] = addInto(S[t], this.newMemPosEmb);
      // Run the layer (positions 0..T−1) → y (T−p rows).
      const y = this.layer(l, 'default', S, p, { k: [], v: [] });
      // delta_l = last K rows of y; next h = last n rows of y.
      deltas.push(y.slice(y.length - K));
      h = y.slice(y.length - n);
    }

    // 3. Memory update, per layer.
    for (let l = 0; l < cfg.numLayers; l++) {
      const m = this.mem[l];
      const dropped = [...drop[l]].sort((a, b) => a - b);
      if (dropped.length !== K || new Set(dropped).size !== K || dropped.some((i) => !Number.isInteger(i) || i < 0 || i >= N)) {
        throw new Error(`layer ${l}: drop plan must name ${K} distinct indices in 0..${N - 1}`);
      }
      const dropSet = new Set(dropped);
      const kept: number[] = [];
      for (let i = 0; i < N; i++) if (!dropSet.has(i)) kept.push(i); // kept indices ascending
      // The dropped tokens (ascending index order) with their stm ages; keys computed now.
      const dropRows = dropped.map((i) => m.stm[i]);
      const dropAges = dropped.map((i) => m.stmAges[i]);
      const dropKeys = dropRows.map((r) => this.keyOf(l, r));
      // θ_l ← [θ_l[kept] ; delta_l]; stm_ages ← [stm_ages[kept] ; K−1, …, 0]
      // (⚑ stm ages are never incremented afterwards).
      m.stm = [...kept.map((i) => m.stm[i]), ...deltas[l]];
      m.stmAges = [...kept.map((i) => m.stmAges[i]), ...Array.from({ length: K }, (_, j) => K - 1 - j)];
      // Ordering: first every Θ age += K and every cache age += K; then append the newly dropped
      // tokens with their raw ages.
      m.ltmAges = m.ltmAges.map((a) => a + K);
      m.cacheAges = m.cacheAges.map((a) => a + K);
      m.cache.push(...dropRows);
      m.cacheKeys.push(...dropKeys);
      m.cacheAges.push(...dropAges);
    }
    // then update_step += K (one counter for the model).
    this.updateStep += K;

    // Merge when update_step ≥ update_ltm_frequency·K.
    if (this.updateStep >= cfg.updateLtmFrequency * K) {
      for (let l = 0; l < cfg.numLayers; l++) {
        const m = this.mem[l];
        // Θ ← [Θ ; cache] (values, keys, ages), new rf = initial_rf_when_moving_stm_to_ltm
        let vals = [...m.ltm, ...m.cache];
        let keys = [...m.ltmKeys, ...m.cacheKeys];
        let ages = [...m.ltmAges, ...m.cacheAges];
        let rf = [...m.ltmRf, ...m.cache.map(() => cfg.initialRfWhenMovingStmToLtm)];
        // every frequency −= decay_frequency; keep = {rf > 0.01}
        rf = rf.map((f) => f - cfg.decayFrequency);
        const keep = rf.map((f) => f > 0.01);
        const nKeep = keep.filter(Boolean).length;
        if (nKeep > R) {
          // drop the rest from Θ (values, keys, ages, frequencies)
          vals = vals.filter((_, i) => keep[i]);
          keys = keys.filter((_, i) => keep[i]);
          ages = ages.filter((_, i) => keep[i]);
          rf = rf.filter((_, i) => keep[i]);
        } else {
          // otherwise add decay_frequency back (no expiry)
          rf = rf.map((f) => f + cfg.decayFrequency);
        }
        m.ltm = vals;
        m.ltmKeys = keys;
        m.ltmAges = ages;
        m.ltmRf = rf;
        // Clear the cache
        m.cache = [];
        m.cacheKeys = [];
        m.cacheAges = [];
      }
      // update_step = 0
      this.updateStep = 0;
    }
    return { delta: deltas.map((rows) => rows.map(toList)) };
  }

  // -------------------------------------------------------------------------------------------
  // Generation (spec "Generation for a question q")
  // -------------------------------------------------------------------------------------------

  /**
   * Candidate indices (Θ first, then the cache) that layer l retrieves for layer input `h`, in
   * final prefix order (oldest first).
   */
  retrieve(l: number, h: Vec[]): number[] {
    const R = this.cfg.retrieveSize;
    const m = this.mem[l];
    const M = m.ltm.length;
    let picked: number[];
    if (M < R) {
      // If |Θ_l| (merged only) < R: 0..|Θ_l|−1 repeated to length R, the *last* R of the
      // sequence built by prepending copies; the cache is ignored.
      if (M === 0) throw new Error(`layer ${l}: Θ is empty, nothing to retrieve`);
      const seq: number[] = [];
      while (seq.length < R) seq.unshift(...Array.from({ length: M }, (_, i) => i));
      picked = seq.slice(seq.length - R);
    } else {
      const L = this.layers[l];
      if (!L.queryProj) throw new Error(`layer ${l} has no retriever (selector_layers) — not supported by the reference`);
      // Q = query_proj(input_layernorm_l(h)) [m, s]
      const Q = h.map((x) => this.project(L.queryProj as Mat[], this.rmsNorm(x, L.inputNorm)));
      // score(t) = mean over the m rows of sigmoid(Q·key_t), candidates Θ then cache
      const keys = [...m.ltmKeys, ...m.cacheKeys];
      const scores = keys.map((k) => {
        let s = 0;
        for (const q of Q) {
          let dot = 0;
          for (let i = 0; i < q.length; i++) dot += q[i] * k[i];
          s += sigmoid(dot);
        }
        return s / Q.length;
      });
      // top R (descending score; equal scores: lower index first)
      const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
      picked = order.slice(0, R);
    }
    // Spec ✎: ties in age → larger candidate index first. Applied to both paths (in repeat-fill
    // the same index repeats; ties between different indices still go by index, not position).
    if ((this.opts.tieOrder ?? 'index') === 'index') picked.sort((a, b) => a - b);
    // Order by age, oldest (largest) first; ties: stable ascending sort by age, reversed.
    const ages = [...m.ltmAges, ...m.cacheAges];
    const asc = picked.map((c, pos) => ({ c, pos })).sort((a, b) => ages[a.c] - ages[b.c] || a.pos - b.pos);
    return asc.reverse().map((e) => e.c);
  }

  generate(tokens: number[], steps: number): GenerateResult {
    const cfg = this.cfg;
    const R = cfg.retrieveSize;
    // 1. Adapter `decoder_adapter`. h = embed(q).
    let h = this.embedTokens(tokens);
    const caches: KvCache[] = [];
    const retrieved: number[][] = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      const m = this.mem[l];
      // 2. Retrieve with this layer's input h.
      const idx = this.retrieve(l, h);
      retrieved.push(idx);
      const pool = [...m.ltm, ...m.cache];
      // S = [bos_l ; retrieved (R) ; θ_l (N) ; h]; p = 1+R+N; positions 0..p+m−1.
      const bos = this.bos ? [this.bos[l]] : [];
      const S: Vec[] = [...bos, ...idx.map((i) => pool[i]), ...m.stm, ...h];
      const p = bos.length + R + cfg.stmSize;
      const kv: KvCache = { k: [], v: [] };
      h = this.layer(l, 'decoder_adapter', S, p, kv);
      // The layer's K/V for all p+m rows become this question's KV cache.
      caches.push(kv);
    }
    // 3. Final RMSNorm, lm_head → logits of the last prefill position.
    const logitsOf = (x: Vec): Vec => matvec(this.lmHead, this.rmsNorm(x, this.finalNorm));
    const logits: number[][] = [];
    const out: number[] = [];
    let last = logitsOf(h[h.length - 1]);
    logits.push(toList(last));
    // 4. Greedy decoding at position p+m+t with the KV cache, no memory, no retrieval,
    //    adapter still `decoder_adapter`.
    for (let t = 0; t < steps; t++) {
      let best = 0;
      for (let i = 1; i < last.length; i++) if (last[i] > last[best]) best = i; // argmax, first on ties
      out.push(best);
      let x = this.embedTokens([best]);
      for (let l = 0; l < cfg.numLayers; l++) x = this.layer(l, 'decoder_adapter', x, 0, caches[l]);
      last = logitsOf(x[0]);
      logits.push(toList(last));
    }
    return { retrieved, logits, tokens: out };
  }

  /** The memory in the golden `state` format. */
  state(): StateJson {
    return {
      layers: this.mem.map((m) => ({
        stm: m.stm.map(toList),
        stm_ages: [...m.stmAges],
        ltm: m.ltm.map(toList),
        ltm_keys: m.ltmKeys.map(toList),
        ltm_ages: [...m.ltmAges],
        ltm_rf: [...m.ltmRf],
        cache: m.cache.map(toList),
        cache_keys: m.cacheKeys.map(toList),
        cache_ages: [...m.cacheAges],
      })),
      update_step: this.updateStep,
    };
  }

  /**
   * Runs an ops.json program. `state` is the memory after the last inject (before generating) —
   * what expected.json holds; generation never changes the memory anyway.
   */
  runOps(ops: Op[] | { ops: Op[] }): { results: OpResult[]; state: StateJson } {
    const list = Array.isArray(ops) ? ops : ops.ops;
    const results: OpResult[] = [];
    let state: StateJson | null = null;
    for (const op of list) {
      if (op.op === 'inject') {
        results.push(this.inject(op.tokens, op.drop));
        state = this.state();
      } else if (op.op === 'generate') {
        results.push(this.generate(op.tokens, op.steps));
      } else {
        throw new Error(`unknown op ${JSON.stringify((op as { op: unknown }).op)}`);
      }
    }
    return { results, state: state ?? this.state() };
  }
}
