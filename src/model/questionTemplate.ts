/**
 * The checkpoint's own question prompt. A checkpoint trained with its own prompt format ships
 * `question_template.txt` beside config.json: plain text with one `{question}` where the question
 * goes, encoded as-is (no bos: M+ has its own bos_embedding). Without the file the checkpoint is
 * prompted in the Llama-3.1 chat format, as mplus-8b expects.
 */
import * as path from 'path';
import { CheckpointError } from './safetensors';
import { readSideFile } from './sideFile';
import { TextTokenizer } from './tokenizer';

export const QUESTION_TEMPLATE_FILE = 'question_template.txt';
const SLOT = '{question}';

/** The template text, or null when the checkpoint has none. Throws naming a malformed file. */
export function loadQuestionTemplate(checkpointDir: string): string | null {
  const file = path.join(checkpointDir, QUESTION_TEMPLATE_FILE);
  const text = readSideFile(file, 'fix its permissions or remove it to use the Llama-3.1 chat format');
  if (text === null) return null;
  if (text.split(SLOT).length !== 2) {
    throw new CheckpointError(file, `must contain ${SLOT} exactly once`, 'use the template exported with the checkpoint');
  }
  return text;
}

/** Token ids of the prompt for one question (template when given, else Llama-3.1 chat). */
export function questionPrompt(tok: TextTokenizer, template: string | null, question: string, system: string): number[] {
  return template === null ? tok.chatPrompt(question, system) : tok.encode(template.replace(SLOT, question));
}
