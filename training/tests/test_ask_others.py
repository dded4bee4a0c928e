"""Several questions per memory (Stage.ask_others): the other facts an episode holds are asked
too, each reading its own episode's memory, each with its own fact's rows as the positives."""
import random

import torch

from training.mplus.config import preset
from training.mplus.data import Corpus, Stage, sample_batch
from training.mplus.model import MPlus
from training.mplus.train import ASKED_OTHER, asked_fact_positive, episode_loss
from training.tests.srcdata import SrcDataCase


class AskOthersTest(SrcDataCase):
    def test_other_facts_are_asked_from_the_memory_that_holds_them(self):
        c = Corpus(self.data)
        B = 4
        base = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0)
        many = Stage('t', 1, 64, (3, 3), False, fact_anywhere=True, fact_negatives=1.0, ask_others=2)
        held = total = 0
        for seed in range(6):
            a = sample_batch(c, B, base, random.Random(seed))
            b = sample_batch(c, B, many, random.Random(seed))
            # The episodes and their own questions are drawn exactly as without the option.
            self.assertEqual(b.fact_at, a.fact_at)
            self.assertTrue(all(torch.equal(x, y) for x, y in zip(a.contexts, b.contexts)))
            self.assertTrue(torch.equal(b.tokens[:B, :a.tokens.shape[1]], a.tokens))
            self.assertEqual(b.q_episode[:B].tolist(), list(range(B)))
            self.assertEqual(b.q_tag[:B].tolist(), [0] * B)
            # Then up to 2 others per episode (3 held, every distractor a fact here).
            extra = b.q_episode[B:].tolist()
            self.assertTrue(all(extra.count(i) == 2 for i in range(B)), extra)
            for k in range(B, len(b.answers)):
                e, tag = int(b.q_episode[k]), int(b.q_tag[k])
                j = [int(t[0]) for t in b.tags].index(tag)
                self.assertNotEqual(j, b.fact_at)
                name = b.names[j][e]
                self.assertIn(name, c.tok.decode(b.prompts[k]))   # asks the fact that injection holds
                ctx = c.tok.decode(b.contexts[j][e].tolist())
                total += 1
                # whose value it holds (unless the window cut it; a definition's path is in a
                # header line that a 64-token window drops when it is long, for the fact asked first too)
                held += name in ctx and (b.kinds[k] == 'def' or b.answers[k] in ctx)
        self.assertGreaterEqual(held / total, 0.85)

    def test_positives_are_the_asked_facts_rows(self):
        tags = torch.tensor([[0, 1, 2, -1, -2], [0, 1, 2, -3, 1]])
        out = asked_fact_positive(tags, torch.tensor([0, 2]))
        self.assertEqual(out[0].tolist(), [0, 1, 2, -1, -2])                # the episode's own fact: as before
        self.assertEqual(out[1].tolist(), [ASKED_OTHER, 1, 0, -3, 1])       # another fact asked: its rows, not the own fact's

    def test_each_question_reads_its_episodes_memory(self):
        torch.manual_seed(0)
        m = MPlus(preset('smoke', 300, 256, 257)).eval()
        B = 2
        mem = m.fresh_memory(B)
        g = torch.Generator().manual_seed(1)
        for j in range(6):  # Θ grows past R: retrieval runs
            m.inject(mem, torch.randint(0, 256, (B, 24), generator=g), tag=torch.full((B,), j, dtype=torch.long), gen=g)
        q = torch.randint(0, 256, (3, 9), generator=g)
        q_len = torch.tensor([5, 7, 6])
        idx = torch.tensor([1, 0, 1])
        with torch.no_grad():
            many, got, terms = m.generate_logits(mem, q, q_len, episode=idx)
            self.assertTrue(all(lg is not None for lg, _ in terms))  # retrieval ran, not the M < R fallback
            for k in range(3):
                e = int(idx[k])
                # Question k asked of both episodes the plain way; row e is what it must equal.
                one, want, _ = m.generate_logits(mem, q[[k, k]], q_len[[k, k]])
                torch.testing.assert_close(many[k], one[e], rtol=1e-5, atol=1e-5)
                self.assertTrue(all(torch.equal(gl[k], wl[e]) for gl, wl in zip(got, want)))

    def test_episode_loss_scores_every_question(self):
        c = Corpus(self.data)
        torch.manual_seed(0)
        m = MPlus(preset('smoke', c.tok.vocab_size, c.tok.bos, c.tok.eos))
        stage = Stage('t', 1, 48, (4, 4), True, fact_anywhere=True, fact_negatives=1.0, ask_others=3)
        b = sample_batch(c, 3, stage, random.Random(2))
        lm, ret, ok = episode_loss(m, b, stage, torch.Generator().manual_seed(3))
        self.assertEqual(ok.numel(), len(b.answers))
        self.assertGreater(ok.numel(), 3)
        (lm + ret).backward()
        # The fact's write is trained through, by its own question and the others'.
        self.assertTrue(any(p.grad is not None and float(p.grad.abs().sum()) > 0
                            for n, p in m.named_parameters() if 'lora' in n and 'default' in n))
