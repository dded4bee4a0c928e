/**
 * Is this folder an M+ checkpoint the sidecar can open? A quick look before the setting is
 * written (the sidecar does the full check when it loads): what a checkpoint folder needs is
 * `config.json`, `tokenizer.json` and its `*.safetensors` weights — all shards when a
 * `model.safetensors.index.json` lists them. The answer is in plain words with the fix.
 */
import * as fs from 'fs';
import * as path from 'path';

export type FolderCheck = { ok: true; weightsBytes: number } | { ok: false; problem: string };

export function checkModelFolder(dir: string): FolderCheck {
  const bad = (problem: string): FolderCheck => ({ ok: false, problem });
  let names: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) return bad(`${dir} is a file, not a folder: pick the folder that holds config.json.`);
    names = fs.readdirSync(dir);
  } catch {
    return bad(`${dir} does not exist or cannot be read.`);
  }
  if (!names.includes('config.json')) {
    const sub = names.find((n) => fs.existsSync(path.join(dir, n, 'config.json')));
    return bad(`${dir} has no config.json, so it is not a model folder` +
      (sub ? `; the model seems to be in its subfolder "${sub}": pick that one.` : ': pick the folder that holds config.json and the .safetensors files, or get a model with Download Model…'));
  }
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('not an object');
  } catch (e) {
    return bad(`config.json in ${dir} is not valid JSON (${(e as Error).message}): download the model again.`);
  }
  const parts = names.filter((n) => n.endsWith('.part'));
  if (parts.length) {
    return bad(`${dir} holds an unfinished download (${parts[0]}): run Download Model… again to finish it.`);
  }
  const weights = names.filter((n) => n.endsWith('.safetensors'));
  if (!weights.length) {
    return bad(`${dir} has config.json but no .safetensors weights: the model is incomplete; download it again (Download Model… resumes).`);
  }
  if (names.includes('model.safetensors.index.json')) {
    let shards: string[];
    try {
      const idx = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
      shards = [...new Set(Object.values((idx?.weight_map ?? {}) as Record<string, string>))];
    } catch (e) {
      return bad(`model.safetensors.index.json in ${dir} is not valid JSON (${(e as Error).message}): download the model again.`);
    }
    const missing = shards.filter((s) => !names.includes(s));
    if (missing.length) {
      return bad(`${dir} is missing ${missing.length} of ${shards.length} weight files (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}): ` +
        'the download is incomplete; run Download Model… again to finish it.');
    }
  }
  if (!names.includes('tokenizer.json')) {
    return bad(`${dir} has no tokenizer.json, which M+ needs to read text: copy it from the model's repository, or use Download Model….`);
  }
  const weightsBytes = weights.reduce((s, n) => s + fs.statSync(path.join(dir, n)).size, 0);
  return { ok: true, weightsBytes };
}
