"""Does the product compute what the trainer computes on a checkpoint? Runs one ops script (random
chunks with explicit drop plans, enough injections for Θ merges, then a question with 4 greedy
steps) through this trainer's forward and through `node bin/mplus.js trace`, and compares:
logits and every float in memory within 1e-4 · max(1, max|x|) (the golden tolerance), retrieved
indices, tokens and ages exactly.

  /usr/bin/python3 -m training.mplus.verify --model DIR      (exit 1 and a list on mismatch)
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

from . import trace
from .checkpoint import load

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
TOL = 1e-4


def make_ops(c, seed=7):
    rng = random.Random(seed)
    n_inject = min(c.update_ltm_frequency * 2 + 1, 24)
    N, K = c.stm_size, c.num_tokens
    ops = []
    for _ in range(n_inject):
        n = rng.randint(16, 40)
        tokens = [rng.randrange(0, 256) for _ in range(n)]
        drop = [sorted(rng.sample(range(N), K)) for _ in range(c.num_layers)]
        ops.append({'op': 'inject', 'tokens': tokens, 'drop': drop})
    ops.append({'op': 'generate', 'tokens': [rng.randrange(0, 256) for _ in range(8)], 'steps': 4})
    return {'ops': ops}


def compare(py, ts):
    bad = []

    def close(name, a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            bad.append(f'{name}: shape {a.shape} vs {b.shape}')
            return
        if a.size == 0:
            return
        err = float(np.max(np.abs(a - b)))
        scale = max(1.0, float(np.max(np.abs(a))))
        if not err <= TOL * scale:
            bad.append(f'{name}: max abs diff {err:.3g} (allowed {TOL * scale:.3g})')

    if len(py['results']) != len(ts.get('results', [])):
        return [f'{len(ts.get("results", []))} results from mplus trace, {len(py["results"])} from the trainer']
    for i, (p, t) in enumerate(zip(py['results'], ts['results'])):
        if 'delta' in p:
            close(f'op{i}.delta', p['delta'], t.get('delta'))
        else:
            close(f'op{i}.logits', p['logits'], t.get('logits'))
            if p['tokens'] != t.get('tokens'):
                bad.append(f'op{i}.tokens {t.get("tokens")} vs {p["tokens"]}')
            for l, (rp, rt) in enumerate(zip(p['retrieved'], t.get('retrieved', []))):
                if list(rp) != list(rt):
                    bad.append(f'op{i}.layer{l}.retrieved indices differ (product {rt[:6]}…, trainer {rp[:6]}…)')
    for l, (p, t) in enumerate(zip(py['state']['layers'], ts['state']['layers'])):
        for k in ('stm', 'ltm', 'ltm_keys', 'cache', 'cache_keys', 'ltm_rf'):
            close(f'state.layer{l}.{k}', p[k], t.get(k))
        for k in ('stm_ages', 'ltm_ages', 'cache_ages'):
            if [int(x) for x in p[k]] != [int(x) for x in t.get(k, [])]:
                bad.append(f'state.layer{l}.{k} differ')
    if py['state']['update_step'] != ts['state'].get('update_step'):
        bad.append('update_step differs')
    return bad


def verify(folder: str):
    """[] when the product loads the checkpoint and agrees with the trainer, else what differs."""
    try:
        model, shipped = load(folder)
    except Exception as e:
        return [f'the trainer cannot load {folder}: {e}']
    ops = make_ops(model.c)
    py = trace.run(model, shipped, ops['ops'])
    cli = os.path.join(ROOT, 'bin', 'mplus.js')
    if not os.path.exists(os.path.join(ROOT, 'out', 'src', 'cli', 'main.js')):
        return [f'{ROOT}/out is not built: run `npm run build` first']
    with tempfile.TemporaryDirectory() as d:
        ops_path, res_path = os.path.join(d, 'ops.json'), os.path.join(d, 'result.json')
        with open(ops_path, 'w') as f:
            json.dump(ops, f)
        r = subprocess.run(['node', cli, 'trace', '--model', folder, '--ops', ops_path, '--out', res_path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return [f'mplus trace failed on {folder} (exit {r.returncode}): {r.stderr.strip()[-800:]}']
        with open(res_path) as f:
            ts = json.load(f)
    return compare(py, ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True)
    a = ap.parse_args(argv)
    bad = verify(a.model)
    for b in bad[:30]:
        print(b)
    print(f'{len(bad)} mismatches' if bad else f'{a.model}: the product and the trainer agree')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
