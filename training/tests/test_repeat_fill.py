"""Retrieval with fewer merged Θ entries than R: the spec's repeat-fill, in the spec's order."""
import unittest

import torch

from training.mplus.config import preset
from training.mplus.model import MPlus


class RepeatFillTest(unittest.TestCase):
    def test_copies_stay_side_by_side_oldest_first_larger_index_first(self):
        torch.manual_seed(0)
        cfg = preset('smoke', 300, 256, 257)
        cfg.num_blocks, cfg.num_ltm_blocks = 8, 4  # R = 64 retrieved rows, Θ starts with 32
        m = MPlus(cfg).eval()
        mem = m.fresh_memory(2)
        M, R = mem.ltm[0].shape[1], cfg.retrieve_size
        self.assertLess(M, R)
        mem.ltm_ages[0] = torch.tensor([[5, 9] * (M // 2), [3] * M])  # episode 0: two ages; 1: all equal
        order, logits, _ = m.retrieve(mem, 0, torch.randn(2, 3, cfg.hidden_size), torch.ones(2, 3, dtype=torch.bool))
        self.assertIsNone(logits)  # nothing is scored
        fill = [((M - R + i) % M + M) % M for i in range(R)]  # MPLUS-SPEC: 0..M−1 repeated, the last R
        for b in range(2):
            age = mem.ltm_ages[0][b].tolist()
            want = sorted(fill, key=lambda c: (-age[c], -c))  # oldest first; ties: larger candidate index first
            self.assertEqual(order[b].tolist(), want)
        self.assertEqual(order[1].tolist()[:2], [M - 1, M - 1])  # R = 2M: each entry twice, side by side


if __name__ == '__main__':
    unittest.main()
