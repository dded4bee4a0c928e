/**
 * The checkpoint's chunk budget (chunking.json): mplus-8b's without the file, the file's when
 * present, a malformed one refused naming the file. (test/sidecar/chunking.test.ts: the feeder.)
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CHUNKING_FILE, DEFAULT_CHUNKING, chunkMeasure, loadChunking } from '../../src/model/chunking';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('checkpoint chunking', () => {
  let dir: string;
  beforeEach(() => { dir = tmpDir('chunking'); });
  afterEach(() => rmDir(dir));
  const write = (dir: string, text: string) => fs.writeFileSync(path.join(dir, CHUNKING_FILE), text);

  it('no chunking.json: mplus-8b\'s 512 tokens, merged up to 128; a file: its own budget', () => {
    assert.deepStrictEqual(loadChunking(dir), DEFAULT_CHUNKING);
    assert.deepStrictEqual(DEFAULT_CHUNKING, { unit: 'tokens', max: 512, min: 128 });
    write(dir, '{"unit": "bytes", "max": 512, "min": 128}');
    const c = loadChunking(dir);
    assert.deepStrictEqual(c, { unit: 'bytes', max: 512, min: 128 });
    const tokens = (s: string) => s.split(' ').length;
    assert.strictEqual(chunkMeasure(c, tokens)('héllo wörld'), 13, 'UTF-8 bytes');
    assert.strictEqual(chunkMeasure(DEFAULT_CHUNKING, tokens)('héllo wörld'), 2, 'the tokenizer\'s count');
  });

  it('a malformed chunking.json is refused naming the file and what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"unit": "bytes", "max": 512', /is not JSON/],
      ['{"unit": "words", "max": 512, "min": 128}', /"unit" must be "tokens" or "bytes"/],
      ['{"unit": "tokens", "max": 1024, "min": 128}', /"max" must be an integer from 16 to 512/],
      ['{"unit": "bytes", "max": 8, "min": 4}', /"max" must be an integer from 16/],
      ['{"unit": "bytes", "max": 512, "min": 600}', /"min" must be an integer from 1 to "max"/],
    ];
    for (const [text, why] of cases) {
      write(dir, text);
      assert.throws(() => loadChunking(dir), (e: Error) => e.message.includes(path.join(dir, CHUNKING_FILE)) && why.test(e.message) && /remove it to chunk as mplus-8b/.test(e.message), text);
    }
  });

});
