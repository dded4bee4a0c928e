/**
 * Small graphs around the decoder layers:
 *  - retriever: for one layer, q = query_proj(input_layernorm(x)) and k = key_proj(…) [n, s]
 *    (Linear d→2s · SiLU · Linear 2s→s, or one Linear), MPLUS-SPEC "Retriever";
 *  - scores: mean over question rows of sigmoid(Q·keysᵀ) for every candidate [M] (no weights);
 *  - lm head: final RMSNorm then lm_head, logits in float32.
 */
import { MPlusConfig } from '../../model/config';
import { LayerWeights, ModelWeights } from '../../model/tensorNames';
import { GraphBuilder, OnnxDType } from '../onnx/builder';
import { WeightSource, matmulWeight, rmsNorm, silu, weight } from './common';

const F = OnnxDType.FLOAT;

export function buildRetrieverGraph(cfg: MPlusConfig, src: WeightSource, lw: LayerWeights, layer: number): Uint8Array {
  if (!lw.queryProj || !lw.keyProj) throw new Error(`layer ${layer} has no retriever`);
  const g = new GraphBuilder(`mplus_retriever_${layer}`);
  const x = g.input('x', F, ['n', cfg.hiddenSize]);
  const nx = rmsNorm(g, x, weight(g, src, lw.inputNorm, 'input_layernorm'), cfg.rmsNormEps, 'norm_x');
  const proj = (names: string[], hint: string) => {
    let h = matmulWeight(g, src, nx, names[0], `${hint}_h0`);
    if (names.length === 2) h = matmulWeight(g, src, silu(g, h, `${hint}_act`), names[1], `${hint}_h2`);
    return h;
  };
  g.output(proj(lw.queryProj, 'query_proj'), 'q', F, ['n', cfg.selectorHiddenDim]);
  g.output(proj(lw.keyProj, 'key_proj'), 'k', F, ['n', cfg.selectorHiddenDim]);
  return g.toBytes();
}

export function buildScoresGraph(keyDim: number): Uint8Array {
  const g = new GraphBuilder('mplus_scores');
  const q = g.input('q', F, ['m', keyDim]);
  const keys = g.input('keys', F, ['M', keyDim]);
  const logits = g.op('MatMul', [q, g.op('Transpose', [keys], { perm: [1, 0] })], {}, 'qk');
  const mean = g.op('ReduceMean', [g.op('Sigmoid', [logits])], { axes: [0], keepdims: 0 }, 'score');
  g.output(mean, 'scores', F, ['M']);
  return g.toBytes();
}

export function buildLmHeadGraph(cfg: MPlusConfig, src: WeightSource, w: ModelWeights): Uint8Array {
  const g = new GraphBuilder('mplus_lm_head');
  const x = g.input('x', F, ['n', cfg.hiddenSize]);
  const nx = rmsNorm(g, x, weight(g, src, w.norm, 'norm'), cfg.rmsNormEps, 'final_norm');
  g.output(matmulWeight(g, src, nx, w.lmHead, 'logits'), 'logits', F, ['n', cfg.vocabSize]);
  return g.toBytes();
}
