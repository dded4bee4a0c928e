"""The BPE tokenizer: Python (training) and the product's @huggingface/tokenizers (inference)
cut every text into the same ids, and training it is deterministic."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from training.mplus import bpe

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
EDGES = ['const KALO_MIREN = 12345;\nQ: What is the value of KALO_MIREN?\nA: ', 'HTTPServer parseURL x2y 0x1f3a',
         'héllo wörld 😀 \u00a0x\ufeffy\f\v end  ', '   ', '\n\n\t  x', 'a' * 40, '', '1234567890']

NODE = r"""
const { Tokenizer } = require('@huggingface/tokenizers');
const fs = require('fs');
const [tj, texts] = process.argv.slice(1).map((p) => JSON.parse(fs.readFileSync(p, 'utf8')));
const t = new Tokenizer(tj, {});
console.log(JSON.stringify(texts.map((s) => t.encode(s, { add_special_tokens: false }).ids)));
"""


class BpeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='mplus-bpe-')
        src = []
        for d, _, files in os.walk(os.path.join(ROOT, 'src')):
            for f in sorted(files):
                if f.endswith('.ts'):
                    with open(os.path.join(d, f), encoding='utf-8') as fh:
                        src.append(fh.read())
        cls.texts = src
        cls.merges = bpe.train(src, 1200)
        cls.tok = bpe.BpeTokenizer(cls.merges)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_product_encodes_the_same_ids(self):
        texts = [t[:3000] for t in self.texts[:60]] + EDGES
        tj, tx = os.path.join(self.tmp, 'tokenizer.json'), os.path.join(self.tmp, 'texts.json')
        with open(tj, 'w') as f:
            json.dump(self.tok.tokenizer_json(), f, ensure_ascii=False)
        with open(tx, 'w') as f:
            json.dump(texts, f)
        out = subprocess.run(['node', '-e', NODE, tj, tx], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        for text, ids in zip(texts, json.loads(out)):
            self.assertEqual(ids, self.tok.encode(text), f'differs on {text[:80]!r}')

    def test_round_trip_and_offsets(self):
        for text in self.texts[:20] + EDGES:
            data = text.encode('utf-8')
            ids, offs = self.tok.encode_offsets(data)
            self.assertEqual(self.tok.decode(ids), text)
            self.assertEqual(offs, [sum(len(self.tok.bytes_of[i]) for i in ids[:k]) for k in range(len(ids))])

    def test_compresses_code_and_is_deterministic(self):
        n_bytes = sum(len(t.encode()) for t in self.texts)
        n_tok = sum(len(self.tok.encode(t)) for t in self.texts)
        self.assertGreater(n_bytes / n_tok, 2.0)
        self.assertEqual(bpe.train(self.texts, 1200), self.merges)


if __name__ == '__main__':
    unittest.main()
