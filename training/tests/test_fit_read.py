"""fit_read: a state whose read adapter is fitted to the product's memories, everything else the same."""
import contextlib
import io
import os
import random

import torch

from training.mplus import fit_read, pool, train
from training.mplus.data import Corpus
from training.mplus.device import load_state
from training.mplus.model import frozen_as_exported
from training.tests.srcdata import SrcDataCase, smoke_run_flags, with_feed


class FitReadTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with_feed(cls.tmp, cls.data)
        run = os.path.join(cls.tmp, 'run')
        assert train.main(smoke_run_flags(cls.data) + ['--run', run, '--max-steps', '2']) == 0
        cls.state = os.path.join(run, 'state.pt')
        cls.out = os.path.join(cls.tmp, 'fitted', 'state.pt')
        cls.printed = io.StringIO()
        with contextlib.redirect_stdout(cls.printed):
            cls.rc = fit_read.main(['--data', cls.data, '--state', cls.state, '--out', cls.out, '--steps', '120', '--batch', '4',
                                    '--lr', '1e-2', '--pool', '12', '--test-batches', '1', '--eval-every', '20'])

    def test_only_the_read_adapter_changes_and_memories_are_written_as_before(self):
        self.assertEqual(self.rc, 0)
        s, f = load_state(self.state), load_state(self.out)
        self.assertEqual(f['model'].keys(), s['model'].keys())
        self.assertEqual((f['config'], f['step'], f['identity']), (s['config'], s['step'], s['identity']))
        changed = {k for k in s['model'] if not torch.equal(f['model'][k], s['model'][k])}
        self.assertTrue(changed, 'the fit moved nothing')
        self.assertTrue(all('.decoder_adapter.' in k for k in changed), sorted(changed))
        self.assertNotIn('opt', f)
        self.assertEqual(f['read_fit']['steps'], 120)
        # The write never reads the decoder adapter: the same code makes the same rows.
        corpus = Corpus(self.data)
        a, b = frozen_as_exported(s), frozen_as_exported(f)
        ra, rb = (pool.record(m, corpus, 6, 1, 3, feed=True) for m in (a, b))
        for x, y in zip(ra.rows + ra.stm, rb.rows + rb.stm):
            self.assertTrue(torch.equal(x, y))

    def test_the_fit_lowers_the_answer_loss_of_what_it_trains_on(self):
        # A smoke model two steps old writes nothing worth reading, so held-out answers (fresh random
        # values) cannot improve; fixed problems, θ alone and after a pool, can be learned.
        corpus = Corpus(self.data)
        model = frozen_as_exported(load_state(self.state))
        fit_read.trainable(model)
        recorded = pool.record(model, corpus, 12, 1, 77, feed=True)
        rng, gen = random.Random(9), torch.Generator().manual_seed(9)
        fixed = [fit_read.problem(model, corpus, 4, rec, rng, gen) for rec in (None, recorded)]
        loss = lambda: sum(float(fit_read.answer_loss(model, *p)[0]) for p in fixed)
        with torch.no_grad():
            before = loss()
        with contextlib.redirect_stdout(io.StringIO()):
            fit_read.fit(model, lambda step: fixed[step % 2], 120, 1e-2)
        with torch.no_grad():
            self.assertLess(loss(), 0.95 * before)  # 0.89 measured; unchanged if no gradient reached the adapter
        self.assertTrue(all(p.requires_grad == ('.decoder_adapter.' in n) for n, p in model.named_parameters()))

    def test_reports_both_kinds_before_during_and_after(self):
        text = self.printed.getvalue()
        for when in ('before', 'step 20', 'after'):
            self.assertRegex(text, f'{when}: exact θ \\(N = 0\\) [0-9.]+, after the pool \\(160k\\) [0-9.]+')
        self.assertRegex(text, r'step 120/120: loss [0-9.]+')

    def test_refuses_bad_flags_without_writing(self):
        for flags in (['--pool-share', '1.5'], ['--steps', '0'], ['--pool', '0']):
            err, out = io.StringIO(), os.path.join(self.tmp, 'x.pt')
            with contextlib.redirect_stderr(err):
                rc = fit_read.main(['--data', self.data, '--state', self.state, '--out', out] + flags)
            self.assertEqual(rc, 2, flags)
            self.assertIn('fit_read: give', err.getvalue())
            self.assertFalse(os.path.exists(out))
