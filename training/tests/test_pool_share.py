"""Stage.pool_share: drill steps asked behind a recorded pool of fed code, trained end to end, and
a run that records its pool resumes to the same weights."""
import dataclasses
import json
import os
import random
from unittest import mock

import torch

from training.mplus import train
from training.mplus.config import preset
from training.mplus.data import Corpus, Stage, sample_batch
from training.mplus.device import load_state
from training.mplus.model import MPlus
from training.tests.srcdata import SrcDataCase, smoke_run_flags, with_feed

POOLED = Stage('pooled', 10_000, 48, (0, 0), True, fact_anywhere=True, fact_negatives=1.0, ask_others=3,
               one_line_drill=0.5, write_grad_drill=True, pool_share=1.0)
# A pool the smoke model records in seconds, refreshed within a few steps.
SMALL_POOL = dict(POOL_CHUNKS=12, POOL_REFRESH=3, POOL_SAMPLE=64)


class HeadCount(random.Random):
    """Counts the random() calls made before the first getrandbits (the first choice, shuffle or
    sample): sample_batch's coin flips for the kind of step come first, each one random() call."""

    def __init__(self, seed):
        self.flips, self.chose = 0, False
        super().__init__(seed)

    def random(self):
        self.flips += not self.chose
        return super().random()

    def getrandbits(self, k):
        self.chose = True
        return super().getrandbits(k)


class PoolShareTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with_feed(cls.tmp, cls.data)
        cls.corpus = Corpus(cls.data)

    def model(self):
        t = self.corpus.tok
        torch.manual_seed(0)
        return MPlus(preset('smoke', t.vocab_size, t.bos, t.eos))

    def test_only_drill_steps_are_pooled_and_no_draw_without_the_share(self):
        rng = random.Random(3)
        batches = [sample_batch(self.corpus, 2, POOLED, rng) for _ in range(12)]
        self.assertEqual([b.pooled for b in batches], [b.drill for b in batches])
        self.assertTrue(0 < sum(b.drill for b in batches) < 12)
        # Without the share nothing more is drawn, so a run without it samples as before the field
        # existed: a batch's coin flips before its first choice are one fewer than with any share.
        drill = dataclasses.replace(POOLED, one_line_drill=1.0)
        for seed in range(4):
            unpooled, rare = HeadCount(seed), HeadCount(seed)
            self.assertFalse(sample_batch(self.corpus, 2, dataclasses.replace(drill, pool_share=0.0), unpooled).pooled)
            self.assertFalse(sample_batch(self.corpus, 2, dataclasses.replace(drill, pool_share=1e-12), rare).pooled)
            self.assertEqual(unpooled.flips + 1, rare.flips)

    def test_a_pooled_batch_is_asked_behind_the_pool_and_trains_the_writes_and_keys(self):
        stage = dataclasses.replace(POOLED, one_line_drill=1.0)
        b = sample_batch(self.corpus, 2, stage, random.Random(1))
        self.assertTrue(b.pooled)
        m = self.model()
        with mock.patch.multiple(train, **SMALL_POOL):
            recorded = train.record_pool(m.c, {'step': 0, 'model': m.state_dict()}, self.corpus, 1, 'cpu')
        self.assertGreater(recorded.rows[0].shape[0], SMALL_POOL['POOL_SAMPLE'])

        def run(pool):
            m.zero_grad(set_to_none=True)
            with mock.patch.multiple(train, **SMALL_POOL):
                lm, ret, _ = train.episode_loss(m, b, stage, torch.Generator().manual_seed(2), pool=pool)
            (lm + ret).backward()
            grads = lambda key: torch.cat([p.grad.flatten() for n, p in m.named_parameters() if key in n and p.grad is not None])
            return float(lm), grads('.lora_B.default.'), grads('key_proj')

        own, behind = run(None), run(recorded)
        self.assertNotAlmostEqual(own[0], behind[0], places=4)  # another memory is read
        self.assertGreater(float(behind[1].abs().sum()), 0)     # the writes are trained through it
        self.assertGreater(float(behind[2].abs().sum()), 0)     # and the keys, against the pool's rows
        self.assertFalse(torch.equal(own[2], behind[2]))

    def test_recording_is_a_function_of_the_weights_and_leaves_the_torch_rng(self):
        m = self.model()
        before = torch.get_rng_state()
        with mock.patch.multiple(train, **SMALL_POOL):
            a = train.record_pool(m.c, {'step': 3, 'model': m.state_dict()}, self.corpus, 1, 'cpu')
            b = train.record_pool(m.c, {'step': 3, 'model': m.state_dict()}, self.corpus, 1, 'cpu')
        self.assertTrue(torch.equal(before, torch.get_rng_state()))
        for x, y in zip(a.rows + a.stm, b.rows + b.stm):
            self.assertTrue(torch.equal(x, y))
        self.assertEqual((m.c.update_ltm_frequency, m.c.initial_rf), (4, 3))  # the smoke preset's, restored

    def test_a_pooled_run_resumes_to_the_same_weights(self):
        # One thread: on two, a resumed process may sum some reduction in another order than the
        # uninterrupted one (train.py's docstring: measured on main's curriculum too): this test
        # failed in CI on 2 cores, and 1 of 3 times here (Θ's initial rows, `ltm.1`); on one
        # thread it passed every time. Which op it is was not pinned down.
        flags = smoke_run_flags(self.data) + ['--threads', '1']
        full, part = os.path.join(self.tmp, 'full'), os.path.join(self.tmp, 'part')
        with mock.patch.dict(train.CURRICULA, {'smoke': [POOLED]}), mock.patch.multiple(train, **SMALL_POOL):
            self.assertEqual(train.main(flags + ['--run', full, '--max-steps', '7']), 0)
            self.assertEqual(train.main(flags + ['--run', part, '--max-steps', '5']), 0)  # killed after step 5
            self.assertEqual(train.main(flags + ['--run', part, '--max-steps', '7']), 0)
        with open(os.path.join(full, 'log.jsonl')) as f:
            log = [json.loads(l) for l in f]
        self.assertEqual([r['pool_recorded_at'] for r in log if 'pool_recorded_at' in r], [0, 3, 6])
        self.assertTrue(any(r.get('loss') for r in log))
        a, b = (load_state(os.path.join(r, 'state.pt')) for r in (full, part))
        self.assertEqual(a['pool_from']['step'], 6)
        for k in a['model']:
            self.assertTrue(torch.equal(a['model'][k], b['model'][k]), k)
