/**
 * Which checkpoint a client starts the sidecar with: a configured one always wins (the CLI's
 * `--model` or MPLUS_MODEL; the extension's `mplus.modelPath`), otherwise the checkpoint bundled
 * with the product in `models/mplus-lookup/` (in the repository and in the .vsix), when present.
 * Without either the caller keeps its "no model" behaviour.
 *
 * Lives beside the protocol (not in src/model) because it is a client-side choice shared by the
 * CLI and the extension, both of which may import src/sidecar's plain modules; it reads only the
 * file system.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The bundled checkpoint, relative to the package root. */
export const BUNDLED_MODEL = path.join('models', 'mplus-lookup');
/** Optional one-line description of a checkpoint, shown to the user beside its path. */
export const MODEL_LABEL_FILE = 'label.txt';
/** What the bundled checkpoint is called when its folder has no label file. */
export const BUNDLED_MODEL_LABEL = 'a small model for lookup questions';

/** The package root: out/src/sidecar/ → three levels up (the same in the repository and the .vsix). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

export interface ResolvedModel {
  dir: string;
  /** Where the choice came from. */
  from: 'configured' | 'bundled';
  /** The checkpoint's label file, or for the bundled one its known name; null when neither. */
  label: string | null;
}

/** First non-empty line of DIR/label.txt, or null. */
export function modelLabel(dir: string): string | null {
  try {
    const line = fs.readFileSync(path.join(dir, MODEL_LABEL_FILE), 'utf8').split('\n').map((x) => x.trim()).find((x) => x);
    return line ? line.slice(0, 120) : null;
  } catch {
    return null; // no label file: the path is the description
  }
}

/** The bundled checkpoint folder when it holds a checkpoint (config.json), else null. */
export function bundledModel(root = PACKAGE_ROOT): string | null {
  const dir = path.join(root, BUNDLED_MODEL);
  return fs.existsSync(path.join(dir, 'config.json')) ? dir : null;
}

/**
 * `configured` is the first of the caller's sources that is set (flag, environment, setting);
 * empty strings count as unset. Returns null when nothing is configured and nothing is bundled.
 */
export function resolveModel(configured: Array<string | undefined | null>, root = PACKAGE_ROOT): ResolvedModel | null {
  const chosen = configured.map((x) => x?.trim()).find((x) => x);
  if (chosen) return { dir: path.resolve(chosen), from: 'configured', label: modelLabel(chosen) };
  const dir = bundledModel(root);
  return dir ? { dir, from: 'bundled', label: modelLabel(dir) ?? BUNDLED_MODEL_LABEL } : null;
}
