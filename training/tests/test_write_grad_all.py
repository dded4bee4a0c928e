"""Stage.write_grad_all: every injection's write is trained through, not only the fact's."""
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
