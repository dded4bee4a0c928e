"""The trainer/product agreement check itself: it passes on an exported checkpoint and it can fail."""
import copy
import os
import shutil
import tempfile
import unittest

from training.mplus import export, trace
from training.mplus.checkpoint import load
from training.mplus.verify import compare, make_ops


class VerifyTest(unittest.TestCase):
    def test_export_then_compare_detects_differences(self):
        tmp = tempfile.mkdtemp(prefix='mplus-verify-')
        try:
            out = os.path.join(tmp, 'ckpt')
            self.assertEqual(export.main(['--init', 'smoke', '--seed', '4', '--out', out]), 0)
            for f in ('config.json', 'model.safetensors', 'tokenizer.json', 'question_template.txt'):
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


if __name__ == '__main__':
    unittest.main()
