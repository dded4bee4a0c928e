"""retriever_ceiling: it records the retriever's real inputs, its ranking loss is the positives'
softmax share, and fitting projectors to recorded problems raises their recall there."""
import math
import random
import unittest

import torch

from training.mplus import retriever_ceiling as rc
from training.mplus.config import preset
from training.mplus.data import Corpus, Stage
from training.mplus.model import MPlus
from training.tests.srcdata import SrcDataCase


class RankLossTest(unittest.TestCase):
    def test_is_minus_log_the_positives_share_and_skips_episodes_without_positives(self):
        s = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.4]])
        tags = torch.tensor([[0, 3, 0], [1, 2, 3]])  # the second episode has no positive
        z = s[0] / rc.TAU
        want = -math.log(float((z[0].exp() + z[2].exp()) / z.exp().sum()))
        self.assertAlmostEqual(float(rc.rank_loss(s, tags)), want, places=5)
        s.requires_grad_(True)
        rc.rank_loss(s, tags).backward()
        self.assertTrue(torch.isfinite(s.grad).all())
        self.assertEqual(s.grad[1].abs().sum().item(), 0.0)


class CeilingTest(SrcDataCase):
    def test_collects_the_retrievers_inputs_and_a_fit_raises_recall_on_its_problems(self):
        corpus = Corpus(self.data)
        t = corpus.tok
        torch.manual_seed(0)
        m = MPlus(preset('smoke', t.vocab_size, t.bos, t.eos)).eval()
        c = m.c
        stage = Stage('t', 1, 48, (8, 8), True, fact_anywhere=True, fact_negatives=0.5)
        sets = rc.collect(m, corpus, stage, 3, 4, random.Random(1), torch.Generator().manual_seed(1))
        self.assertNotIn('retrieve', m.__dict__)  # the recording wrapper is gone
        self.assertEqual(len(sets), 3)
        for problems in sets:
            self.assertEqual([p[0] for p in problems], list(range(c.num_layers)))
            for l, q_in, q_mask, rows, tags in problems:
                self.assertEqual(q_in.shape[:2], q_mask.shape)
                self.assertEqual(rows.shape[:2], tags.shape)
                self.assertEqual(rows.shape[2], c.hidden_size)
                self.assertGreater(rows.shape[1], c.retrieve_size)  # Θ + cache larger than R: scored
        self.assertTrue(any(bool((p[4] == 0).any()) for ps in sets for p in ps), 'some fact rows left θ')
        own = rc.projectors(m)
        l, q_in, q_mask, rows, tags = sets[0][1]
        self.assertEqual(rc.score(own[l], q_in, q_mask, rows)[2].shape, tags.shape)
        before = rc.recall(own, sets, c.retrieve_size)
        self.assertTrue(all(0.0 <= r <= 1.0 for r in before))
        fitted, losses = rc.fit(own, sets, 'rank', 150)
        after = rc.recall(fitted, sets, c.retrieve_size)
        self.assertLess(sum(losses[-20:]), sum(losses[:20]))
        self.assertGreater(sum(after), sum(before) + 0.05 * len(after), (before, after))
        self.assertEqual(rc.recall(own, sets, c.retrieve_size), before)  # the copies were fitted, not the model


if __name__ == '__main__':
    unittest.main()
