/**
 * One M+ decoder layer as an ONNX graph, shared by injection, question prefill and decoding.
 *
 * Inputs (d hidden, H heads, G = H/kvH, hd head dim):
 *   prefix  [p, d]        rows that feed keys/values only (bos, memory) — p may be 0
 *   x       [n, d]        rows that also produce outputs (n ≥ 1)
 *   mem_k, mem_v [kvH, M, hd]    keys (before RoPE) and values of θ, computed once and kept
 *                         between questions and injections (MPlusEngine's θ K/V cache): attended
 *                         to, not returned — M may be 0
 *   cos_m, sin_m [M, hd]  rotary tables for the mem rows (their absolute positions): mem_k is
 *                         rotated here, so a θ row's cached key does not depend on where the row
 *                         sits — an injection shifts θ's rows, and only its K new rows need projecting
 *   past_k, past_v [kvH, P, hd]  keys/values already computed (decoding) — P may be 0
 *   cos_k, sin_k [p+n, hd] rotary tables for the prefix and x rows (absolute positions)
 *   cos_q, sin_q [n, hd]   rotary tables for the x rows
 *   mask    [G·n, M+P+p+n] additive attention mask (0 or −inf), the [n, M+P+p+n] causal mask
 *                         repeated G times (row j·n + i belongs to query i of group member j);
 *                         keys in the order mem ‖ past ‖ prefix ‖ x
 *   adapter [2]           one-hot over (default, decoder_adapter): which LoRA is active
 * With kv = 'f16' mem, past and k_all/v_all are float16 (a question's K/V cache at half
 * width, for checkpoints whose official runs compute in bf16). Attention runs in float32: the past
 * widened, the new rows as computed — so an injection (no past) is exactly the f32 graph's, and
 * only rows read back from the cache (decoding, later prefill blocks) carry float16 rounding (θ's
 * keys are rounded before their rotation, the question's own after).
 * Outputs: y [n, d] (x + attention + MLP, with residuals), k_all, v_all [kvH, P+p+n, hd] (past ‖
 *   the new rows: mem is not copied), and
 *   attn_mass [M+P+p+n]: attention probability each key received, summed over heads and x rows
 *   (ORT computes it only when asked for; answers use it to attribute sources to memory).
 *
 * Semantics (MPLUS-SPEC "Layer arithmetic"): q from normed x rows, k/v from normed prefix+x
 * rows, RoPE at absolute positions, GQA with scale 1/√hd, softmax in float32, o_proj, residual
 * x, RMSNorm, SwiGLU MLP, residual.
 */
import { MPlusConfig } from '../../model/config';
import { LayerWeights } from '../../model/tensorNames';
import { GraphBuilder, OnnxDType } from '../onnx/builder';
import { WeightSource, linear, rmsNorm, silu, weight } from './common';

const F = OnnxDType.FLOAT;
const F16 = OnnxDType.FLOAT16;

/** Width of a question's cached keys/values. */
export type KvFormat = 'f32' | 'f16';

export function buildLayerGraph(cfg: MPlusConfig, src: WeightSource, lw: LayerWeights, layer: number, kv: KvFormat = 'f32'): Uint8Array {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: hd } = cfg;
  const g = new GraphBuilder(`mplus_layer_${layer}`);
  const KVT = kv === 'f16' ? F16 : F;
  const prefix = g.input('prefix', F, ['p', d]);
  const x = g.input('x', F, ['n', d]);
  const memK = g.input('mem_k', KVT, [KV, 'M', hd]);
  const memV = g.input('mem_v', KVT, [KV, 'M', hd]);
  const cosM = g.input('cos_m', F, ['M', hd]);
  const sinM = g.input('sin_m', F, ['M', hd]);
  const pastK = g.input('past_k', KVT, [KV, 'P', hd]);
  const pastV = g.input('past_v', KVT, [KV, 'P', hd]);
  const cosK = g.input('cos_k', F, ['pn', hd]);
  const sinK = g.input('sin_k', F, ['pn', hd]);
  const cosQ = g.input('cos_q', F, ['n', hd]);
  const sinQ = g.input('sin_q', F, ['n', hd]);
  const mask = g.input('mask', F, ['Gn', 'Tk']);
  const adapter = g.input('adapter', F, [2]);
  const sel = [0, 1].map((i) =>
    g.op('Gather', [adapter, g.constI64(`ad_idx${i}`, [i], [])], { axis: 0 }, `ad_sel${i}`));
  const ad = { sel, scaling: cfg.lora.loraAlpha / cfg.lora.r };

  const wIn = weight(g, src, lw.inputNorm, 'input_layernorm');
  const eps = cfg.rmsNormEps;
  const nx = rmsNorm(g, x, wIn, eps, 'norm_x');
  const np = rmsNorm(g, prefix, wIn, eps, 'norm_prefix');
  const ns = g.op('Concat', [np, nx], { axis: 0 }, 'norm_s');

  const q = linear(g, src, nx, lw.q, ad, 'q_proj');
  const k = linear(g, src, ns, lw.k, ad, 'k_proj');
  const v = linear(g, src, ns, lw.v, ad, 'v_proj');

  const heads = (t: string, nh: number, hint: string) =>
    g.op('Transpose', [g.op('Reshape', [t, g.constI64(`${hint}_shape`, [-1, nh, hd])])], { perm: [1, 0, 2] }, hint);
  const half = hd / 2;
  const sHalfA = g.constI64('half_a', [0]);
  const sHalfB = g.constI64('half_b', [half]);
  const sEnd = g.constI64('half_end', [hd]);
  const lastAxis = g.constI64('last_axis', [-1]);
  const rope = (t: string, cos: string, sin: string, hint: string) => {
    const x1 = g.op('Slice', [t, sHalfA, sHalfB, lastAxis], {}, `${hint}_x1`);
    const x2 = g.op('Slice', [t, sHalfB, sEnd, lastAxis], {}, `${hint}_x2`);
    const rot = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 }, `${hint}_rot`);
    return g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rot, sin])], {}, hint);
  };
  const qh = rope(heads(q, H, 'q_heads'), cosQ, sinQ, 'q_rope'); // [H, n, hd]
  const kh = rope(heads(k, KV, 'k_heads'), cosK, sinK, 'k_rope'); // [KV, p+n, hd]
  const vh = heads(v, KV, 'v_heads');
  // f16: the new rows attend at float32 (an injection, which has no past, is exactly the f32
  // graph's); mem and past are widened for attention; the output cache is the past ‖ the new rows
  // rounded.
  const wide = (t: string, hint: string) => (kv === 'f16' ? g.op('Cast', [t], { to: F }, hint) : t);
  const narrow = (t: string, hint: string) => (kv === 'f16' ? g.op('Cast', [t], { to: F16 }, hint) : t);
  // mem keys: widened, then rotated in float32 — the same ops on the same values as the prefix's
  // k_rope, so at f32 a θ key equals the one computed with its row in the prefix, bit for bit.
  const memKRot = rope(wide(memK, 'mem_k_f32'), cosM, sinM, 'mem_k_rope');
  const kAll = g.op('Concat', [memKRot, wide(pastK, 'past_k_f32'), kh], { axis: 1 }, 'k_attn');
  const vAll = g.op('Concat', [wide(memV, 'mem_v_f32'), wide(pastV, 'past_v_f32'), vh], { axis: 1 }, 'v_attn');
  const kStored = g.op('Concat', [pastK, narrow(kh, 'k_new_f16')], { axis: 1 }, 'k_all');
  const vStored = g.op('Concat', [pastV, narrow(vh, 'v_new_f16')], { axis: 1 }, 'v_all');

  // GQA: heads h = kv·G + j share kv head kv; group them as [KV, G·n, hd] for one batched MatMul.
  const qg = g.op('Reshape', [qh, g.constI64('qg_shape', [KV, -1, hd])], {}, 'q_grouped');
  const kT = g.op('Transpose', [kAll], { perm: [0, 2, 1] }, 'k_t');
  const scores = g.op('Mul', [g.op('MatMul', [qg, kT]), g.constF32('attn_scale', [1 / Math.sqrt(hd)], [])], {}, 'scores');
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }, 'probs');
  const ctx = g.op('MatMul', [probs, vAll], {}, 'ctx'); // [KV, G·n, hd]
  const ctxH = g.op('Reshape', [ctx, g.constI64('ctx_shape', [H, -1, hd])], {}, 'ctx_heads');
  const attn = g.op('Reshape', [g.op('Transpose', [ctxH], { perm: [1, 0, 2] }), g.constI64('attn_shape', [0, H * hd])], {}, 'attn');
  const o = linear(g, src, attn, lw.o, ad, 'o_proj');
  const h1 = g.op('Add', [x, o], {}, 'resid1');

  const wPost = weight(g, src, lw.postNorm, 'post_attention_layernorm');
  const nh1 = rmsNorm(g, h1, wPost, eps, 'norm_post');
  const gate = silu(g, linear(g, src, nh1, lw.gate, ad, 'gate_proj'), 'gate_act');
  const up = linear(g, src, nh1, lw.up, ad, 'up_proj');
  const down = linear(g, src, g.op('Mul', [gate, up], {}, 'swiglu'), lw.down, ad, 'down_proj');
  const y = g.op('Add', [h1, down], {}, 'resid2');

  g.output(y, 'y', F, ['n', d]);
  g.output(kStored, 'k_all', KVT, [KV, 'Tk', hd]);
  g.output(vStored, 'v_all', KVT, [KV, 'Tk', hd]);
  g.output(g.op('ReduceSum', [probs, g.constI64('mass_axes', [0, 1])], { keepdims: 0 }, 'mass'), 'attn_mass', F, ['Tk']);
  return g.toBytes();
}
