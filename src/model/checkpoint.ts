/**
 * A checkpoint directory opened and validated: config.json, tensors (single or sharded), the
 * logical weight map with shapes checked, and an identity (config hash + weight fingerprint)
 * that memory stores record so a store is never read with another model.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MPlusConfig, loadConfig } from './config';
import { TensorFiles } from './safetensors';
import { ModelWeights, NameReport, checkShapes, mapTensorNames } from './tensorNames';

export interface CheckpointIdentity {
  configHash: string;
  weightFingerprint: string;
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly config: MPlusConfig,
    readonly files: TensorFiles,
    readonly weights: ModelWeights,
    readonly report: NameReport,
  ) {}

  static open(dir: string): Checkpoint {
    const abs = path.resolve(dir);
    const config = loadConfig(path.join(abs, 'config.json'));
    const files = TensorFiles.open(abs);
    try {
      const { weights, report } = mapTensorNames(config, files);
      checkShapes(config, files, weights);
      return new Checkpoint(abs, config, files, weights, report);
    } catch (e) {
      files.close();
      throw e;
    }
  }

  /** Path of tokenizer.json if the checkpoint ships one. */
  get tokenizerPath(): string | null {
    const p = path.join(this.dir, 'tokenizer.json');
    return fs.existsSync(p) ? p : null;
  }

  identity(): CheckpointIdentity {
    const configHash = crypto.createHash('sha256').update(JSON.stringify(this.config.raw)).digest('hex');
    // Names, dtypes, shapes and a sample of each tensor's bytes: cheap (no full read of 16 GB) yet
    // any re-export, fine-tune or dtype change alters it.
    const h = crypto.createHash('sha256');
    for (const name of this.files.names().sort()) {
      const t = this.files.info(name);
      h.update(`${name}|${t.dtype}|${t.shape.join(',')}|`);
      h.update(this.files.readBytes(name, 0, Math.min(64, t.byteLength)));
    }
    return { configHash, weightFingerprint: h.digest('hex') };
  }

  close(): void {
    this.files.close();
  }
}
