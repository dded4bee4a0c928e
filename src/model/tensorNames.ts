/**
 * Maps a checkpoint's tensor names to the logical weights of M+ and reports what is missing or
 * unexpected. Two layouts are accepted:
 *  - PEFT (as `save_pretrained` writes mplus-8b): `…q_proj.base_layer.weight` plus
 *    `…lora_A.default.weight` / `…lora_B.default.weight` (injection adapter) and
 *    `…lora_A.decoder_adapter.weight` / `…lora_B.decoder_adapter.weight` (generation adapter);
 *  - merged: `…q_proj.weight` (no adapter left to apply).
 * An optional `base_model.model.` prefix (PEFT's wrapper) is tolerated.
 */
import { MPlusConfig, hasSelector } from './config';
import { CheckpointError, TensorFiles } from './safetensors';

export type Adapter = 'default' | 'decoder_adapter';

export interface LoraPair {
  a: string; // [r, in]
  b: string; // [out, r]
}

export interface LinearWeights {
  /** [out, in] */
  base: string;
  lora: Partial<Record<Adapter, LoraPair>>;
}

export interface LayerWeights {
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  o: LinearWeights;
  gate: LinearWeights;
  up: LinearWeights;
  down: LinearWeights;
  inputNorm: string;
  postNorm: string;
  /** Retriever projectors as a list of Linear weights applied with act between them; null if none. */
  queryProj: string[] | null;
  keyProj: string[] | null;
}

export interface LtmWeights {
  values: string;
  keys: string;
  rf: string;
  ages: string;
}

export interface ModelWeights {
  embed: string;
  norm: string;
  lmHead: string;
  memory: string;
  bosEmbedding: string | null;
  newMemoryPosEmb: string;
  layers: LayerWeights[];
  /** Θ as shipped in the checkpoint, per layer; null when the checkpoint has none. */
  ltm: LtmWeights[] | null;
  /** Linear modules that carry no adapter (merged layout), for the report. */
  merged: string[];
}

export interface NameReport {
  missing: string[];
  unexpected: string[];
}

const ATTN = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj' } as const;
const MLP = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' } as const;

/** Resolves every logical weight; throws a CheckpointError listing all missing tensors. */
export function mapTensorNames(cfg: MPlusConfig, files: TensorFiles): { weights: ModelWeights; report: NameReport } {
  const present = new Set(files.names());
  const prefix = [...present].some((n) => n.startsWith('base_model.model.')) ? 'base_model.model.' : '';
  const used = new Set<string>();
  const missing: string[] = [];
  const merged: string[] = [];

  const take = (name: string, required = true): string | null => {
    const full = prefix + name;
    if (present.has(full)) {
      used.add(full);
      return full;
    }
    if (present.has(name)) {
      used.add(name);
      return name;
    }
    if (required) missing.push(name);
    return null;
  };

  const adapters: Adapter[] = cfg.addDecoderLora ? ['default', 'decoder_adapter'] : ['default'];
  const linear = (mod: string, short: string): LinearWeights => {
    const peft = take(`${mod}.base_layer.weight`, false);
    if (!peft) {
      const w = take(`${mod}.weight`, false);
      if (w) {
        merged.push(mod);
        return { base: w, lora: {} };
      }
      missing.push(cfg.lora.targetModules.includes(short) ? `${mod}.base_layer.weight` : `${mod}.weight`);
      return { base: '', lora: {} };
    }
    const lora: Partial<Record<Adapter, LoraPair>> = {};
    for (const ad of adapters) {
      const a = take(`${mod}.lora_A.${ad}.weight`);
      const b = take(`${mod}.lora_B.${ad}.weight`);
      if (a && b) lora[ad] = { a, b };
    }
    return { base: peft, lora };
  };

  const projector = (base: string): string[] | null => {
    if (cfg.numSelectorLayers === 2) {
      const w0 = take(`${base}.0.weight`);
      const w2 = take(`${base}.2.weight`);
      return w0 && w2 ? [w0, w2] : null;
    }
    const w = take(`${base}.weight`, false) ?? take(`${base}.0.weight`);
    return w ? [w] : null;
  };

  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const lw = {} as LayerWeights;
    for (const [k, m] of Object.entries(ATTN)) lw[k as keyof typeof ATTN] = linear(`${p}.self_attn.${m}`, m);
    for (const [k, m] of Object.entries(MLP)) lw[k as keyof typeof MLP] = linear(`${p}.mlp.${m}`, m);
    lw.inputNorm = take(`${p}.input_layernorm.weight`) ?? '';
    lw.postNorm = take(`${p}.post_attention_layernorm.weight`) ?? '';
    if (hasSelector(cfg, l)) {
      lw.queryProj = projector(`${p}.self_attn.query_proj`);
      lw.keyProj = projector(`${p}.self_attn.key_proj`);
      if (cfg.addEncoderRetriever) {
        // Trained jointly but unused at inference: accepted, never required (unusedAtInference).
        for (const s of ['0', '2']) take(`${p}.self_attn.encoder_query_proj.${s}.weight`, false);
        take(`${p}.self_attn.encoder_query_proj.weight`, false);
      }
    } else {
      lw.queryProj = null;
      lw.keyProj = null;
    }
    layers.push(lw);
  }

  const embed = take('model.embed_tokens.weight') ?? '';
  const lmHead = take('lm_head.weight', !cfg.tieWordEmbeddings) ?? embed;
  let ltm: LtmWeights[] | null = null;
  if ([...present].some((n) => /^(base_model\.model\.)?ltm\.\d+$/.test(n))) {
    ltm = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      ltm.push({
        values: take(`ltm.${l}`) ?? '',
        keys: take(`ltm_keys.${l}`) ?? '',
        rf: take(`ltm_recall_frequencies.${l}`) ?? '',
        ages: take(`ltm_ages.${l}`) ?? '',
      });
    }
  }
  const weights: ModelWeights = {
    embed,
    norm: take('model.norm.weight') ?? '',
    lmHead,
    memory: take('memory') ?? '',
    bosEmbedding: cfg.addBosEmbedding ? take('bos_embedding') : null,
    newMemoryPosEmb: take('new_memory_positional_emb') ?? '',
    layers,
    ltm,
    merged,
  };
  const unexpected = [...present].filter((n) => !used.has(n)).sort();
  const report = { missing, unexpected };
  if (missing.length) {
    const list = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
    throw new CheckpointError(files.dir, `missing tensors: ${list}`, 'the checkpoint is incomplete or not an M+ checkpoint for this config.json');
  }
  return { weights, report };
}

/** Checks every mapped tensor's shape against the config; throws naming the file and tensor. */
export function checkShapes(cfg: MPlusConfig, files: TensorFiles, w: ModelWeights): void {
  const { hiddenSize: d, numHeads, numKvHeads, headDim, intermediateSize: f, vocabSize: V, numLayers: L } = cfg;
  const s = cfg.selectorHiddenDim;
  const expect = (name: string, shape: number[]) => {
    const t = files.info(name);
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i])) {
      throw new CheckpointError(t.file, `tensor ${name} has shape [${t.shape}] but config.json implies [${shape}]`, 'config.json and weights disagree: use the matching pair');
    }
  };
  const lin = (lw: LinearWeights, out: number, inp: number) => {
    expect(lw.base, [out, inp]);
    for (const pair of Object.values(lw.lora)) {
      if (!pair) continue;
      expect(pair.a, [cfg.lora.r, inp]);
      expect(pair.b, [out, cfg.lora.r]);
    }
  };
  expect(w.embed, [V, d]);
  expect(w.lmHead, [V, d]);
  expect(w.norm, [d]);
  expect(w.memory, [L, cfg.stmSize, d]);
  if (w.bosEmbedding) expect(w.bosEmbedding, [L, 1, d]);
  expect(w.newMemoryPosEmb, [1, 1, d]);
  w.layers.forEach((lw) => {
    lin(lw.q, numHeads * headDim, d);
    lin(lw.k, numKvHeads * headDim, d);
    lin(lw.v, numKvHeads * headDim, d);
    lin(lw.o, d, numHeads * headDim);
    lin(lw.gate, f, d);
    lin(lw.up, f, d);
    lin(lw.down, d, f);
    expect(lw.inputNorm, [d]);
    expect(lw.postNorm, [d]);
    for (const proj of [lw.queryProj, lw.keyProj]) {
      if (!proj) continue;
      if (proj.length === 2) {
        expect(proj[0], [2 * s, d]);
        expect(proj[1], [s, 2 * s]);
      } else expect(proj[0], [s, d]);
    }
  });
  w.ltm?.forEach((t) => {
    const m = files.info(t.values).shape[0];
    expect(t.values, [m, d]);
    expect(t.keys, [m, s]);
    expect(t.rf, [m]);
    expect(t.ages, [m]);
  });
}

/** A checkpoint tensor the engine never reads: the encoder retriever's query projection (trained jointly with the retriever, unused at inference). */
export function unusedAtInference(name: string): boolean {
  return /(^|\.)self_attn\.encoder_query_proj\./.test(name);
}
