"""benchfacts: the retention bench's one-line facts through the trainer, by place in the feed."""
import random
import unittest

import torch

from training.mplus import benchfacts
from training.mplus.config import preset
from training.mplus.data import Corpus
from training.mplus.model import MPlus
from training.tests.srcdata import SrcDataCase


class BenchFactsTest(SrcDataCase):
    def test_facts_are_drawn_as_the_bench_draws_them(self):
        fs = benchfacts.draw(random.Random(3), 5)
        self.assertEqual(len({n for n, _, _ in fs}), 5)
        for name, value, path in fs:
            self.assertRegex(name, r'^([A-Z]{4,9})_([A-Z]{4,9})$')
            self.assertTrue(0 <= int(value) < 1_000_000)
            self.assertEqual(path.split('/')[-1], name.lower() + '.ts')
        self.assertEqual(fs, benchfacts.draw(random.Random(3), 5))

    def test_every_place_is_asked_every_round_and_padding_fills_k(self):
        tok = Corpus(self.data).tok
        torch.manual_seed(0)
        m = MPlus(preset('smoke', tok.vocab_size, tok.bos, tok.eos)).eval()
        res = benchfacts.by_place(m, tok, 3, 2)
        self.assertEqual({p: len(v) for p, v in res.items()}, {0: 2, 1: 2, 2: 2})
        self.assertTrue(all(isinstance(x, bool) for v in res.values() for x in v))
        lengths = []
        inject = m.inject
        m.inject = lambda mem, x, **kw: (lengths.append(x.shape[1]), inject(mem, x, **kw))[1]
        benchfacts.by_place(m, tok, 2, 1, pad_to=200)
        self.assertEqual(lengths, [200, 200])


if __name__ == '__main__':
    unittest.main()
