/**
 * What a checkpoint occupies in memory once the engine has loaded it at a precision — the number
 * a requirements check compares with the machine's memory, which the checkpoint's file size is
 * not: at int8/int4 the linear weights are held packed (weightCache.ts's layout, through
 * MatMulNBits), while at f32 and bf16 every float weight is widened to float32 (ORT folds the
 * in-graph cast once at session creation, also for a bf16 file). Everything else the engine reads
 * as float32: norms, LoRA adapters and a linear weight that could not be quantized (their cast is
 * folded too), Θ's shipped keys and bookkeeping, positional and BOS embeddings — except the memory
 * rows (θ and Θ's shipped values, `memoryRows`), which the sidecar's store keeps on disk and reads
 * per question and injection (store/segmentedRows.ts): they are reported, in the model's state
 * format, but not part of `total`. Not held at all: the token embedding table (its rows are read
 * from the file per token, MPlusEngine.embed) and tensors the engine never reads
 * (unusedAtInference). After the first question the engine also keeps θ's keys/values
 * (MPlusEngine.thetaKv) in its K/V format (kvFormatOf: float16 for a bf16 checkpoint).
 */
import { Checkpoint } from '../../model/checkpoint';
import { unusedAtInference } from '../../model/tensorNames';
import { kvBytes, kvFormatOf, stateFormatOf } from '../stateFormat';
import { Precision, defaultBlock } from './precision';
import { linearLayout, linearWeightNames } from './weightCache';

export interface ResidentBytes {
  /** Linear weights (decoder, retriever projections, lm_head) as held. */
  linear: number;
  /** θ and Θ's shipped values, in the state format: on disk in the sidecar's store, not in `total`. */
  memoryRows: number;
  /** Every other tensor the engine holds, as float32. */
  other: number;
  /** θ's keys/values, kept between questions: layers × θ rows × 2 × kv heads × head dim. */
  thetaKv: number;
  total: number;
}

export function residentBytes(ckpt: Checkpoint, precision: Precision, block = defaultBlock(precision)): ResidentBytes {
  const linearNames = new Set(linearWeightNames(ckpt));
  const rowNames = new Set([ckpt.weights.memory, ...(ckpt.weights.ltm?.map((t) => t.values) ?? [])]);
  const rowBytes = stateFormatOf(ckpt.config) === 'bf16' ? 2 : 4;
  let linear = 0;
  let memoryRows = 0;
  let other = 0;
  for (const name of ckpt.files.names()) {
    const t = ckpt.files.info(name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const f32 = n * 4;
    if (rowNames.has(name)) {
      memoryRows += n * rowBytes;
    } else if (linearNames.has(name)) {
      const lay = linearLayout(t.dtype, t.shape, precision, block);
      linear += lay.kind === 'nbits' ? lay.blobBytes + lay.scaleBytes : f32;
    } else if (name !== ckpt.weights.embed && !unusedAtInference(name)) {
      other += f32;
    }
  }
  const c = ckpt.config;
  const thetaKv = c.numLayers * c.stmSize * 2 * c.numKvHeads * c.headDim * kvBytes(kvFormatOf(c));
  return { linear, memoryRows, other, thetaKv, total: linear + other + thetaKv };
}
