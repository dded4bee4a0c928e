"""fit_retriever: a state whose projectors are fitted to recorded memory, everything else the same."""
import contextlib
import io
import os
import random
import re
import unittest

import torch

from training.mplus import fit_retriever, pool, train
from training.mplus.config import ModelConfig
from training.mplus.data import Corpus
from training.mplus.device import load_state
from training.mplus.model import MPlus, frozen_as_exported
from training.mplus.retriever_ceiling import ask, collect, problem_stage, projectors, recall, score, write
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

    def test_a_pool_ranks_each_problem_among_a_repositorys_rows(self):
        """--pool W,S: S memories of W long-code windows are recorded once; their rows join every
        problem as the bank's negatives (tag −2) and a held-out one measures recall at that scale.
        An empty pool leaves recall as it was; a pool of the fact's own rows' copies can only lower
        it (they compete for the same R)."""
        model = frozen_as_exported(load_state(self.state))
        corpus = Corpus(self.data)
        recorded = pool.normed(model, pool.record(model, corpus, 12, 2, 7).rows)
        self.assertEqual(len(recorded), model.c.num_layers)
        self.assertGreater(recorded[0].shape[0], 0)
        self.assertEqual(recorded[0].shape[1], model.c.hidden_size)
        sets = collect(model, corpus, problem_stage(True, 3, 0.3, long_code=True), 1, 2, random.Random(3), torch.Generator().manual_seed(3))
        l, q, qm, rows, tags = pool.augmented(sets[0][0], recorded, 5, torch.Generator().manual_seed(1))
        self.assertEqual(rows.shape[1], sets[0][0][3].shape[1] + 5)
        self.assertTrue(bool((tags[:, -5:] == pool.BANKED).all()))
        R, projs = model.c.retrieve_size, projectors(model)
        empty = [r[:0] for r in recorded]
        self.assertEqual(pool.pool_recall(projs, sets, empty, R), recall(projs, sets, R))
        fact_like = [torch.cat([p[3][0][p[4][0] == 0]] * 8) for p in sets[0]]  # episode 0's fact rows, 8 copies of each
        for before, after in zip(recall(projs, sets, R), pool.pool_recall(projs, sets, fact_like, R)):
            self.assertLessEqual(after, before)

    def test_hard_negatives_are_each_episodes_highest_scoring_pool_rows(self):
        """pool.hardest: the union over the batch of each episode's top-k pool rows under the
        projectors given; augmented appends exactly those (no sample) or them besides the sample,
        each row once. Other projectors pick other rows."""
        model = frozen_as_exported(load_state(self.state))
        corpus = Corpus(self.data)
        recorded = pool.normed(model, pool.record(model, corpus, 12, 2, 7).rows)
        sets = collect(model, corpus, problem_stage(True, 3, 0.3, long_code=True), 1, 2, random.Random(3), torch.Generator().manual_seed(3))
        projs = projectors(model)
        for p in sets[0]:
            l, q, qm, rows, tags = p
            got = pool.hardest(p, recorded, projs[l], 4)
            s = score(projs[l], q, qm, recorded[l].unsqueeze(0).expand(q.shape[0], -1, -1))[2]
            want = set(s.topk(4, dim=1).indices.flatten().tolist())
            self.assertEqual(set(got.tolist()), want)
            _, _, _, rows2, tags2 = pool.augmented(p, recorded, 0, None, got)
            self.assertEqual(rows2.shape[1], rows.shape[1] + len(want))
            self.assertTrue(torch.equal(rows2[0, rows.shape[1]:], recorded[l][got]))
            self.assertTrue(bool((tags2[:, rows.shape[1]:] == pool.BANKED).all()))
            _, _, _, rows3, _ = pool.augmented(p, recorded, 5, torch.Generator().manual_seed(1), got)
            extra = rows3.shape[1] - rows.shape[1]
            self.assertGreaterEqual(extra, len(want))
            self.assertLessEqual(extra, len(want) + 5)
        l = sets[0][0][0]
        other = projectors(model)
        with torch.no_grad():
            for w in other[l][1].parameters():
                w.neg_()
        mine = pool.hardest(sets[0][0], recorded, projs[l], 4)
        self.assertNotEqual(set(pool.hardest(sets[0][0], recorded, other[l], 4).tolist()), set(mine.tolist()))
        # Hardest recomputes on a problem's every `every`-th visit: in between, the rows it picked.
        cached = pool.Hardest(recorded, 4, every=2)
        self.assertTrue(torch.equal(cached(sets[0][0], projs[l]), mine))
        self.assertTrue(torch.equal(cached(sets[0][0], other[l]), mine))
        self.assertFalse(torch.equal(cached(sets[0][0], other[l]), mine))

    def test_asked_among_a_pool_as_the_product_holds_it(self):
        """pool.with_pool puts the pool's rows in Θ for the question, and with theta the pool's θ in
        place of the episode's, whose rows join the candidates. An empty pool without theta asks
        exactly as the episode's own memory does (keys recomputed are the keys written); a real one
        leaves layer 0's question rows (the embeddings) as they were, keeps the pool's rows out of
        the problem and ranks them (some are retrieved)."""
        model = frozen_as_exported(load_state(self.state))
        corpus = Corpus(self.data)
        rec = pool.record(model, corpus, 12, 2, 7)
        N = model.c.stm_size
        self.assertEqual([tuple(x.shape) for x in rec.stm], [(N, model.c.hidden_size)] * model.c.num_layers)
        self.assertEqual(rec.stm_ages[0].shape, (N,))
        b, mem = write(model, corpus, problem_stage(True, 3, 0.3, long_code=True), 2, random.Random(3), torch.Generator().manual_seed(3))
        own = ask(model, b, mem)
        empty = pool.Recorded([r[:0] for r in rec.rows], rec.stm, rec.stm_ages)
        for (l, q, qm, rows, tags), (l2, q2, qm2, rows2, tags2) in zip(own, ask(model, b, pool.with_pool(model, mem, empty, theta=False))):
            self.assertEqual(l, l2)
            torch.testing.assert_close(q2, q, rtol=1e-5, atol=1e-6)
            self.assertTrue(torch.equal(rows2, rows) and torch.equal(tags2, tags))
        full = pool.with_pool(model, mem, rec)
        P, M = rec.rows[0].shape[0], mem.ltm[0].shape[1]
        self.assertEqual(full.ltm[0].shape[1], M + P)
        self.assertTrue(bool((full.ltm_tag[0][:, -P:] == pool.BANKED).all()))
        self.assertTrue(bool((full.ltm_ages[0][:, -P:] == 0).all()))
        self.assertTrue(torch.equal(full.stm[1][1], rec.stm[1]))
        self.assertTrue(torch.equal(full.cache[1][:, -N:], mem.stm[1]) and torch.equal(full.cache_tag[1][:, -N:], mem.stm_tag[1]))
        self.assertEqual(mem.ltm[0].shape[1], M)  # mem itself unchanged
        for (l, q, qm, rows, tags), (_, q2, _, rows2, tags2) in zip(own, ask(model, b, full)):
            self.assertEqual(rows2.shape[1], rows.shape[1] + N)  # the episode's θ among its candidates, the pool's rows not
            self.assertTrue(torch.equal(rows2[:, :rows.shape[1]], rows) and torch.equal(tags2[:, :rows.shape[1]], tags))
            if l == 0:
                self.assertTrue(torch.equal(q2, q))
        _, retrieved, _ = model.generate_logits(full, b.tokens, b.q_len)
        self.assertTrue(any(bool(((r >= M) & (r < M + P)).any()) for r in retrieved), 'no pool row was retrieved')
        self.assertEqual(pool.with_pool(model, mem, rec, 5, torch.Generator().manual_seed(1)).ltm[1].shape[1], M + 5)

    def test_pool_mode_fits_against_the_pool_and_reports_at_its_scale(self):
        out = os.path.join(self.tmp, 'pooled.pt')
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', out, '--batches', '2', '--batch', '2',
                                     '--steps', '20', '--distractors', '2,3', '--test-batches', '1', '--threads', '1',
                                     '--pool', '10,2', '--pool-sample', '64'])
        self.assertEqual(rc, 0)
        text = printed.getvalue()
        self.assertIn('pools recorded', text)
        for when in ('before', 'after'):
            self.assertRegex(text, f'{when}, one-line facts among 8 long-code windows .* pool rows: recall@R')
        self.assertEqual(load_state(out)['retriever_fit']['pool'], '10,2')
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', out, '--batches', '2', '--batch', '2',
                                     '--steps', '20', '--distractors', '2,3', '--test-batches', '1', '--threads', '1',
                                     '--pool', '10,2', '--pool-sample', '64', '--rounds', '2', '--hard', '8'])
        self.assertEqual(rc, 0)
        text = printed.getvalue()
        for when in ('before', 'after round 1', 'after round 2'):
            self.assertRegex(text, f'{when}, one-line facts .* recall@R [0-9. ]+; asked among them .* [0-9.]+')
        self.assertEqual(load_state(out)['retriever_fit']['rounds'], 2)
        self.assertEqual(load_state(out)['retriever_fit']['hard'], 8)
        # The best of the rounds (or the state's own projectors) by the held-out recall asked as the
        # product asks is what is written; the report names it and its figure is the best printed.
        kept = load_state(out)['retriever_fit']['kept_round']
        self.assertIn(kept, (0, 1, 2))
        means = [sum(float(x) for x in m.split()) / len(m.split()) for m in re.findall(r'asked among them \(the product\'s question rows\) ([0-9. ]+)', text)]
        self.assertEqual(len(means), 3)
        self.assertAlmostEqual(means[kept], max(means), delta=1e-3)  # printed to 3 places
        self.assertRegex(text, r'kept (the state\'s own projectors|round [12]): mean recall asked among the pool [0-9.]+')
        if kept == 0:
            s, f = load_state(self.state), load_state(out)
            self.assertTrue(all(torch.equal(f['model'][k], s['model'][k]) for k in s['model']))
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', out + '.x', '--hard', '8'])
        self.assertEqual(rc, 2)
        self.assertIn('--hard', err.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', out + '.x', '--rounds', '2'])
        self.assertEqual(rc, 2)
        self.assertIn('--rounds', err.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', out + '.x', '--pool', '10'])
        self.assertEqual(rc, 2)
        self.assertIn('--pool', err.getvalue())
        self.assertFalse(os.path.exists(out + '.x'))

    def test_refuses_a_bad_distractor_range(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', os.path.join(self.tmp, 'x.pt'), '--distractors', '9,3'])
        self.assertEqual(rc, 2)
        self.assertIn('--distractors', err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'x.pt')))


if __name__ == '__main__':
    unittest.main()
