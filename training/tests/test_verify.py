"""The trainer/product agreement check itself: it passes on an exported checkpoint and it can fail."""
import contextlib
import copy
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from training.mplus import export, trace
from training.mplus.checkpoint import load
import torch

from training.mplus.verify import ROOT, compare, is_top_r, make_ops, near_ties, per_op


class VerifyTest(unittest.TestCase):
    def test_ops_from_real_text_are_windows_of_it(self):
        from training.mplus.config import preset
        c = preset('smoke', 300, 256, 257)
        text = list(range(1000, 1600))  # distinct ids: a window is recognizable by its first id
        ops = make_ops(c, text_ids=text)['ops']
        self.assertEqual(ops[-1]['op'], 'generate')
        for op in ops:
            t = op['tokens']
            at = text.index(t[0])
            self.assertEqual(t, text[at:at + len(t)])
        self.assertTrue(all(x < 256 for op in make_ops(c)['ops'] for x in op['tokens']))  # no text: random bytes

    def test_export_then_compare_detects_differences(self):
        tmp = tempfile.mkdtemp(prefix='mplus-verify-')
        try:
            out = os.path.join(tmp, 'ckpt')
            self.assertEqual(export.main(['--init', 'smoke', '--seed', '4', '--out', out]), 0)
            for f in ('config.json', 'model.safetensors', 'tokenizer.json', 'question_template.txt', 'chunking.json'):
                self.assertTrue(os.path.exists(os.path.join(out, f)), f)
            model, shipped = load(out)
            ops = make_ops(model.c)
            res = trace.run(model, shipped, ops['ops'])
            self.assertEqual(compare(res, res), [])
            gen = next(i for i, r in enumerate(res['results']) if 'logits' in r)
            # Merges happened and retrieval scored: the check covers Θ, not only θ.
            self.assertGreater(len(res['state']['layers'][0]['ltm']), model.c.ltm_initial_size)
            nudged = copy.deepcopy(res)
            nudged['results'][gen]['logits'][0][0] += 1e-2
            self.assertTrue(any('logits' in b for b in compare(res, nudged)))
            swapped = copy.deepcopy(res)
            r0 = swapped['results'][gen]['retrieved'][0]
            r0[0], r0[-1] = r0[-1], r0[0]
            self.assertTrue(any('retrieved' in b for b in compare(res, swapped)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_export_chunking_fits_the_products_injection_limit(self):
        # The product refuses a chunking.json outside its bounds (src/model/chunking.ts) and skips
        # a chunk above its injection limit: the export's bounds must be the product's.
        with open(os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'model', 'chunking.ts')) as f:
            ts = f.read()
        for bound in ('MIN_CHUNK_TOKENS', 'MAX_CHUNK_TOKENS'):
            self.assertEqual(getattr(export, bound), int(re.search(rf'^export const {bound} = (\d+);', ts, re.M).group(1)), bound)
        tmp = tempfile.mkdtemp(prefix='mplus-chunking-')
        try:
            def exported(*flags):
                out = os.path.join(tmp, 'x'.join(flags) or 'default')
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    rc = export.main(['--init', 'smoke', '--no-verify', '--out', out, *flags])
                if rc != 0:
                    self.assertFalse(os.path.exists(out))
                    return rc, err.getvalue()
                with open(os.path.join(out, 'chunking.json')) as f:
                    return rc, json.load(f)
            self.assertEqual(exported(), (0, {'unit': 'tokens', 'max': 512, 'min': 512}))
            self.assertEqual(exported('--chunk-tokens', '200'), (0, {'unit': 'tokens', 'max': 200, 'min': 200}))
            for bad in ('513', '15'):
                rc, err = exported('--chunk-tokens', bad)
                self.assertEqual(rc, 2)
                self.assertIn(f'--chunk-tokens {bad}: give 16 to 512', err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class ExportedSmokeCase(unittest.TestCase):
    """cls.ckpt: a random smoke checkpoint exported (unverified) from SEED; cls.model, cls.shipped
    loaded from it; cls.ops: make_ops for it (the whole script)."""
    SEED = 4

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='mplus-verify-case-')
        cls.ckpt = os.path.join(cls.tmp, 'ckpt')
        assert export.main(['--init', 'smoke', '--seed', str(cls.SEED), '--out', cls.ckpt, '--no-verify']) == 0
        cls.model, cls.shipped = load(cls.ckpt)
        cls.script = make_ops(cls.model.c)
        cls.ops = cls.script['ops']

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class NearTieTest(ExportedSmokeCase):
    """A retrieval near-tie broken the other way is accepted only when it is one; a real wrong pick is not."""

    def product_picking_another_row(self, py, gen):
        """What an implementation that kept another candidate at layer 0 reports: the trainer forced to it."""
        chosen = list(py['results'][gen]['retrieved'][0])
        scores = py['results'][gen]['_scores'][0]
        best = max(chosen, key=lambda c: scores[c])
        worst_left_out = min((c for c in range(len(scores)) if c not in chosen), key=lambda c: scores[c])
        other = [worst_left_out if c == best else c for c in chosen]
        return trace.run(self.model, self.shipped, self.ops, forced={gen: [other] + py['results'][gen]['retrieved'][1:]})

    def test_is_top_r(self):
        s = [0.5, 0.5 + 5e-6, 0.2, 0.9]
        self.assertTrue(is_top_r(s, [3, 1]))
        self.assertTrue(is_top_r(s, [3, 0]))      # 0 trails 1 by less than TIE
        self.assertFalse(is_top_r(s, [3, 2]))
        self.assertFalse(is_top_r(s, [0, 1]))

    def run_case(self, scale):
        with torch.no_grad():
            saved = {n: p.clone() for n, p in self.model.named_parameters() if 'query_proj' in n}
            for n, p in self.model.named_parameters():
                if 'query_proj' in n:
                    p.mul_(scale)
        try:
            py = trace.run(self.model, self.shipped, self.ops)
            gen = next(i for i, r in enumerate(py['results']) if 'logits' in r)
            self.assertIsNotNone(py['results'][gen]['_scores'][0], 'layer 0 must score its candidates')
            ts = self.product_picking_another_row(py, gen)
            self.assertTrue(any('retrieved' in b for b in compare(py, ts)))
            return near_ties(py, ts, lambda forced: trace.run(self.model, self.shipped, self.ops, forced=forced)), ts
        finally:
            with torch.no_grad():
                for n, p in self.model.named_parameters():
                    if n in saved:
                        p.copy_(saved[n])

    def test_exact_tie_is_accepted_and_the_rest_checked(self):
        (py2, notes), ts = self.run_case(0.0)  # query_proj zeroed: every score is sigmoid(0) = 0.5
        self.assertIsNotNone(py2, notes)
        self.assertTrue(any('near-tie' in n for n in notes))
        self.assertEqual(compare(py2, ts), [])

    def test_a_wrong_pick_is_refused(self):
        (py2, bad), _ = self.run_case(200.0)  # scores spread far beyond TIE
        self.assertIsNone(py2)
        self.assertTrue(any('not a top' in b for b in bad), bad)


class PerOpTest(ExportedSmokeCase):
    """verify.per_op against a real `mplus trace --every-state`: it passes, and a wrong op is named."""
    SEED = 5

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ops_path, res = os.path.join(cls.tmp, 'ops.json'), os.path.join(cls.tmp, 'res.json')
        with open(ops_path, 'w') as f:
            json.dump(cls.script, f)
        subprocess.run(['node', os.path.join(ROOT, 'bin', 'mplus.js'), 'trace', '--model', cls.ckpt, '--ops', ops_path,
                        '--out', res, '--every-state'], check=True, capture_output=True)
        with open(res) as f:
            cls.ts = json.load(f)

    def check(self, ts):
        return per_op(self.model, self.shipped, self.ops, ts)

    def test_agrees_and_the_states_are_the_products(self):
        self.assertEqual(self.check(self.ts), [])
        # the last injection's packed state is the plain final state the trace also writes
        last = [r['state'] for r in self.ts['results'] if 'state' in r][-1]
        self.assertEqual(compare({'results': [], 'state': last}, {'results': [], 'state': self.ts['state']}), [])
        self.assertGreater(len(self.ts['state']['layers'][0]['ltm']), self.model.c.ltm_initial_size)  # merges happened

    def test_a_wrong_delta_is_named(self):
        ts = copy.deepcopy(self.ts)
        ts['results'][3]['delta'][1][2][5] += 1e-2
        self.assertEqual(self.check(ts), ['op3.delta: max abs diff 0.01 (allowed 0.0001)'])

    def test_a_wrong_memory_is_named_and_the_next_op_runs_from_it(self):
        ts = copy.deepcopy(self.ts)
        packed = ts['results'][4]['state']['layers'][0]['stm']
        rows = trace.floats(packed).copy()
        rows[0, 0] += 0.5  # θ's oldest row, which the next injection's attention reads
        packed['f32'] = __import__('base64').b64encode(rows.astype('<f4').tobytes()).decode()
        bad = self.check(ts)
        self.assertIn('op4.state.layer0.stm: max abs diff 0.5 (allowed 0.0001)', bad)
        # op 5 is run from the product's (tampered) memory, the product ran it from its own
        self.assertTrue(any(b.startswith('op5.') for b in bad), bad)

    def test_a_trace_without_states_is_refused_clearly(self):
        ts = copy.deepcopy(self.ts)
        for r in ts['results']:
            r.pop('state', None)
        bad = self.check(ts)
        self.assertEqual(len(bad), 1)
        self.assertIn('--every-state', bad[0])


if __name__ == '__main__':
    unittest.main()
