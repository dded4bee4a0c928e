/**
 * Select Model Folder's check, on a real fixture checkpoint (the Hugging Face layout, sharded)
 * damaged one way per case: each answer names the folder or file and says what to do.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { checkModelFolder } from '../../src/extension/download/modelFolder';
import { llama31TokenizerDir, writeFixture } from '../../tools/fixture';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('extension: checking a model folder before using it', () => {
  let root: string;
  let dir: string;
  beforeEach(() => {
    root = tmpDir('modelfolder');
    dir = path.join(root, 'mplus-tiny');
    writeFixture({ out: dir, preset: 'tiny', seed: 1, dtype: 'f32', shardBytes: 64 * 1024, tokenizerDir: llama31TokenizerDir() });
    if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  });
  afterEach(() => rmDir(root));

  const problem = (d = dir) => {
    const r = checkModelFolder(d);
    assert.strictEqual(r.ok, false, `expected a problem with ${d}`);
    return (r as { problem: string }).problem;
  };

  it('accepts a complete sharded checkpoint and sums its weights', () => {
    const r = checkModelFolder(dir);
    assert.ok(r.ok, JSON.stringify(r));
    const shards = fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors'));
    assert.ok(shards.length > 1, 'the fixture should be sharded');
    assert.strictEqual(r.weightsBytes, shards.reduce((s, n) => s + fs.statSync(path.join(dir, n)).size, 0));
  });

  it('a missing folder, or a file, is named', () => {
    assert.match(problem(path.join(root, 'nope')), /nope does not exist/);
    assert.match(problem(path.join(dir, 'config.json')), /is a file, not a folder/);
  });

  it('the parent of a model folder points at the subfolder', () => {
    assert.match(problem(root), /has no config\.json.*subfolder "mplus-tiny": pick that one/);
  });

  it('an empty folder suggests Download Model', () => {
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    assert.match(problem(empty), /has no config\.json.*Download Model/);
  });

  it('broken config.json, no weights, a missing shard, an unfinished download, no tokenizer', () => {
    const shards = fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();
    fs.renameSync(path.join(dir, shards[1]), path.join(root, shards[1]));
    assert.match(problem(), new RegExp(`missing 1 of ${shards.length} weight files \\(${shards[1].replace(/[.-]/g, '\\$&')}\\).*Download Model`));
    fs.renameSync(path.join(root, shards[1]), path.join(dir, `${shards[1]}.part`));
    assert.match(problem(), /unfinished download.*\.part.*Download Model/);
    fs.renameSync(path.join(dir, `${shards[1]}.part`), path.join(dir, shards[1]));
    assert.ok(checkModelFolder(dir).ok);

    fs.rmSync(path.join(dir, 'tokenizer.json'));
    assert.match(problem(), /no tokenizer\.json/);

    for (const s of shards) fs.rmSync(path.join(dir, s));
    assert.match(problem(), /no \.safetensors weights/);

    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": ');
    assert.match(problem(), /config\.json in .* is not valid JSON/);
  });
});
