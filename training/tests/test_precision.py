"""Training precision (device.py): bf16 autocast where the hardware has bf16 units, f32 elsewhere;
a bf16 step computes the same losses and gradients as an f32 one, to bf16's precision."""
import unittest

import torch

from training.mplus.config import preset
from training.mplus.data import Stage
from training.mplus.device import autocast, cpu_has_bf16, pick_precision
from training.mplus.model import MPlus
from training.mplus.train import episode_loss


def batch_of(B=4, seed=0):
    """A stage-3-shaped batch of random bytes: three injections, the fact's first."""
    from training.mplus.data import Batch
    g = torch.Generator().manual_seed(seed)
    contexts = [torch.randint(0, 256, (B, 24), generator=g) for _ in range(3)]
    tags = [torch.full((B,), j, dtype=torch.long) for j in range(3)]
    tokens = torch.randint(0, 256, (B, 12), generator=g)
    target = tokens.roll(-1, 1)
    target[:, :6] = -100
    return Batch(contexts, tags, 0, [[''] * B] * 3, tokens, torch.full((B,), 6), target, [''] * B, [[]] * B)


class PrecisionTest(unittest.TestCase):
    def test_choice(self):
        cpu = torch.device('cpu')
        self.assertEqual(pick_precision('f32', cpu), 'f32')
        self.assertEqual(pick_precision('bf16', cpu), 'bf16')
        self.assertEqual(pick_precision('auto', cpu), 'bf16' if cpu_has_bf16() else 'f32')
        with self.assertRaisesRegex(ValueError, '--precision fp8: use one of auto, f32, bf16'):
            pick_precision('fp8', cpu)

    def test_a_bf16_step_matches_an_f32_step_to_bf16_precision(self):
        torch.manual_seed(0)
        m = MPlus(preset('smoke', 300, 256, 257)).eval()  # eval: no LoRA dropout, so both passes are one function
        stage = Stage('t', 1, 24, (2, 2), True)
        out = {}
        for p in ('f32', 'bf16'):
            m.zero_grad()
            with autocast(p, torch.device('cpu')):
                lm, ret, _ = episode_loss(m, batch_of(), stage, torch.Generator().manual_seed(1))
            self.assertEqual((lm.dtype, ret.dtype), (torch.float32, torch.float32))
            (lm + ret).backward()
            out[p] = (float(lm), float(ret), torch.cat([q.grad.flatten() for q in m.parameters() if q.grad is not None]))
        (l32, r32, g32), (l16, r16, g16) = out['f32'], out['bf16']
        self.assertAlmostEqual(l16 / l32, 1, delta=0.02)
        self.assertAlmostEqual(r16 / r32, 1, delta=0.02)
        cos = float(torch.nn.functional.cosine_similarity(g32, g16, dim=0))
        self.assertGreater(cos, 0.98)
        self.assertFalse(torch.equal(g32, g16))  # bf16 really ran (else this test proves nothing)


if __name__ == '__main__':
    unittest.main()
