"""grow.py: a run state with a larger θ, the learned initial θ and its moments tiled."""
import contextlib
import io
import os
import tempfile
import unittest

import torch

from training.mplus import config, export, grow, train
from training.mplus.config import ModelConfig, preset
from training.mplus.device import load_state
from training.mplus.model import MPlus
from training.mplus.train import make_optimizer
from training.tests.srcdata import SrcDataCase


class GrowTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        cfg = preset('smoke', 300, 256, 257)  # N = (6 − 2)·16 = 64
        self.model = MPlus(cfg)
        opt = make_optimizer(self.model, 1e-3)
        (self.model.memory.sum() + sum(p.sum() for p in self.model.ltm)).backward()  # moments for θ and Θ's initial rows
        opt.step()
        self.state = {'config': cfg.to_hf(), 'model': self.model.state_dict(), 'opt': opt.state_dict(), 'step': 7,
                      'identity': {'preset': 'smoke'}}

    def test_theta_and_its_moments_are_tiled_and_the_rest_kept(self):
        g = grow.grow(self.state, 10)  # N = 128
        cfg = ModelConfig.from_hf(g['config'])
        self.assertEqual((cfg.num_blocks, cfg.stm_size), (10, 128))
        mem = g['model']['memory']
        self.assertEqual(tuple(mem.shape), (2, 128, 64))
        self.assertTrue(torch.equal(mem[:, :64], self.state['model']['memory']))
        self.assertTrue(torch.equal(mem[:, 64:], self.state['model']['memory']))
        for k in self.state['model']:
            if k != 'memory':
                self.assertTrue(torch.equal(g['model'][k], self.state['model'][k]), k)
        # the grown state loads into a model of the new shape, and its optimizer state into AdamW
        m = MPlus(cfg)
        m.load_state_dict(g['model'])
        opt = make_optimizer(m, 1e-3)
        opt.load_state_dict(g['opt'])
        shapes = {tuple(st['exp_avg'].shape) for st in opt.state_dict()['state'].values()}
        self.assertIn((2, 128, 64), shapes)
        self.assertEqual((g['step'], g['grown_from']), (7, {'num_blocks': 6, 'step': 7}))
        self.assertEqual(tuple(self.state['model']['memory'].shape), (2, 64, 64))  # the input is not changed

    def test_retrieval_grows_with_theta_kept_and_thetas_initial_rows_tiled_to_cover_it(self):
        with self.assertRaisesRegex(ValueError, 'whole factor'):
            grow.grow(self.state, 12, 7)  # θ 80 rows: not a whole factor of 64
        g = grow.grow(self.state, 12, 8)  # N = (12 − 8)·16 = 64 as before, R = 8·16 = 128 (was 32)
        cfg = ModelConfig.from_hf(g['config'])
        # Θ's 32 initial rows would be fewer than R, so retrieval would never read the cache: ×4
        self.assertEqual((cfg.stm_size, cfg.retrieve_size, cfg.ltm_initial_size), (64, 128, 128))
        for k in self.state['model']:
            if k.startswith('ltm.'):
                self.assertTrue(torch.equal(g['model'][k], self.state['model'][k].repeat(4, 1)), k)
            else:
                self.assertTrue(torch.equal(g['model'][k], self.state['model'][k]), k)
        self.assertEqual(g['grown_from'], {'num_blocks': 6, 'num_ltm_blocks': 2, 'ltm_initial_size': 32, 'step': 7})
        m = MPlus(cfg)
        m.load_state_dict(g['model'])
        opt = make_optimizer(m, 1e-3)
        opt.load_state_dict(g['opt'])  # the tiled moments fit the new shapes
        i = [n for n, _ in m.named_parameters() if not train.is_retriever(n)].index('ltm.0')
        old = self.state['opt']['state'][i]['exp_avg']
        self.assertTrue(torch.equal(opt.state_dict()['state'][i]['exp_avg'], old.repeat(4, 1)))
        g = grow.grow(self.state, 7, 3)  # θ 64 kept, R 48: Θ's 32 rows ×2, the smallest whole multiple ≥ R
        self.assertEqual(ModelConfig.from_hf(g['config']).ltm_initial_size, 64)

    def test_a_state_whose_r_already_exceeds_thetas_initial_rows_grows_those_alone(self):
        # as run28 was made before grow tiled Θ: R 128, Θ's initial rows 32
        cfg = ModelConfig.from_hf(self.state['config'])
        cfg.num_blocks, cfg.num_ltm_blocks = 12, 8
        s = {'config': cfg.to_hf(), 'model': MPlus(cfg).state_dict(), 'step': 9}
        g = grow.grow(s, 12, 8)
        new = ModelConfig.from_hf(g['config'])
        self.assertEqual((new.stm_size, new.retrieve_size, new.ltm_initial_size), (64, 128, 128))
        self.assertTrue(torch.equal(g['model']['memory'], s['model']['memory']))
        self.assertEqual(g['grown_from'], {'num_blocks': 12, 'ltm_initial_size': 32, 'step': 9})
        with self.assertRaisesRegex(ValueError, 'whole factor'):
            grow.grow(g, 12, 8)  # nothing left to grow
        # export refuses the ungrown state, naming it and the fix, and writes nothing; the grown one exports
        with tempfile.TemporaryDirectory() as d:
            torch.save(s, os.path.join(d, 's.pt'))
            torch.save(g, os.path.join(d, 'g.pt'))
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(export.main(['--state', os.path.join(d, 's.pt'), '--out', os.path.join(d, 'x'), '--no-verify']), 1)
            self.assertIn(os.path.join(d, 's.pt'), err.getvalue())
            self.assertIn('training.mplus.grow', err.getvalue())
            self.assertFalse(os.path.exists(os.path.join(d, 'x')) or os.path.exists(os.path.join(d, 'x.partial')))
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(export.main(['--state', os.path.join(d, 'g.pt'), '--out', os.path.join(d, 'x'), '--no-verify']), 0)
        with self.assertRaisesRegex(ValueError, 'R can only grow'):
            grow.grow(self.state, 6, 1)
        with self.assertRaisesRegex(ValueError, 'whole factor'):
            grow.grow(self.state, 6, 2)  # neither θ nor R grows

    def test_only_whole_factors_are_accepted_and_errors_name_the_state(self):
        with self.assertRaisesRegex(ValueError, 'whole factor'):
            grow.grow(self.state, 8)  # 96 rows: not a multiple of 64
        with self.assertRaisesRegex(ValueError, 'whole factor'):
            grow.grow(self.state, 4)  # smaller
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, 'none.pt')
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(grow.main(['--state', missing, '--num-blocks', '10', '--out', os.path.join(d, 'g.pt')]), 1)
            self.assertIn(missing, err.getvalue())
            src = os.path.join(d, 's.pt')
            torch.save(self.state, src)
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(grow.main(['--state', src, '--num-blocks', '10', '--out', os.path.join(d, 'g.pt')]), 0)
            self.assertEqual(tuple(load_state(os.path.join(d, 'g.pt'))['model']['memory'].shape), (2, 128, 64))


class GrowAndGoOnTest(SrcDataCase):
    def test_a_run_refuses_a_preset_of_another_shape_and_goes_on_from_its_grown_state(self):
        common = ['--data', self.data, '--preset', 'smoke', '--seed', '3', '--batch', '2', '--warmup', '2', '--log-every', '1',
                  '--eval-every', '0', '--quiet', '--save-every', '1e9']
        run = os.path.join(self.tmp, 'run')
        self.assertEqual(train.main(common + ['--run', run, '--max-steps', '2']), 0)
        saved = dict(config.PRESETS['smoke'])
        config.PRESETS['smoke']['num_blocks'] = 10  # θ 64 → 128 rows
        try:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(train.main(common + ['--run', run, '--max-steps', '4']), 1)
            self.assertIn('another shape', err.getvalue())
            self.assertIn('training.mplus.grow', err.getvalue())
            grown = os.path.join(self.tmp, 'grown.pt')
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(grow.main(['--state', os.path.join(run, 'state.pt'), '--num-blocks', '10', '--out', grown]), 0)
            on = os.path.join(self.tmp, 'on')
            self.assertEqual(train.main(common + ['--run', on, '--max-steps', '4', '--init-from', grown]), 0)
            s = load_state(os.path.join(on, 'state.pt'))
            self.assertEqual((s['step'], tuple(s['model']['memory'].shape)), (4, (2, 128, 64)))
        finally:
            config.PRESETS['smoke'].clear()
            config.PRESETS['smoke'].update(saved)


if __name__ == '__main__':
    unittest.main()
