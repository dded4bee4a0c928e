"""Stage.write_grad_all: every injection's write is trained through, not only the fact's."""
import dataclasses
import random

import torch

from training.mplus.config import preset
from training.mplus.data import Corpus, Stage, sample_batch
from training.mplus.model import MPlus
from training.mplus.train import episode_loss
from training.tests.srcdata import SrcDataCase


class WriteGradAllTest(SrcDataCase):
    def grads(self, stage: Stage, fact_last: bool):
        """(loss, the write adapter's gradient, the batch) for a fixed batch whose fact is fed last
        (or not), under stage."""
        c = Corpus(self.data)
        seed = 0
        while True:  # a batch whose fact sits where asked (fact_anywhere draws its place)
            b = sample_batch(c, 3, stage, random.Random(seed))
            if (b.fact_at == len(b.contexts) - 1) == fact_last:
                break
            seed += 1
        torch.manual_seed(0)
        m = MPlus(preset('smoke', c.tok.vocab_size, c.tok.bos, c.tok.eos))
        lm, ret, _ = episode_loss(m, b, stage, torch.Generator().manual_seed(1))
        (lm + ret).backward()
        g = torch.cat([p.grad.flatten() for n, p in m.named_parameters() if '.lora_B.default.' in n])
        return float(lm + ret), g

    def test_the_forward_is_the_same_and_the_other_writes_get_a_gradient(self):
        base = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0, ask_others=3)
        every = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0, ask_others=3, write_grad_all=True)
        for fact_last in (False, True):
            (la, ga), (lb, gb) = self.grads(base, fact_last), self.grads(every, fact_last)
            self.assertAlmostEqual(la, lb, places=5)  # the same forward
            self.assertGreater(float(ga.abs().sum()), 0)
            # The other facts are asked too (ask_others), so their own writes now get a gradient.
            self.assertGreater(float((ga - gb).abs().max()), 1e-6 * float(ga.abs().max()), fact_last)

    def test_write_grad_drill_trains_every_write_in_drill_steps_only(self):
        # The same draws either way: one_line_drill is drawn in both stages of a pair.
        never = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0, ask_others=3, one_line_drill=1e-9)
        always = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0, ask_others=3, one_line_drill=1.0)
        flagged = lambda st: dataclasses.replace(st, write_grad_drill=True)
        for fact_last in (False, True):
            # Not a drill step: exactly the fact's write is trained, as without the flag.
            (la, ga), (lb, gb) = self.grads(never, fact_last), self.grads(flagged(never), fact_last)
            self.assertEqual(la, lb)
            self.assertTrue(torch.equal(ga, gb), fact_last)
            # A drill step: every write, as under write_grad_all.
            (la, ga), (lb, gb) = self.grads(always, fact_last), self.grads(flagged(always), fact_last)
            (_, gc) = self.grads(Stage(**{**always.__dict__, 'write_grad_all': True}), fact_last)
            self.assertAlmostEqual(la, lb, places=5)
            self.assertGreater(float((ga - gb).abs().max()), 1e-6 * float(ga.abs().max()), fact_last)
            self.assertTrue(torch.allclose(gb, gc, rtol=1e-5, atol=1e-7), fact_last)
