/**
 * The memory a model folder needs at a precision, for clients (the extension's requirements
 * check) that must know it before a sidecar runs — a model too big for the machine is exactly the
 * case where none starts. Reads only the checkpoint's config and tensor headers; loads no
 * ONNX Runtime. The arithmetic is the engine's (engine/quant/residentSize.ts).
 */
import { Checkpoint } from '../model/checkpoint';
import type { Precision } from '../engine/quant/precision';
import { residentBytes } from '../engine/quant/residentSize';

/** Bytes of `dir`'s model in memory at `precision`; null when the folder does not open as a checkpoint. */
export function modelResidentBytes(dir: string, precision: Precision): number | null {
  let ckpt: Checkpoint;
  try {
    ckpt = Checkpoint.open(dir);
  } catch {
    return null; // the caller says what is wrong with the folder (checkModelFolder), or the sidecar will
  }
  try {
    return residentBytes(ckpt, precision).total;
  } finally {
    ckpt.close();
  }
}
