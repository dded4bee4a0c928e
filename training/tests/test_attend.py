"""The attention's hand-written gradient (model.Attend) equals autograd's of the plain formula."""
import math
import unittest

import torch

from training.mplus.model import Attend


def plain(q, k, v, mask, scale):
    """The layer's formula before Attend, autograd's backward (the softmax in f32, as there)."""
    att = (q @ k.transpose(-1, -2)) * scale
    return torch.softmax(att.masked_fill(~mask, float('-inf')).float(), dim=-1).to(q.dtype) @ v


class AttendTest(unittest.TestCase):
    def test_values_and_gradients_match_autograd(self):
        g = torch.Generator().manual_seed(0)
        B, H, m, T, hd = 3, 4, 5, 11, 8
        p = T - m
        mask = torch.ones(m, T, dtype=torch.bool).tril(diagonal=p)
        # k and v as the layer makes them: views with transposed strides (the case the class is for)
        q = torch.randn(B, m, H, hd, generator=g, dtype=torch.float64).transpose(1, 2).requires_grad_()
        k = torch.randn(B, T, H, hd, generator=g, dtype=torch.float64).transpose(1, 2).requires_grad_()
        v = torch.randn(B, T, H, hd, generator=g, dtype=torch.float64).transpose(1, 2).requires_grad_()
        w = torch.randn(B, H, m, hd, generator=g, dtype=torch.float64)
        scale = 1 / math.sqrt(hd)
        got = Attend.apply(q, k, v, mask, scale)
        want = plain(q, k, v, mask, scale)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)  # the same operations
        gq, gk, gv = torch.autograd.grad((got * w).sum(), (q, k, v))
        wq, wk, wv = torch.autograd.grad((want * w).sum(), (q, k, v))
        for a, b in ((gq, wq), (gk, wk), (gv, wv)):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # the softmax's gradient in f32 both ways
        # Keys a query row may not see get no gradient from it: the last row sees all, the first p + 1.
        gk1 = torch.autograd.grad(Attend.apply(q, k, v, mask, scale)[:, :, 0].sum(), k)[0]
        self.assertEqual(float(gk1[:, :, p + 1:].abs().sum()), 0.0)
        self.assertGreater(float(gk1[:, :, :p + 1].abs().sum()), 0.0)
