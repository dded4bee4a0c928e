/**
 * The checkpoint's tokenizer, from its `tokenizer.json` (and `tokenizer_config.json` beside it),
 * through @huggingface/tokenizers (a maintained pure-JS implementation of HF tokenizers).
 *
 * For Llama 3.1: byte-level BPE, vocabulary 128,256, specials <|begin_of_text|> 128000,
 * <|end_of_text|> 128001, <|eom_id|> 128008, <|eot_id|> 128009, header markers 128006/128007.
 * encode() adds nothing unless asked (the engine places bos where the spec says); chatPrompt()
 * writes the Llama-3.1 chat format by hand from the tokenizer's own special ids.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Tokenizer as HfTokenizer } from '@huggingface/tokenizers' with { 'resolution-mode': 'import' };
import { CheckpointError } from './safetensors';

export interface StreamDecoder {
  /** Text completed by this token (may be '' while a multi-byte character is incomplete). */
  push(id: number): string;
  /** Whatever is left (an incomplete character decodes as U+FFFD). */
  flush(): string;
}

// The package is ESM-typed but ships a CommonJS build for Node's require (its "exports" map).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (json: object, config: object) => HfTokenizer };

const STOP_NAMES = ['<|eot_id|>', '<|end_of_text|>', '<|eom_id|>', '</s>', '<|endoftext|>'];

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(file, `cannot read the ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      'Point --model at a checkpoint folder that contains tokenizer.json (as downloaded from Hugging Face)');
  }
  try {
    const j = JSON.parse(text) as unknown;
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not an object');
    return j as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(file, `the ${what} is not valid JSON (${(e as Error).message})`, 'Download the file again; it is damaged or truncated');
  }
}

function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

export class TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  private readonly headerStart: number | null;
  private readonly headerEnd: number | null;
  private readonly eot: number | null;

  private constructor(private readonly tok: HfTokenizer, readonly file: string, config: Record<string, unknown>) {
    const id = (name: string | null) => (name === null ? null : tok.token_to_id(name) ?? null);
    this.vocabSize = tok.get_vocab(true).size;
    this.bosId = id(tokenName(config.bos_token)) ?? id('<|begin_of_text|>') ?? id('<s>');
    const eos = new Set<number>();
    const cfgEos = id(tokenName(config.eos_token));
    if (cfgEos !== null) eos.add(cfgEos);
    for (const n of STOP_NAMES) {
      const x = id(n);
      if (x !== null) eos.add(x);
    }
    this.eosIds = [...eos].sort((a, b) => a - b);
    this.headerStart = id('<|start_header_id|>');
    this.headerEnd = id('<|end_header_id|>');
    this.eot = id('<|eot_id|>');
  }

  static async fromFile(tokenizerJsonPath: string): Promise<TextTokenizer> {
    const json = readJson(tokenizerJsonPath, 'tokenizer (tokenizer.json)');
    if (!json.model || typeof json.model !== 'object') {
      throw new CheckpointError(tokenizerJsonPath, 'has no "model" section: not a Hugging Face tokenizers file', 'Use the tokenizer.json that ships with the checkpoint');
    }
    const cfgPath = path.join(path.dirname(tokenizerJsonPath), 'tokenizer_config.json');
    const config = fs.existsSync(cfgPath) ? readJson(cfgPath, 'tokenizer config (tokenizer_config.json)') : {};
    let tok: HfTokenizer;
    try {
      tok = new Tokenizer(json, config);
    } catch (e) {
      throw new CheckpointError(tokenizerJsonPath, `unsupported tokenizer (${(e as Error).message})`, 'M+ checkpoints use the Llama-3.1 byte-level BPE tokenizer; use the file shipped with the checkpoint');
    }
    return new TextTokenizer(tok, tokenizerJsonPath, config);
  }

  static fromDir(checkpointDir: string): Promise<TextTokenizer> {
    return TextTokenizer.fromFile(path.join(checkpointDir, 'tokenizer.json'));
  }

  encode(text: string, opts: { bos?: boolean } = {}): number[] {
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    return opts.bos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    if (!ids.length) return ''; // the library rejects an empty list
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  countTokens(text: string): number {
    return this.tok.encode(text, { add_special_tokens: false }).ids.length;
  }

  /**
   * Incremental decoding: tokens are held until they decode to complete characters (byte-level
   * BPE splits one UTF-8 character over several tokens; a partial one decodes as U+FFFD).
   */
  streamDecoder(opts: { skipSpecial?: boolean } = {}): StreamDecoder {
    let pending: number[] = [];
    return {
      push: (id) => {
        pending.push(id);
        const text = this.decode(pending, opts);
        // Hold while the tail is an incomplete character (at most 4 bytes = 4 tokens).
        if (text.endsWith('\uFFFD') && pending.length < 4) return '';
        pending = [];
        return text;
      },
      flush: () => {
        const text = pending.length ? this.decode(pending, opts) : '';
        pending = [];
        return text;
      },
    };
  }

  /** A Llama-3.1 chat prompt for one user turn, ending with the assistant header (no bos). */
  chatPrompt(question: string, system?: string): number[] {
    if (this.headerStart === null || this.headerEnd === null || this.eot === null) {
      throw new CheckpointError(this.file, 'has no Llama-3 chat header tokens (<|start_header_id|>, <|end_header_id|>, <|eot_id|>)', 'Use the Llama-3.1 tokenizer.json that ships with the M+ checkpoint');
    }
    const turn = (role: string, text: string | null): number[] => [
      this.headerStart!, ...this.encode(role), this.headerEnd!, ...this.encode('\n\n' + (text ?? '')), ...(text === null ? [] : [this.eot!]),
    ];
    return [...(system ? turn('system', system) : []), ...turn('user', question), ...turn('assistant', null)];
  }
}
