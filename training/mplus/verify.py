"""Does the product compute what the trainer computes on a checkpoint? Runs one ops script (chunks
with explicit drop plans, enough injections for Θ merges, then a question with 4 greedy steps)
through `node bin/mplus.js trace --every-state`, then each op through this trainer's forward from
the memory the product held before it (per_op), and compares: the op's output and the memory after
it, every float within 1e-4 · max(1, max|x|) (the golden tolerance), retrieved indices, tokens and
ages exactly.

One allowance: retrieval takes the top R of scores that two float32 implementations round
differently, so where candidates tie within TIE (common while the retriever is untrained: every
score is sigmoid(≈0) ≈ 0.5) the two may keep different ones, and everything after differs. Then the
trainer is run again reading the product's rows, and that is accepted only if the product's rows
are a top R of the trainer's own scores up to TIE, and every other quantity then agrees.

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
TIE = 1e-5  # scores are means of sigmoids in (0, 1); float32 reorderings move them by ~1e-7


def make_ops(c, seed=7, text_ids=None):
    """Injections of 16–40 tokens with explicit drops, then a question. text_ids: windows of real
    text's ids instead of random ids 0–255, so a trained model is checked on the inputs it was
    trained for (its memory then holds what the product's would, and retrieval scores spread)."""
    rng = random.Random(seed)
    n_inject = min(c.update_ltm_frequency * 2 + 1, 24)
    N, K = c.stm_size, c.num_tokens

    def ids(n):
        if text_ids is None or len(text_ids) < n:
            return [rng.randrange(0, 256) for _ in range(n)]
        at = rng.randrange(0, len(text_ids) - n + 1)
        return list(text_ids[at:at + n])

    ops = []
    for _ in range(n_inject):
        tokens = ids(rng.randint(16, 40))
        drop = [sorted(rng.sample(range(N), K)) for _ in range(c.num_layers)]
        ops.append({'op': 'inject', 'tokens': tokens, 'drop': drop})
    ops.append({'op': 'generate', 'tokens': ids(8), 'steps': 4})
    return {'ops': ops}


def code_ids(t, limit=20_000):
    """Ids of real code under tokenizer t: the start of this repository's src/sidecar/*.ts."""
    d = os.path.join(ROOT, 'src', 'sidecar')
    text = ''
    for name in sorted(os.listdir(d)):
        if name.endswith('.ts') and len(text) < limit:
            with open(os.path.join(d, name), encoding='utf-8') as f:
                text += f.read()
    return t.encode(text[:limit])


def _close(bad, name, a, b):
    a, b = trace.floats(a), trace.floats(b)
    if a.size == 0 and b.size == 0:  # an empty table: [] in decimal lists, shape [0, w] packed
        return
    if a.shape != b.shape:
        bad.append(f'{name}: shape {a.shape} vs {b.shape}')
        return
    a, b = a.astype(np.float64), b.astype(np.float64)
    err = float(np.max(np.abs(a - b)))
    scale = max(1.0, float(np.max(np.abs(a))))
    if not err <= TOL * scale:
        bad.append(f'{name}: max abs diff {err:.3g} (allowed {TOL * scale:.3g})')


def compare_op(i, p, t):
    """What differs between the trainer's result p of op i and the product's t."""
    bad = []
    if 'delta' in p:
        _close(bad, f'op{i}.delta', p['delta'], t.get('delta'))
        return bad
    _close(bad, f'op{i}.logits', p['logits'], t.get('logits'))
    if p['tokens'] != t.get('tokens'):
        bad.append(f'op{i}.tokens {t.get("tokens")} vs {p["tokens"]}')
    for l, (rp, rt) in enumerate(zip(p['retrieved'], t.get('retrieved', []))):
        if list(rp) != list(rt):
            bad.append(f'op{i}.layer{l}.retrieved indices differ (product {rt[:6]}…, trainer {rp[:6]}…)')
    return bad


def compare_state(name, p, t):
    """What differs between two memories (trace `state`s, packed or not)."""
    bad = []
    for l, (pl, tl) in enumerate(zip(p['layers'], t['layers'])):
        for k in ('stm', 'ltm', 'ltm_keys', 'cache', 'cache_keys'):
            _close(bad, f'{name}.layer{l}.{k}', pl[k], tl.get(k))
        _close(bad, f'{name}.layer{l}.ltm_rf', [pl['ltm_rf']], [tl.get('ltm_rf', [])])
        for k in ('stm_ages', 'ltm_ages', 'cache_ages'):
            if [int(x) for x in pl[k]] != [int(x) for x in tl.get(k, [])]:
                bad.append(f'{name}.layer{l}.{k} differ')
    if len(p['layers']) != len(t['layers']):
        bad.append(f'{name}: {len(t["layers"])} layers from mplus trace, {len(p["layers"])} from the trainer')
    if p['update_step'] != t.get('update_step'):
        bad.append(f'{name}.update_step differs')
    return bad


def compare(py, ts):
    """Whole traces: every op's result, then the final memory."""
    if len(py['results']) != len(ts.get('results', [])):
        return [f'{len(ts.get("results", []))} results from mplus trace, {len(py["results"])} from the trainer']
    bad = []
    for i, (p, t) in enumerate(zip(py['results'], ts['results'])):
        bad += compare_op(i, p, t)
    return bad + compare_state('state', py['state'], ts['state'])


def is_top_r(scores, chosen, tie=TIE):
    """Is `chosen` (candidate indices) a top-len(chosen) of `scores`, up to `tie`?"""
    chosen = set(chosen)
    if not chosen:
        return True
    rest = [s for c, s in enumerate(scores) if c not in chosen]
    return not rest or min(scores[c] for c in chosen) >= max(rest) - tie


def near_ties(py, ts, rerun, first=0):
    """Ops whose retrieval differs only by near-ties: reruns the trainer with the product's rows.
    Returns (the rerun's result, notes) or (None, reasons it is not a near-tie). first: the op
    number of the traces' first result (for the messages)."""
    forced = {}
    for i, (p, t) in enumerate(zip(py['results'], ts['results'])):
        if 'retrieved' in p and [list(r) for r in p['retrieved']] != [list(r) for r in t.get('retrieved', [])]:
            forced[i] = [list(r) for r in t['retrieved']]
    if not forced:
        return None, []
    py2 = rerun(forced)
    notes, bad = [], []
    for i, retrieved in forced.items():
        for l, (chosen, scores) in enumerate(zip(retrieved, py2['results'][i]['_scores'])):
            same = chosen == list(py['results'][i]['retrieved'][l])
            op = f'op{first + i}.layer{l}'
            if scores is None and not same:
                bad.append(f'{op}: retrieved indices differ where nothing is scored (Θ smaller than R)')
            elif scores is not None and not is_top_r(scores, chosen):
                bad.append(f'{op}: the product retrieved rows that are not a top {len(chosen)} of the trainer\'s scores (within {TIE})')
            elif not same:
                notes.append(f'{op}: a near-tie in retrieval (scores within {TIE}) broken differently; checked with the product\'s rows')
    return (None, bad) if bad else (py2, notes)


def per_op(model, shipped, ops, ts, notes=None):
    """[] when every op, run by the trainer from the memory the product held before it, gives the
    product's result and the product's memory after it (ts: `mplus trace --every-state`).

    Why per op: a trained model's write recurrence amplifies float rounding (run8 at step 7,213:
    two float32 implementations 0.094 apart after 14 injections of real code, where one op parts
    them by ~1e-6), so whole scripts compare trajectories, not implementations. Per op, the
    tolerance stays the golden one and a wrong op cannot hide behind an earlier one."""
    if len(ts.get('results', [])) != len(ops):
        return [f'{len(ts.get("results", []))} results from mplus trace for {len(ops)} ops']
    bad, start = [], None
    for i, (op, t) in enumerate(zip(ops, ts['results'])):
        if op['op'] == 'inject' and 'state' not in t:
            return bad + [f'op{i}: mplus trace wrote no memory after the op (a build without --every-state: run `npm run build`)']
        rerun = lambda forced, op=op, start=start: trace.run(model, shipped, [op], forced=forced, start=start)
        py = rerun(None)
        b = compare_op(i, py['results'][0], t)
        if b and 'logits' in t:
            py2, why = near_ties(py, {'results': [t]}, rerun, first=i)
            if py2 is None:
                b += why
            else:
                b = compare_op(i, py2['results'][0], t)
                if not b and notes is not None:
                    notes.extend(why)
        if 'state' in t:
            b += compare_state(f'op{i}.state', py['state'], t['state'])
            start = t['state']
        bad += b
    return bad


def verify(folder: str, notes=None, text_ids=None):
    """[] when the product loads the checkpoint and agrees with the trainer op by op (per_op), else
    what differs. text_ids: real text's ids for the ops (make_ops); the exporter passes code_ids."""
    try:
        model, shipped = load(folder)
    except Exception as e:
        return [f'the trainer cannot load {folder}: {e}']
    ops = make_ops(model.c, text_ids=text_ids)
    cli = os.path.join(ROOT, 'bin', 'mplus.js')
    if not os.path.exists(os.path.join(ROOT, 'out', 'src', 'cli', 'main.js')):
        return [f'{ROOT}/out is not built: run `npm run build` first']
    with tempfile.TemporaryDirectory() as d:
        ops_path, res_path = os.path.join(d, 'ops.json'), os.path.join(d, 'result.json')
        with open(ops_path, 'w') as f:
            json.dump(ops, f)
        r = subprocess.run(['node', cli, 'trace', '--model', folder, '--ops', ops_path, '--out', res_path, '--every-state'],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return [f'mplus trace failed on {folder} (exit {r.returncode}): {r.stderr.strip()[-800:]}']
        with open(res_path) as f:
            ts = json.load(f)
    return per_op(model, shipped, ops['ops'], ts, notes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True)
    a = ap.parse_args(argv)
    notes = []
    bad = verify(a.model, notes)
    for n in notes:
        print(n)
    for b in bad[:30]:
        print(b)
    print(f'{len(bad)} mismatches' if bad else f'{a.model}: the product and the trainer agree')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
