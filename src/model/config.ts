/**
 * `config.json` of an M+ (or MemoryLLM) checkpoint: parsed, defaulted and validated.
 *
 * Defaults: Llama keys as transformers' LlamaConfig has them; M+ keys as `mplus-8b` ships them
 * (MPLUS-SPEC.md "Config keys used"). Every derived size the engine relies on is computed here
 * once (K, N, R, head_dim, groups) so the rest of the code never re-derives it.
 */
import * as fs from 'fs';
import { CheckpointError } from './safetensors';

export interface RopeScaling {
  ropeType: 'llama3' | 'default';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LoraConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: string[];
  inferenceMode: boolean;
}

export interface MPlusConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  hiddenAct: 'silu';
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  torchDtype: 'float32' | 'bfloat16' | 'float16';
  /** K: memory tokens written per injection. */
  numTokens: number;
  numBlocks: number;
  numLtmBlocks: number;
  /** N = (numBlocks − numLtmBlocks)·K short-term tokens per layer. */
  stmSize: number;
  /** R = numLtmBlocks·K long-term tokens retrieved per layer per question. */
  retrieveSize: number;
  addBosEmbedding: boolean;
  addDecoderLora: boolean;
  lora: LoraConfig;
  dropMemoryPerLayer: boolean;
  updateLtmMode: 'immediate';
  updateLtmFrequency: number;
  decayFrequency: number;
  initialRfWhenMovingStmToLtm: number;
  ltmInitialSize: number;
  addSelector: boolean;
  selectorHiddenDim: number;
  numSelectorLayers: 1 | 2;
  /** Layers that carry a retriever; null = all. */
  selectorLayers: number[] | null;
  mapFromHiddenStates: boolean;
  detachHiddenState: boolean;
  addEncoderRetriever: boolean;
  /** The parsed JSON as written, for identity hashing. */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(readonly file: string, readonly obj: Json) {}

  private fail(key: string, msg: string): never {
    throw new CheckpointError(this.file, `key "${key}" ${msg}`, 'fix config.json or use the config shipped with the checkpoint');
  }

  int(key: string, def?: number, min = 0): number {
    const v = this.obj[key] ?? def;
    if (v === undefined) this.fail(key, 'is missing');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  }

  num(key: string, def?: number, positive = false): number {
    const v = this.obj[key] ?? def;
    if (v === undefined) this.fail(key, 'is missing');
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) this.fail(key, `must be a ${positive ? 'positive ' : ''}number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.obj[key] ?? def;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str<T extends string>(key: string, def: T, allowed: readonly T[]): T {
    const v = this.obj[key] ?? def;
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.fail(key, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  sub(key: string): Reader | null {
    const v = this.obj[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'must be an object');
    return new Reader(this.file, v as Json);
  }
}

export function parseConfig(obj: unknown, file = 'config.json'): MPlusConfig {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new CheckpointError(file, 'is not a JSON object');
  const r = new Reader(file, obj as Json);
  const hiddenSize = r.int('hidden_size', undefined, 1);
  const numHeads = r.int('num_attention_heads', undefined, 1);
  const numKvHeads = r.int('num_key_value_heads', numHeads, 1);
  const headDim = r.int('head_dim', hiddenSize / numHeads, 1);
  if (numHeads % numKvHeads !== 0) {
    throw new CheckpointError(file, `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 2 !== 0) throw new CheckpointError(file, `head_dim ${headDim} must be even for RoPE`);

  const rs = r.sub('rope_scaling');
  let ropeScaling: RopeScaling = { ropeType: 'default', factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPositionEmbeddings: 0 };
  if (rs) {
    const type = (rs.obj.rope_type ?? rs.obj.type) as string;
    if (type !== 'llama3' && type !== 'default') {
      throw new CheckpointError(file, `rope_scaling.rope_type ${JSON.stringify(type)} is not supported (llama3 or default)`);
    }
    ropeScaling = type === 'llama3'
      ? {
        ropeType: 'llama3',
        factor: rs.num('factor', undefined, true),
        lowFreqFactor: rs.num('low_freq_factor', undefined, true),
        highFreqFactor: rs.num('high_freq_factor', undefined, true),
        originalMaxPositionEmbeddings: rs.int('original_max_position_embeddings', undefined, 1),
      }
      : ropeScaling;
    if (ropeScaling.ropeType === 'llama3' && ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor) {
      throw new CheckpointError(file, 'rope_scaling.high_freq_factor must exceed low_freq_factor');
    }
  }

  const lc = r.sub('lora_config');
  const lora: LoraConfig = {
    r: lc ? lc.int('r', 8, 1) : 8,
    loraAlpha: lc ? lc.num('lora_alpha', 8, true) : 8,
    loraDropout: lc ? lc.num('lora_dropout', 0) : 0,
    targetModules: (lc?.obj.target_modules as string[] | undefined) ?? ['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj', 'down_proj'],
    inferenceMode: lc ? lc.bool('inference_mode', true) : true,
  };
  if (!Array.isArray(lora.targetModules) || !lora.targetModules.every((m) => typeof m === 'string')) {
    throw new CheckpointError(file, 'lora_config.target_modules must be a list of module names');
  }
  const known = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  for (const m of lora.targetModules) {
    if (!known.includes(m)) throw new CheckpointError(file, `lora_config.target_modules names unknown module ${m}`);
  }

  const numTokens = r.int('num_tokens', 256, 1);
  const numBlocks = r.int('num_blocks', 50, 1);
  const numLtmBlocks = r.int('num_ltm_blocks', 10, 0);
  if (numLtmBlocks >= numBlocks) throw new CheckpointError(file, `num_ltm_blocks ${numLtmBlocks} must be below num_blocks ${numBlocks}`);
  const numLayers = r.int('num_hidden_layers', undefined, 1);
  const selectorLayersRaw = (obj as Json).selector_layers;
  let selectorLayers: number[] | null = null;
  if (selectorLayersRaw !== undefined && selectorLayersRaw !== null) {
    if (!Array.isArray(selectorLayersRaw) || !selectorLayersRaw.every((l) => Number.isInteger(l) && l >= 0 && l < numLayers)) {
      throw new CheckpointError(file, `selector_layers must list layer indices below ${numLayers}`);
    }
    selectorLayers = selectorLayersRaw as number[];
  }
  const nsl = r.int('num_selector_layers', 2, 1);
  if (nsl !== 1 && nsl !== 2) throw new CheckpointError(file, `num_selector_layers ${nsl} is not supported (1 or 2)`);
  const eos = (obj as Json).eos_token_id;
  const eosTokenIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!eosTokenIds.every((t) => Number.isInteger(t))) throw new CheckpointError(file, 'eos_token_id must be an integer or a list of integers');
  const bos = (obj as Json).bos_token_id;
  const act = r.str('hidden_act', 'silu', ['silu'] as const);
  const cfg: MPlusConfig = {
    vocabSize: r.int('vocab_size', undefined, 1),
    hiddenSize,
    intermediateSize: r.int('intermediate_size', undefined, 1),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: r.num('rms_norm_eps', 1e-6, true),
    ropeTheta: r.num('rope_theta', 10000, true),
    ropeScaling,
    maxPositionEmbeddings: r.int('max_position_embeddings', 2048, 1),
    hiddenAct: act,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    bosTokenId: typeof bos === 'number' ? bos : null,
    eosTokenIds: eosTokenIds as number[],
    torchDtype: r.str('torch_dtype', 'bfloat16', ['float32', 'bfloat16', 'float16'] as const),
    numTokens,
    numBlocks,
    numLtmBlocks,
    stmSize: (numBlocks - numLtmBlocks) * numTokens,
    retrieveSize: numLtmBlocks * numTokens,
    addBosEmbedding: r.bool('add_bos_embedding', true),
    addDecoderLora: r.bool('add_decoder_lora', true),
    lora,
    dropMemoryPerLayer: r.bool('drop_memory_per_layer', true),
    updateLtmMode: r.str('update_ltm_mode', 'immediate', ['immediate'] as const),
    updateLtmFrequency: r.int('update_ltm_frequency', 60, 1),
    decayFrequency: r.num('decay_frequency', 1),
    initialRfWhenMovingStmToLtm: r.num('initial_rf_when_moving_stm_to_ltm', 10),
    ltmInitialSize: r.int('ltm_initial_size', 0, 0),
    addSelector: r.bool('add_selector', true),
    selectorHiddenDim: r.int('selector_hidden_dim', 256, 1),
    numSelectorLayers: nsl,
    selectorLayers,
    mapFromHiddenStates: r.bool('map_from_hidden_states', true),
    detachHiddenState: r.bool('detach_hidden_state', true),
    addEncoderRetriever: r.bool('add_encoder_retriever', false),
    raw: obj as Json,
  };
  if (!cfg.mapFromHiddenStates && cfg.addSelector) {
    throw new CheckpointError(file, 'map_from_hidden_states=false (retriever over q/k) is not supported', 'use an M+ checkpoint with map_from_hidden_states=true');
  }
  return cfg;
}

export function loadConfig(file: string): MPlusConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(file, `cannot read: ${(e as Error).message}`, 'point the model path at a checkpoint folder with config.json');
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `is not valid JSON: ${(e as Error).message}`, 'fix config.json or use the config shipped with the checkpoint');
  }
  return parseConfig(obj, file);
}

/** Does layer l carry a retriever (query/key projectors)? */
export function hasSelector(cfg: MPlusConfig, layer: number): boolean {
  return cfg.addSelector && (cfg.selectorLayers === null || cfg.selectorLayers.includes(layer));
}
