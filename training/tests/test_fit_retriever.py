"""fit_retriever: a state whose projectors are fitted to recorded memory, everything else the same."""
import contextlib
import io
import os
import unittest

import torch

from training.mplus import fit_retriever, train
from training.mplus.config import ModelConfig
from training.mplus.device import load_state
from training.mplus.model import MPlus
from training.tests.srcdata import SrcDataCase


class FitRetrieverTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_dir = os.path.join(cls.tmp, 'run')
        assert train.main(['--data', cls.data, '--run', cls.run_dir, '--preset', 'smoke', '--seed', '5', '--batch', '4', '--lr', '3e-3',
                           '--warmup', '10', '--eval-every', '0', '--quiet', '--save-every', '1e9', '--max-steps', '2']) == 0
        cls.state = os.path.join(cls.run_dir, 'state.pt')
        cls.out = os.path.join(cls.tmp, 'fitted', 'state.pt')
        cls.printed = io.StringIO()
        with contextlib.redirect_stdout(cls.printed):
            cls.rc = fit_retriever.main(['--data', cls.data, '--state', cls.state, '--out', cls.out, '--batches', '4', '--batch', '4',
                                         '--steps', '60', '--distractors', '6,12', '--test-batches', '1', '--threads', '1'])

    def test_only_the_used_projectors_change_and_their_moments_are_dropped(self):
        self.assertEqual(self.rc, 0)
        s, f = load_state(self.state), load_state(self.out)
        self.assertEqual(f['model'].keys(), s['model'].keys())
        self.assertEqual((f['config'], f['step'], f['identity']), (s['config'], s['step'], s['identity']))
        changed = {k for k in s['model'] if not torch.equal(f['model'][k], s['model'][k])}
        used = {k for k in s['model'] if '.self_attn.query_proj.' in k or '.self_attn.key_proj.' in k}
        self.assertTrue(changed, 'the fit moved no projector')
        self.assertLessEqual(changed, used)  # the model, θ's initial rows and encoder_query_proj as they were
        names = [n for n, _ in MPlus(ModelConfig.from_hf(s['config'])).named_parameters()]
        n_rest = sum(not train.is_retriever(n) for n in names)
        self.assertEqual(sorted(f['opt']['state']), sorted(s['opt']['state']))  # the smoke stage trains no retriever
        # A retriever's moments (index ≥ n_rest in make_optimizer's order) are dropped, the rest kept.
        moments = {**s['opt']['state'], n_rest: {'step': torch.tensor(2.0), 'exp_avg': torch.ones(1), 'exp_avg_sq': torch.ones(1)}}
        model = MPlus(ModelConfig.from_hf(s['config']))
        g = fit_retriever.with_projectors(dict(s, opt={'state': moments, 'param_groups': s['opt']['param_groups']}), model, {})
        self.assertEqual(sorted(g['opt']['state']), sorted(k for k in moments if k < n_rest))
        self.assertIn(0, g['opt']['state'])
        self.assertEqual(f['retriever_fit']['steps'], 60)
        # the saved state loads and runs as a model
        MPlus(ModelConfig.from_hf(f['config'])).load_state_dict(f['model'])

    def test_reports_both_test_sets_before_and_after(self):
        text = self.printed.getvalue()
        for when in ('before', 'after'):
            for label, *_ in fit_retriever.TESTS:
                self.assertIn(f'{when}, {label}: recall@R', text)

    def test_refuses_a_bad_distractor_range(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', os.path.join(self.tmp, 'x.pt'), '--distractors', '9,3'])
        self.assertEqual(rc, 2)
        self.assertIn('--distractors', err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'x.pt')))


if __name__ == '__main__':
    unittest.main()
