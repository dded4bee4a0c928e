"""The carry (carry.py): a committed, small run state that a new session's run goes on from."""
import contextlib
import io
import json
import os
import unittest

import torch

from training.mplus import carry, train
from training.mplus.device import load_state
from training.tests.srcdata import SrcDataCase, smoke_run_flags


class CarryTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.common = smoke_run_flags(cls.data)
        # one run of 6 steps, and the same run stopped at 3 and carried
        cls.full, cls.half = os.path.join(cls.tmp, 'full'), os.path.join(cls.tmp, 'half')
        assert train.main(cls.common + ['--run', cls.full, '--max-steps', '6']) == 0
        assert train.main(cls.common + ['--run', cls.half, '--max-steps', '3']) == 0
        cls.carry = os.path.join(cls.tmp, 'carry', 'smoke.pt')
        with contextlib.redirect_stdout(io.StringIO()):
            assert carry.main(['--state', os.path.join(cls.half, 'state.pt'), '--out', cls.carry]) == 0

    def log(self, run):
        with open(os.path.join(run, 'log.jsonl')) as f:
            return [json.loads(l) for l in f]

    def test_the_carry_keeps_the_weights_and_drops_the_moments_and_the_bank(self):
        s, c = load_state(os.path.join(self.half, 'state.pt')), load_state(self.carry)
        self.assertNotIn('opt', c)
        self.assertNotIn('bank', c)
        self.assertEqual((c['step'], c['carried_at'], c['identity']), (3, 3, s['identity']))
        self.assertEqual(c['model'].keys(), s['model'].keys())
        for k in s['model']:
            self.assertTrue(torch.equal(c['model'][k], s['model'][k]), k)
        self.assertLess(os.path.getsize(self.carry), 0.5 * os.path.getsize(os.path.join(self.half, 'state.pt')))

    def test_the_same_run_goes_on_from_a_carry_with_its_randomness_and_a_new_warmup(self):
        run = os.path.join(self.tmp, 'on')
        self.assertEqual(train.main(self.common + ['--run', run, '--max-steps', '6', '--init-from', self.carry]), 0)
        first = self.log(run)[0]
        self.assertEqual((first['step'], first['continuation'], first['fresh_moments']), (3, True, True))
        self.assertEqual([r['step'] for r in self.log(run) if 'loss' in r], [4, 5, 6])
        on, full = load_state(os.path.join(run, 'state.pt')), load_state(os.path.join(self.full, 'state.pt'))
        self.assertEqual((on['step'], on['warm_from']), (6, 3))
        # Same batches as the uninterrupted run (the RNGs went on), other weights (fresh moments).
        self.assertEqual(on['rng'], full['rng'])
        self.assertTrue(torch.equal(on['torch_rng'], full['torch_rng']))
        self.assertFalse(all(torch.equal(on['model'][k], full['model'][k]) for k in on['model']))
        # and it resumes from its own state.pt with the warmup it restarted
        self.assertEqual(train.main(self.common + ['--run', run, '--max-steps', '7', '--init-from', self.carry]), 0)
        self.assertEqual(load_state(os.path.join(run, 'state.pt'))['warm_from'], 3)

    def test_another_runs_carry_starts_its_randomness_from_the_seed(self):
        run = os.path.join(self.tmp, 'other')
        other = [('7' if x == '5' else x) for x in self.common]  # --seed 7: another run of the same model
        self.assertEqual(train.main(other + ['--run', run, '--max-steps', '4', '--init-from', self.carry]), 0)
        self.assertEqual(self.log(run)[0]['continuation'], False)

    def test_an_anneal_branch_decays_to_zero_from_where_it_left_its_parent_and_stops(self):
        run = os.path.join(self.tmp, 'anneal')
        branch = self.common + ['--run', run, '--max-steps', '100', '--anneal', '4', '--init-from', os.path.join(self.half, 'state.pt')]
        self.assertEqual(train.main(branch), 0)
        lrs = [(r['step'], r['lr']) for r in self.log(run) if 'loss' in r]
        # steps 4..7 train with the parent's warmup (10 steps from 0) times a fall from 1 to 1/4
        self.assertEqual(lrs, [(s + 1, train.learning_rate(3e-3, s, 0, 10, 3, 4)) for s in range(3, 7)])
        self.assertEqual([round(lr / (3e-3 * (s + 1) / 10), 6) for s, lr in zip(range(3, 7), (lr for _, lr in lrs))], [1, 0.75, 0.5, 0.25])
        s = load_state(os.path.join(run, 'state.pt'))
        self.assertEqual((s['step'], s['anneal_from'], s['identity']['anneal']), (7, 3, 4))
        # a rerun finds the branch finished; the parent's identity has no 'anneal' (it goes on)
        self.assertEqual(train.main(branch), 0)
        self.assertEqual(len([r for r in self.log(run) if 'loss' in r]), 4)
        self.assertNotIn('anneal', load_state(os.path.join(self.full, 'state.pt'))['identity'])

    def test_not_a_run_state_is_refused_by_name(self):
        with self.assertRaisesRegex(ValueError, 'not a training run state'):
            carry.pack({'model': {}})
        bad = os.path.join(self.tmp, 'bad.pt')
        with open(bad, 'wb') as f:
            f.write(b'not a pickle')
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = carry.main(['--state', bad, '--out', os.path.join(self.tmp, 'x.pt')])
        self.assertEqual(rc, 1)
        self.assertIn(bad, err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'x.pt')))


if __name__ == '__main__':
    unittest.main()
