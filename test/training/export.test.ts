/**
 * The trainer (training/, PyTorch) and the product agree on an exported checkpoint: the export
 * command writes mplus-8b's layout, then runs the trainer's forward and `mplus trace` — the real
 * CLI in its own process — on an ops script with Θ merges and retrieval, and refuses to write a
 * checkpoint where logits differ beyond 1e-4 relative or any retrieved index differs. Here the
 * product also opens the folder itself and its tokenizer round-trips text byte for byte.
 *
 * Needs Debian's python3-torch (.ci/run installs it); MPLUS_ALLOW_NO_TORCH=1 skips.
 */
import * as assert from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Checkpoint } from '../../src/model/checkpoint';
import { TextTokenizer } from '../../src/model/tokenizer';
import { REPO_ROOT, rmDir, tmpDir } from '../helpers/tmp';

const PY = '/usr/bin/python3';

function hasTorch(): boolean {
  return spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
}

describe('training export', function () {
  let dir: string;
  before(function () {
    if (!hasTorch()) {
      if (process.env.MPLUS_ALLOW_NO_TORCH) this.skip();
      assert.fail(`${PY} cannot import torch: apt-get install python3-torch python3-numpy libopenblas0-pthread (or MPLUS_ALLOW_NO_TORCH=1 to skip)`);
    }
    dir = tmpDir('train-export');
  });
  after(() => dir && rmDir(dir));

  it('exports a checkpoint that mplus trace agrees with, in the product layout', async () => {
    const out = path.join(dir, 'ckpt');
    const r = spawnSync(PY, ['-m', 'training.mplus.export', '--init', 'smoke', '--seed', '11', '--out', out], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.strictEqual(r.status, 0, `export failed:\n${r.stdout}\n${r.stderr}`);
    assert.ok(!fs.existsSync(out + '.partial'));
    const ck = Checkpoint.open(out);
    try {
      assert.deepStrictEqual(ck.report.unexpected.filter((n) => !n.includes('encoder_query_proj')), []);
      // PEFT layout: every LoRA target keeps base_layer + both adapters; o_proj is no target.
      assert.deepStrictEqual(ck.weights.merged.filter((m) => !m.endsWith('.o_proj')), []);
      assert.ok(ck.weights.layers.every((l) => l.q.lora.default && l.q.lora.decoder_adapter));
      assert.ok(ck.weights.ltm, 'Θ ships with the checkpoint');
    } finally {
      ck.close();
    }
    const tok = await TextTokenizer.fromDir(out);
    const text = '// file: src/a.ts — FOO\nexport const FOO = "héllo ✓";\n';
    const ids = tok.encode(text);
    assert.deepStrictEqual(ids, [...Buffer.from(text, 'utf8')], 'byte-level: token id = byte');
    assert.strictEqual(tok.decode(ids), text);
    assert.deepStrictEqual(tok.eosIds, [257]);
    assert.strictEqual(fs.readFileSync(path.join(out, 'question_template.txt'), 'utf8'), 'Q: {question}\nA: ');
  });

  it('the sidecar asks in the checkpoint\'s own template (a byte-level tokenizer has no chat headers)', function () {
    this.timeout(300000);
    const out = path.join(dir, 'ckpt');
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo, { recursive: true });
    fs.writeFileSync(path.join(repo, 'a.ts'), 'export const LIMIT = 42;\nexport function helper() { return LIMIT; }\n');
    const bin = path.join(REPO_ROOT, 'bin', 'mplus.js');
    const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 240000 });
    const store = path.join(dir, 'store');
    const ing = cli(['ingest', '--model', out, '--store', store, '--device', 'cpu', repo]);
    assert.strictEqual(ing.status, 0, ing.stderr);
    const ask = cli(['ask', '--model', out, '--store', store, '--repo', repo, '--device', 'cpu', '--max-tokens', '4', 'What is the value of LIMIT?']);
    assert.strictEqual(ask.status, 0, ask.stderr);
    // Without the template the same checkpoint falls back to chat format, which its tokenizer cannot write.
    fs.renameSync(path.join(out, 'question_template.txt'), path.join(dir, 'template.bak'));
    try {
      const chat = cli(['ask', '--model', out, '--store', store, '--repo', repo, '--device', 'cpu', '--max-tokens', '4', 'What is the value of LIMIT?']);
      assert.notStrictEqual(chat.status, 0);
      assert.match(chat.stderr, /chat header tokens/);
    } finally {
      fs.renameSync(path.join(dir, 'template.bak'), path.join(out, 'question_template.txt'));
    }
  });

  it('verify reports a checkpoint the product cannot load, naming it', () => {
    const out = path.join(dir, 'broken');
    execFileSync(PY, ['-m', 'training.mplus.export', '--init', 'smoke', '--seed', '2', '--out', out], { cwd: REPO_ROOT, stdio: 'pipe' });
    const st = path.join(out, 'model.safetensors');
    fs.truncateSync(st, fs.statSync(st).size - 4096);
    const r = spawnSync(PY, ['-m', 'training.mplus.verify', '--model', out], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.notStrictEqual(r.status, 0);
    assert.match(r.stdout, /broken/);
  });
});
