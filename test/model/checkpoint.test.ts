/**
 * Malformed checkpoints fail fast, at open, with a message naming the damaged file and the
 * problem: each case damages a freshly written fixture (the real Hugging Face layout) one way.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Checkpoint } from '../../src/model/checkpoint';
import { writeFixture } from '../../tools/fixture';
import { CheckpointError } from '../../src/model/safetensors';
import { rmDir, tmpDir } from '../helpers/tmp';

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;

/** Rewrites a safetensors file's JSON header with `mutate`, keeping the data bytes as they are. */
function rewriteHeader(file: string, mutate: (h: Header) => void, data?: (d: Buffer) => Buffer): void {
  const b = fs.readFileSync(file);
  const hl = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + hl).toString('utf8')) as Header;
  mutate(h);
  const hb = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  fs.writeFileSync(file, Buffer.concat([len, hb, (data ?? ((d) => d))(b.subarray(8 + hl))]));
}

function expectError(dir: string, file: string, problem: RegExp): void {
  assert.throws(() => Checkpoint.open(dir).close(), (e: Error) => {
    assert.ok(e instanceof CheckpointError, `${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.includes(file), `message names ${file}: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

describe('malformed checkpoints fail fast, naming the file and the problem', () => {
  let dir: string;
  const shard = () => path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()[0]);
  const tensorIn = (file: string, pick: (name: string) => boolean) => {
    const b = fs.readFileSync(file);
    const h = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8')) as Header;
    return Object.keys(h).filter((n) => n !== '__metadata__').find(pick)!;
  };
  beforeEach(() => {
    dir = tmpDir('ckpt');
    writeFixture({ out: dir, preset: 'tiny', seed: 1, dtype: 'f32' });
  });
  afterEach(() => rmDir(dir));

  it('opens the undamaged fixture: f32, bf16, single file and sharded', () => {
    Checkpoint.open(dir).close();
    for (const dtype of ['f32', 'bf16'] as const) {
      const d = tmpDir('ckpt-ok');
      try {
        writeFixture({ out: d, preset: 'tiny', seed: 2, dtype, shardBytes: 64 * 1024 });
        assert.ok(fs.existsSync(path.join(d, 'model.safetensors.index.json')));
        const c = Checkpoint.open(d);
        assert.strictEqual(c.config.numLayers, 3);
        c.close();
      } finally {
        rmDir(d);
      }
    }
  });

  it('a truncated shard', () => {
    const f = shard();
    fs.truncateSync(f, fs.statSync(f).size - 100);
    expectError(dir, path.basename(f), /truncated|beyond|cover/);
  });

  it('a file too short or with a header length larger than the file', () => {
    const f = shard();
    fs.writeFileSync(f, Buffer.from([1, 2, 3]));
    expectError(dir, path.basename(f), /too short/);
    const big = Buffer.alloc(64);
    big.writeBigUInt64LE(10_000n);
    fs.writeFileSync(f, big);
    expectError(dir, path.basename(f), /header length 10000 does not fit/);
  });

  it('a header lying about sizes: offsets beyond the data, overlapping tensors, byte count ≠ shape', () => {
    const f = shard();
    const name = tensorIn(f, (n) => /embed_tokens/.test(n));
    const orig = fs.readFileSync(f);
    rewriteHeader(f, (h) => {
      const t = h[name] as { data_offsets: [number, number] };
      t.data_offsets = [t.data_offsets[0] + 1e9, t.data_offsets[1] + 1e9];
    });
    expectError(dir, path.basename(f), /beyond the \d+-byte data section/);
    fs.writeFileSync(f, orig);
    rewriteHeader(f, (h) => {
      const entries = Object.entries(h).filter(([n]) => n !== '__metadata__') as Array<[string, { data_offsets: [number, number] }]>;
      entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
      const [, second] = entries[1];
      const len = second.data_offsets[1] - second.data_offsets[0];
      second.data_offsets = [second.data_offsets[0] - 4, second.data_offsets[0] - 4 + len];
    });
    expectError(dir, path.basename(f), /overlaps/);
    fs.writeFileSync(f, orig);
    rewriteHeader(f, (h) => {
      const t = h[name] as { shape: number[] };
      t.shape = [t.shape[0], t.shape[1] + 1];
    });
    expectError(dir, path.basename(f), /needs \d+/);
  });

  it('a tensor with the wrong shape (bytes consistent, shape disagrees with config.json)', () => {
    const f = shard();
    const name = tensorIn(f, (n) => /layers\.0\.mlp\.up_proj\.base_layer\.weight$/.test(n) || /layers\.0\.mlp\.up_proj\.weight$/.test(n));
    assert.ok(name, 'fixture has layer 0 up_proj');
    rewriteHeader(f, (h) => {
      const t = h[name] as { shape: number[] };
      t.shape = [t.shape[1], t.shape[0]]; // transposed: same bytes, wrong shape
    });
    expectError(dir, path.basename(f), new RegExp(`${name.replace(/\./g, '\\.')} has shape .* but config\\.json implies`));
  });

  it('a missing tensor, and an unsupported dtype', () => {
    const f = shard();
    const name = tensorIn(f, (n) => /layers\.1\.self_attn\.o_proj/.test(n));
    const orig = fs.readFileSync(f);
    rewriteHeader(f, (h) => {
      // Remove the tensor but keep the data section covered: give its bytes to a padding entry.
      const t = h[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      delete h[name];
      h.padding_not_a_weight = { dtype: 'U8', shape: [t.data_offsets[1] - t.data_offsets[0]], data_offsets: t.data_offsets };
    });
    expectError(dir, dir, new RegExp(`missing tensors: .*${name.replace(/\./g, '\\.')}`));
    fs.writeFileSync(f, orig);
    rewriteHeader(f, (h) => {
      (h[name] as { dtype: string }).dtype = 'F8_E4M3';
    });
    expectError(dir, path.basename(f), /unsupported dtype "F8_E4M3"/);
  });

  it('config.json: not JSON, not an object, a missing key, a bad value, an unsupported RoPE type', () => {
    const cfg = path.join(dir, 'config.json');
    const orig = JSON.parse(fs.readFileSync(cfg, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(cfg, '{"hidden_size": 64,');
    expectError(dir, 'config.json', /not valid JSON/);
    fs.writeFileSync(cfg, '[1, 2]');
    expectError(dir, 'config.json', /not a JSON object/);
    const { hidden_size: _dropped, ...noHidden } = orig;
    fs.writeFileSync(cfg, JSON.stringify(noHidden));
    expectError(dir, 'config.json', /key "hidden_size" is missing/);
    fs.writeFileSync(cfg, JSON.stringify({ ...orig, num_key_value_heads: 3 }));
    expectError(dir, 'config.json', /not a multiple of num_key_value_heads 3/);
    fs.writeFileSync(cfg, JSON.stringify({ ...orig, rope_scaling: { rope_type: 'yarn', factor: 8 } }));
    expectError(dir, 'config.json', /rope_type "yarn" is not supported/);
    fs.rmSync(cfg);
    expectError(dir, 'config.json', /cannot read/);
  });

  it('an index naming a shard that does not exist, or a tensor the shard lacks', () => {
    const d = tmpDir('ckpt-sharded');
    try {
      writeFixture({ out: d, preset: 'tiny', seed: 3, dtype: 'f32', shardBytes: 64 * 1024 });
      const idx = path.join(d, 'model.safetensors.index.json');
      const orig = JSON.parse(fs.readFileSync(idx, 'utf8')) as { weight_map: Record<string, string> };
      const first = Object.keys(orig.weight_map)[0];
      fs.writeFileSync(idx, JSON.stringify({ ...orig, weight_map: { ...orig.weight_map, [first]: 'model-99-of-99.safetensors' } }));
      expectError(d, 'model.safetensors.index.json', /names shard model-99-of-99\.safetensors, which does not exist/);
      const other = Object.values(orig.weight_map).find((s) => s !== orig.weight_map[first])!;
      fs.writeFileSync(idx, JSON.stringify({ ...orig, weight_map: { ...orig.weight_map, [first]: other } }));
      expectError(d, 'model.safetensors.index.json', /that shard does not hold it/);
      fs.writeFileSync(idx, JSON.stringify({ ...orig, weight_map: { ...orig.weight_map, [first]: '../../etc/passwd' } }));
      expectError(d, 'model.safetensors.index.json', /outside the checkpoint directory/);
    } finally {
      rmDir(d);
    }
  });
});
