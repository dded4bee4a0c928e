"""The trainer's forward against the official implementation's golden cases (../shared/golden),
checked by the official compare.py: the same check `mplus trace` passes."""
import glob
import os
import subprocess
import sys
import tempfile
import unittest

from training.mplus import trace
from training.mplus.checkpoint import load

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
GOLDEN = os.environ.get('MPLUS_GOLDEN_DIR', os.path.join(ROOT, '..', 'shared', 'golden'))


class GoldenTest(unittest.TestCase):
    def test_cases_match(self):
        cases = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(GOLDEN, '*', 'expected.json')))
        f32 = [c for c in cases if 'f32' in os.path.basename(c)]
        if not f32:
            self.skipTest(f'no float32 golden case under {GOLDEN}')
        for case in f32:
            model, shipped = load(case)
            import json
            with open(os.path.join(case, 'ops.json')) as f:
                ops = json.load(f)['ops']
            res = trace.run(model, shipped, ops)
            with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
                json.dump(res, f)
            r = subprocess.run([sys.executable, os.path.join(GOLDEN, 'compare.py'), case, f.name], capture_output=True, text=True)
            os.unlink(f.name)
            self.assertEqual(r.returncode, 0, f'{case}:\n{r.stdout}')
            # The check can fail: drop one injection and the memory no longer matches.
            res2 = trace.run(*load(case), ops[1:])
            with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
                json.dump(res2, f)
            r2 = subprocess.run([sys.executable, os.path.join(GOLDEN, 'compare.py'), case, f.name], capture_output=True, text=True)
            os.unlink(f.name)
            self.assertNotEqual(r2.returncode, 0)


if __name__ == '__main__':
    unittest.main()
