"""CI's smoke training: the tiny preset on facts from this repository's own src/ (offline), for a
fixed number of steps (about a minute of CPU on 2 idle cores), asserting that the answer loss falls; then a
kill-and-resume check (the resumed run reaches the same weights as an uninterrupted one), --init-from,
and an export of the trained state's carry that the product loads and agrees with.

  /usr/bin/python3 -m training.mplus.smoke [--steps 80] [--work DIR]

Prints the loss curve; exits 1 with the numbers when the loss did not fall enough.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch

from . import carry, confusion, export, train
from .data import extract_dir
from .device import load_state

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def losses(run):
    with open(os.path.join(run, 'log.jsonl')) as f:
        return [json.loads(l)['loss'] for l in f if '"loss"' in l]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--steps', type=int, default=80)
    ap.add_argument('--work', default=None)
    a = ap.parse_args(argv)
    work = a.work or tempfile.mkdtemp(prefix='mplus-smoke-')
    data = os.path.join(work, 'data')
    extract_dir(os.path.join(ROOT, 'src'), data)
    common = ['--data', data, '--preset', 'smoke', '--seed', '5', '--batch', '8', '--lr', '3e-3', '--warmup', '10',
              '--log-every', '1', '--eval-every', '0', '--quiet', '--save-every', '1e9']
    run = os.path.join(work, 'run')
    shutil.rmtree(run, ignore_errors=True)
    rc = train.main(common + ['--run', run, '--max-steps', str(a.steps)])
    if rc:
        return rc
    ls = losses(run)
    k = max(5, len(ls) // 6)
    first, last = sum(ls[:k]) / k, sum(ls[-k:]) / k
    print(f'smoke: answer loss {first:.3f} (first {k} steps) → {last:.3f} (last {k}) over {len(ls)} steps')
    print('smoke: curve ' + ' '.join(f'{x:.2f}' for x in ls[::max(1, len(ls) // 20)]))
    ok = last < 0.8 * first
    # Kill-and-resume: 6 steps in one go == 3 steps, stop, 3 more from state.pt.
    r1, r2 = os.path.join(work, 'r1'), os.path.join(work, 'r2')
    for r in (r1, r2):
        shutil.rmtree(r, ignore_errors=True)
    train.main(common + ['--run', r1, '--max-steps', '6'])
    train.main(common + ['--run', r2, '--max-steps', '3'])
    train.main(common + ['--run', r2, '--max-steps', '6'])
    s1, s2 = load_state(os.path.join(r1, 'state.pt')), load_state(os.path.join(r2, 'state.pt'))
    same = all(torch.equal(s1['model'][k], s2['model'][k]) for k in s1['model'])
    print(f'smoke: resumed run {"matches" if same else "DIFFERS from"} the uninterrupted one at step {s2["step"]}')
    # --init-from: a new run goes on from r2's weights and curriculum position (step 6 → 8); a
    # state of another model (preset small) is refused.
    r3 = os.path.join(work, 'r3')
    shutil.rmtree(r3, ignore_errors=True)
    irc = train.main(common + ['--run', r3, '--max-steps', '8', '--init-from', os.path.join(r2, 'state.pt')])
    with open(os.path.join(r3, 'log.jsonl')) as f:
        recs = [json.loads(l) for l in f]
    inited = (irc == 0 and recs[0].get('initialized_from') and recs[0]['step'] == 6 and [r['step'] for r in recs if 'loss' in r] == [7, 8]
              and load_state(os.path.join(r3, 'state.pt'))['step'] == 8)
    bad = train.main(['--data', data, '--preset', 'small', '--run', os.path.join(work, 'r4'), '--quiet', '--init-from', os.path.join(r2, 'state.pt')])
    inited = inited and bad == 1
    print('smoke: --init-from ' + ("goes on from the given state and refuses another model's" if inited else 'FAILED'))
    # The diagnostics run on a trained state (they print; a crash fails the smoke).
    crc = confusion.main(['--data', data, '--state', os.path.join(run, 'state.pt'), '--preset', 'smoke', '--episodes', '32'])
    # Export what was trained, through its carry (what a session commits; the same weights):
    # export itself refuses a checkpoint the product disagrees with.
    carried = os.path.join(work, 'carry.pt')
    erc = carry.main(['--state', os.path.join(run, 'state.pt'), '--out', carried]) or \
        export.main(['--state', carried, '--out', os.path.join(work, 'export')])
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        print(f'smoke: FAIL: the loss did not fall by 20% ({first:.3f} → {last:.3f})', file=sys.stderr)
    if not same:
        print('smoke: FAIL: resuming from state.pt does not reproduce the uninterrupted run', file=sys.stderr)
    if not inited:
        print('smoke: FAIL: --init-from did not go on from step 6 to 8, or accepted a state of another model', file=sys.stderr)
    if crc:
        print('smoke: FAIL: training.mplus.confusion did not run on the trained state', file=sys.stderr)
    if erc:
        print('smoke: FAIL: the carry of the trained state did not export and validate', file=sys.stderr)
    return 0 if ok and same and inited and not crc and not erc else 1


if __name__ == '__main__':
    sys.exit(main())
