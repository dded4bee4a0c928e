"""The retriever's negatives bank: scored after the candidates, never retrieved, never read."""
import unittest

import torch
import torch.nn.functional as F

from training.mplus.bank import RowBank
from training.mplus.config import preset
from training.mplus.data import Batch, Stage
from training.mplus.model import MPlus
from training.mplus.train import FACT_CONTEXT, ColumnBCE, episode_loss, fact_row_tags, retriever_bce, stage_identity


def model_with_theta_full(seed=0):
    torch.manual_seed(seed)
    m = MPlus(preset('smoke', 300, 256, 257)).eval()
    B = 2
    mem = m.fresh_memory(B)
    gen = torch.Generator().manual_seed(seed)
    for j in range(6):  # enough injections that merges have grown Θ past R
        m.inject(mem, torch.randint(0, 256, (B, 24), generator=gen), tag=torch.full((B,), j, dtype=torch.long), gen=gen)
    return m, mem


class BankTest(unittest.TestCase):
    def test_extra_rows_are_scored_but_change_nothing_read(self):
        m, mem = model_with_theta_full()
        tokens = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(1))
        q_len = torch.tensor([6, 8])
        extra = [torch.randn(40, m.c.hidden_size) for _ in range(m.c.num_layers)]
        with torch.no_grad():
            l0, r0, t0 = m.generate_logits(mem, tokens, q_len)
            l1, r1, t1 = m.generate_logits(mem, tokens, q_len, extra=extra)
        self.assertTrue(torch.equal(l0, l1))
        for a, b in zip(r0, r1):
            self.assertTrue(torch.equal(a, b))
        for l, ((lg0, _), (lg1, _)) in enumerate(zip(t0, t1)):
            self.assertIsNotNone(lg0)
            self.assertEqual(lg1.shape[-1], lg0.shape[-1] + 40)
            self.assertTrue(torch.equal(lg1[..., :lg0.shape[-1]], lg0))
        # the extra columns score the given rows: other rows, other scores
        with torch.no_grad():
            _, _, t2 = m.generate_logits(mem, tokens, q_len, extra=[2 * x + 1 for x in extra])
        for (lg1, _), (lg2, _) in zip(t1, t2):
            self.assertTrue(torch.equal(lg1[..., :-40], lg2[..., :-40]))
            self.assertFalse(torch.allclose(lg1[..., -40:], lg2[..., -40:]))

    def test_fifo_capacity_and_seeded_sampling(self):
        b = RowBank(2, 10, 3, per_step=4)
        gen = torch.Generator().manual_seed(0)
        rows = torch.arange(30.).view(10, 3)
        b.add(0, rows, gen)
        self.assertEqual(b.rows[0].shape, (4, 3))              # a sample of per_step rows
        self.assertTrue(all(any(torch.equal(r, x) for x in rows) for r in b.rows[0]))
        for _ in range(3):
            b.add(0, rows[:2], gen)                            # fewer than per_step: all join
        self.assertEqual(b.rows[0].shape, (10, 3))
        b.add(0, rows[:3], gen)
        self.assertEqual(b.rows[0].shape, (10, 3))             # capacity kept, oldest out
        self.assertTrue(torch.equal(b.rows[0][-3:], rows[:3]))
        self.assertEqual(b.rows[1].shape, (0, 3))              # layers apart
        again = RowBank(2, 10, 3, per_step=4)
        again.load(b.state())
        self.assertTrue(all(torch.equal(x, y) for x, y in zip(again.rows, b.rows)))
        self.assertFalse(RowBank(2, 0, 3))                     # capacity 0: off

    def test_episode_loss_scores_and_refills_the_bank(self):
        torch.manual_seed(0)
        m = MPlus(preset('smoke', 300, 256, 257))
        g = torch.Generator().manual_seed(2)
        B, n = 2, 20
        ctx = [torch.randint(0, 256, (B, n), generator=g) for _ in range(6)]
        tokens = torch.randint(0, 256, (B, 8), generator=g)
        target = torch.full((B, 8), -100, dtype=torch.long)
        target[:, 4:7] = tokens[:, 5:8]
        batch = Batch(ctx, [torch.full((B,), j, dtype=torch.long) for j in (1, 2, 0, 3, 4, 5)], 2, [[''] * B] * 6,
                      tokens, torch.tensor([5, 5]), target, ['', ''], [[], []])
        stage = Stage('t', 1, 64, (5, 5), True, bank_negatives=64)
        bank = RowBank(m.c.num_layers, 64, m.c.hidden_size)
        _, ret0, _ = episode_loss(m, batch, stage, torch.Generator().manual_seed(5), bank)
        self.assertEqual([r.shape[0] for r in bank.rows], [16] * m.c.num_layers)  # per_step = 64 / 4 rows joined
        _, ret1, _ = episode_loss(m, batch, stage, torch.Generator().manual_seed(5), bank)
        _, ret_off, _ = episode_loss(m, batch, stage, torch.Generator().manual_seed(5), None)
        self.assertEqual(float(ret0), float(ret_off))   # an empty bank adds nothing
        self.assertNotEqual(float(ret1), float(ret_off))  # a filled one is scored as negatives
        # The bank is a fixed quarter of the loss, however many rows it holds: the same rows twice
        # over score the same. (Pooled with the episode's negatives they would weigh twice as much
        # against the other facts.) A sharp retriever, so the bank's scores differ from the episode's.
        with torch.no_grad():
            for name, p in m.named_parameters():
                if 'query_proj' in name or 'key_proj' in name:
                    p.mul_(20)
        rows = [torch.randn(24, m.c.hidden_size, generator=g) for _ in range(m.c.num_layers)]
        once, twice = RowBank(m.c.num_layers, 64, m.c.hidden_size), RowBank(m.c.num_layers, 64, m.c.hidden_size)
        once.load(rows)
        twice.load([torch.cat([r, r]) for r in rows])
        _, r1, _ = episode_loss(m, batch, stage, torch.Generator().manual_seed(5), once)
        _, r2, _ = episode_loss(m, batch, stage, torch.Generator().manual_seed(5), twice)
        self.assertAlmostEqual(float(r1), float(r2), delta=1e-4 * float(r1))

    def test_column_bce_gradient(self):
        g = torch.Generator().manual_seed(4)
        x = (torch.randn(2, 3, 5, generator=g, dtype=torch.float64) * 4).requires_grad_()
        w = torch.tensor([[1., 1., 0.], [1., 0., 0.]], dtype=torch.float64).unsqueeze(-1)
        y = (torch.rand(2, 5, generator=g, dtype=torch.float64) < 0.4).double()
        self.assertTrue(torch.autograd.gradcheck(lambda t: ColumnBCE.apply(t, w, y), (x,)))
        want = (F.binary_cross_entropy_with_logits(x, y.unsqueeze(1).expand_as(x), reduction='none') * w).sum(1)
        self.assertTrue(torch.allclose(ColumnBCE.apply(x, w, y), want))

    def test_retriever_bce_is_the_class_weighted_mean_of_elementwise_bce(self):
        """The column-first reduction equals the plain definition: BCE per (question row,
        candidate), masked to question rows, averaged within each class, classes weighted."""
        g = torch.Generator().manual_seed(3)
        B, m, C, E = 3, 7, 40, 25
        lg = torch.randn(B, m, C + E, generator=g) * 3
        w = (torch.arange(m).unsqueeze(0) < torch.tensor([[4], [7], [2]])).float().unsqueeze(-1)
        tags = torch.randint(0, 4, (B, C), generator=g)
        for banked in (False, True):
            t = torch.cat([tags, torch.full((B, E), -2)], 1) if banked else tags
            x = lg if banked else lg[..., :C]
            pos = (t == 0).float().unsqueeze(1).expand_as(x)
            bce = F.binary_cross_entropy_with_logits(x, pos, reduction='none') * w
            mean = lambda sel: (bce * sel).sum() / (sel * w).sum()
            bank = (t == -2).float().unsqueeze(1).expand_as(x)
            want = (0.5 * mean(pos) + 0.25 * mean(1 - pos - bank) + 0.25 * mean(bank)) if banked else 0.5 * (mean(pos) + mean(1 - pos))
            self.assertAlmostEqual(float(retriever_bce(x, w, t)), float(want), delta=1e-5 * float(want))

    def test_fact_context_rows_are_neither_positive_nor_negative(self):
        g = torch.Generator().manual_seed(5)
        B, m, C = 2, 5, 30
        lg = torch.randn(B, m, C, generator=g) * 3
        w = torch.ones(B, m, 1)
        tags = torch.randint(0, 4, (B, C), generator=g)
        ctx = tags.clone()
        ctx[:, :6] = FACT_CONTEXT
        # Whatever the scores of the left-out columns, the loss is that of the rest alone.
        lg2 = lg.clone()
        lg2[:, :, :6] = torch.randn(B, m, 6, generator=g) * 10
        self.assertAlmostEqual(float(retriever_bce(lg, w, ctx)), float(retriever_bce(lg[..., 6:], w, tags[:, 6:])), places=5)
        self.assertAlmostEqual(float(retriever_bce(lg2, w, ctx)), float(retriever_bce(lg, w, ctx)), places=5)

    def test_fact_row_tags_mark_the_rows_written_at_the_span(self):
        # n ≥ K: row r was written at token n − K + r.
        t = fact_row_tags(torch.tensor([[10, 13], [0, 2]]), 12, 4)
        self.assertEqual(t.tolist(), [[FACT_CONTEXT, FACT_CONTEXT, 0, 0], [FACT_CONTEXT] * 4])
        # n < K: the first K − n rows re-read θ's rows, then one row per token.
        t = fact_row_tags(torch.tensor([[1, 3]]), 3, 5)
        self.assertEqual(t.tolist(), [[FACT_CONTEXT, FACT_CONTEXT, FACT_CONTEXT, 0, 0]])

    def test_a_stage_without_span_positives_keeps_the_identity_runs_were_saved_with(self):
        st = Stage('3', 10, 256, (2, 6), True, 8, True, 0.5, 4096)
        self.assertEqual(stage_identity(st), ('3', 10, 256, (2, 6), True, 8, True, 0.5, 4096))
        on = Stage('3', 10, 256, (2, 6), True, 8, True, 0.5, 4096, span_positives=True)
        self.assertEqual(stage_identity(on), stage_identity(st) + (True,))


if __name__ == '__main__':
    unittest.main()
