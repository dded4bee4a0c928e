"""average.py: the mean of one run's states as a carry, and the members it refuses."""
import contextlib
import copy
import io
import json
import os
import shutil
import unittest

import torch

from training.mplus import average, train
from training.mplus.device import atomic_save, load_state
from training.tests.srcdata import SrcDataCase, smoke_run_flags


class AverageTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.common = smoke_run_flags(cls.data)
        # one run saved at step 3 and at step 5: two points of one path
        run = os.path.join(cls.tmp, 'run')
        assert train.main(cls.common + ['--run', run, '--max-steps', '3']) == 0
        cls.a = os.path.join(cls.tmp, 'a.pt')
        shutil.copy(os.path.join(run, 'state.pt'), cls.a)
        assert train.main(cls.common + ['--run', run, '--max-steps', '5']) == 0
        cls.b = os.path.join(run, 'state.pt')
        cls.out = os.path.join(cls.tmp, 'avg.pt')
        with contextlib.redirect_stdout(io.StringIO()):
            assert average.main(['--out', cls.out, cls.a, cls.b]) == 0

    def test_the_mean_of_the_weights_as_a_carry_at_the_furthest_step(self):
        a, b, m = load_state(self.a), load_state(self.b), load_state(self.out)
        self.assertEqual((a['step'], b['step'], m['step'], m['carried_at']), (3, 5, 5, 5))
        self.assertNotIn('opt', m)
        self.assertNotIn('bank', m)
        self.assertEqual((m['identity'], m['config'], m['tokenizer']), (a['identity'], a['config'], a['tokenizer']))
        self.assertEqual([x['step'] for x in m['averaged_from']], [3, 5])
        moved = 0
        for k in a['model']:
            self.assertTrue(torch.allclose(m['model'][k], (a['model'][k].float() + b['model'][k].float()) / 2, atol=0, rtol=1e-6), k)
            moved += not torch.equal(a['model'][k], b['model'][k])
        self.assertGreater(moved, 0, 'the two members differ, so the mean is neither')

    def test_a_run_goes_on_from_the_average_with_fresh_moments(self):
        run = os.path.join(self.tmp, 'on')
        self.assertEqual(train.main(self.common + ['--run', run, '--max-steps', '7', '--init-from', self.out]), 0)
        with open(os.path.join(run, 'log.jsonl')) as f:
            first = json.loads(f.readline())
        self.assertEqual((first['step'], first['fresh_moments']), (5, True))
        self.assertEqual(load_state(os.path.join(run, 'state.pt'))['step'], 7)

    def test_members_that_differ_only_in_how_theta_keeps_rows_average(self):
        b = load_state(self.b)
        b['config'] = {**b['config'], 'initial_rf_when_moving_stm_to_ltm': 30}
        m = average.average([load_state(self.a), b], ['a', 'b'])
        self.assertEqual(m['config'], load_state(self.a)['config'])

    def test_refused_by_name(self):
        a, b = load_state(self.a), load_state(self.b)
        cases = []
        grown = copy.deepcopy(b)
        grown['config'] = {**b['config'], 'ltm_initial_size': 2 * b['config']['ltm_initial_size']}
        cases.append((grown, r'b\.pt: another model than a\.pt: ltm_initial_size .*grow'))
        reshaped = copy.deepcopy(b)
        k = next(iter(reshaped['model']))
        reshaped['model'][k] = torch.zeros(3, 3)
        cases.append((reshaped, rf'b\.pt: {k} is \(3, 3\).*grow'))
        other_tok = copy.deepcopy(b)
        other_tok['tokenizer'] = {'kind': 'another'}
        cases.append((other_tok, r'b\.pt: another tokenizer'))
        cases.append(({'model': {}}, r'b\.pt: not a training run state'))
        for s, pattern in cases:
            with self.assertRaisesRegex(ValueError, pattern):
                average.average([a, s], ['a.pt', 'b.pt'])
        with self.assertRaisesRegex(ValueError, 'at least two'):
            average.average([a], ['a.pt'])

    def test_the_command_names_an_unreadable_member_and_writes_nothing(self):
        bad = os.path.join(self.tmp, 'bad.pt')
        with open(bad, 'wb') as f:
            f.write(b'not a pickle')
        out = os.path.join(self.tmp, 'never.pt')
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(average.main(['--out', out, self.a, bad]), 1)
        self.assertIn(bad, err.getvalue())
        self.assertFalse(os.path.exists(out))
        grown = load_state(self.b)
        grown['config'] = {**grown['config'], 'num_blocks': grown['config']['num_blocks'] + 1}
        other = os.path.join(self.tmp, 'grown.pt')
        atomic_save(grown, other)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(average.main(['--out', out, self.a, other]), 1)
        self.assertIn('num_blocks', err.getvalue())
        self.assertFalse(os.path.exists(out))


if __name__ == '__main__':
    unittest.main()
