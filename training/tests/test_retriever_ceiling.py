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
from training.mplus.train import FACT_CONTEXT
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

    def test_leaves_the_fact_context_out(self):
        s = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
        with_ctx = rc.rank_loss(s, torch.tensor([[0, 3, FACT_CONTEXT, 1]]))
        self.assertAlmostEqual(float(with_ctx), float(rc.rank_loss(s[:, [0, 1, 3]], torch.tensor([[0, 3, 1]]))), places=5)


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

    def test_span_positives_and_the_forced_read(self):
        corpus = Corpus(self.data)
        t = corpus.tok
        torch.manual_seed(0)
        m = MPlus(preset('smoke', t.vocab_size, t.bos, t.eos)).eval()
        R = m.c.retrieve_size
        # 16-token chunks (K 16): every token keeps its row, so the fact's tokens are always among them
        stage = Stage('t', 1, 16, (8, 8), True, fact_anywhere=True, fact_negatives=0.5, span_positives=True)
        answers = []
        sets = rc.collect(m, corpus, stage, 2, 4, random.Random(1), torch.Generator().manual_seed(1), answers)
        self.assertEqual(len(answers), 8)
        self.assertTrue(all(k in ('value', 'def') and isinstance(x, bool) and isinstance(y, bool) for k, x, y in answers))
        tags = torch.cat([p[4] for ps in sets for p in ps], 1)
        # The fact's chunk: the rows at its tokens, the rest (header, code around it) left out.
        self.assertGreater(int((tags == 0).sum()), 0)
        self.assertGreater(int((tags == FACT_CONTEXT).sum()), 0)
        # forced: every fact row in the R when they fit, the rest the best by score, oldest first.
        C = 3 * R
        mem = type('M', (), {'ltm_ages': [torch.arange(C, 0, -1).view(1, C)], 'cache_ages': [torch.zeros(1, 0, dtype=torch.long)]})
        scores = torch.rand(1, C, generator=torch.Generator().manual_seed(2))
        fact = torch.zeros(1, C, dtype=torch.bool)
        fact[0, [3, C - 1]] = True
        got = rc.forced(m, mem, 0, scores, fact)[0].tolist()
        rest = torch.nonzero(~fact[0])[:, 0]
        best = rest[scores[0, rest].topk(R - 2).indices].tolist()
        self.assertEqual(len(got), R)
        self.assertEqual(set(got), {3, C - 1} | set(best))
        self.assertEqual(got, sorted(got))  # ages fall with the index here: oldest first = ascending


if __name__ == '__main__':
    unittest.main()
