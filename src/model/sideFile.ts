/**
 * A checkpoint's optional side file (question_template.txt, chunking.json): files a trained
 * checkpoint may ship beside config.json, whose absence means "as mplus-8b".
 */
import * as fs from 'fs';
import { CheckpointError } from './safetensors';

/** The file's text, or null when it does not exist; any other failure names the file and `fix`. */
export function readSideFile(file: string, fix: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CheckpointError(file, `cannot read (${(e as Error).message})`, fix);
  }
}
