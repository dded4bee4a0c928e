"""The mean of several run states' weights: a model to export (or to go on from) that is better
than each of them.

  /usr/bin/python3 -m training.mplus.average --out AVG.pt RUN_A/state.pt RUN_B/state.pt [...]
  /usr/bin/python3 -m training.mplus.export --state AVG.pt --out DIR ...

Why: a constant learning rate (2e-3, the curriculum's) leaves every saved state at a noisy point
of its path, and the product's figures move by more from one state to the next than from a few
hundred steps of progress. States that continue one run (its carry, and branches that went on
from it: more steps, an --anneal, another seed) lie close enough that their mean is a model too,
and the noise partly cancels (stochastic weight averaging; "model soups" when the branches differ).
Measured through the product (BENCHMARKS.md, sixteenth session): the carry and run29 (864 more
steps from it) answer 36 and 41 of 72 at N = 0 and 27 and 12 at 4k; their mean 46 and 34.

Only weights are averaged, in f32: a mean of two runs' AdamW moments is no state the optimizer was
ever in, so the result is a carry (no moments, no bank; `--init-from` restarts the warmup). Its
identity, config, tokenizer and RNGs are the first state's; its step is the furthest member's (the
curriculum position a run going on from it resumes at); `averaged_from` records every member.
Refused, naming the file and the fix: a member that is not a run state, one with another tokenizer
or model shape (grow.py first, so that every member has the same θ, R and Θ rows), fewer than two.
"""
import argparse
import os
import sys
from typing import List, Sequence

import torch

from .carry import require_run_state
from .config import ModelConfig
from .device import atomic_save, load_state

# Config keys that shape no weight: how Θ keeps rows at run time (export sets them for the
# product), so members trained under other values still average.
MEMORY_ONLY_KEYS = ('initial_rf_when_moving_stm_to_ltm', 'update_ltm_frequency', 'decay_frequency', 'detach_hidden_state')


def _weights_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in MEMORY_ONLY_KEYS}


def average(states: Sequence[dict], names: Sequence[str]) -> dict:
    """The mean of states' weights (f32) as a carry: see the module's docstring."""
    if len(states) < 2:
        raise ValueError('average needs at least two states')
    for s, n in zip(states, names):
        require_run_state(s, n)
    first, fname = states[0], names[0]
    for s, n in zip(states[1:], names[1:]):
        if s['tokenizer'] != first['tokenizer']:
            raise ValueError(f'{n}: another tokenizer than {fname}; only states of one run (and its branches) average')
        a, b = _weights_config(first['config']), _weights_config(s['config'])
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if diff:
            got = ', '.join(f'{k} {b.get(k)} (first: {a.get(k)})' for k in diff)
            raise ValueError(f'{n}: another model than {fname}: {got}; grow the smaller one '
                             '(python3 -m training.mplus.grow) so that every member has the same shape')
        if s['model'].keys() != first['model'].keys():
            raise ValueError(f'{n}: other weights than {fname} ({sorted(set(s["model"]) ^ set(first["model"]))[:4]})')
        for k, t in s['model'].items():
            if t.shape != first['model'][k].shape:
                raise ValueError(f'{n}: {k} is {tuple(t.shape)}, {tuple(first["model"][k].shape)} in {fname}; '
                                 'grow the smaller one (python3 -m training.mplus.grow) first')
    out = {k: v for k, v in first.items() if k not in ('opt', 'bank', 'carried_at', 'averaged_from')}
    out['model'] = {k: torch.stack([s['model'][k].detach().float() for s in states]).mean(0) for k in first['model']}
    last = max(states, key=lambda s: s['step'] + s.get('skipped', 0))
    out['step'], out['skipped'] = last['step'], last.get('skipped', 0)
    out['carried_at'] = out['step']
    out['averaged_from'] = [{'state': os.path.abspath(n), 'step': s['step']} for s, n in zip(states, names)]
    return out


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True, help='the averaged state to write (a carry: export it, or --init-from it)')
    ap.add_argument('states', nargs='+', help="run states (state.pt) or carries of one run and its branches")
    a = ap.parse_args(argv)
    states = []
    for p in a.states:
        try:
            states.append(load_state(p))
        except Exception as e:
            print(f'average: {p}: cannot read a run state ({e}); give a run folder\'s state.pt or a carry', file=sys.stderr)
            return 1
    try:
        avg = average(states, a.states)
    except ValueError as e:
        print(f'average: {e}', file=sys.stderr)
        return 1
    atomic_save(avg, a.out)
    cfg = ModelConfig.from_hf(avg['config'])
    print(f'average: {a.out}: the mean of {len(states)} states (steps {", ".join(str(s["step"]) for s in states)}), '
          f'θ {cfg.stm_size} rows, R {cfg.retrieve_size}, Θ initial {cfg.ltm_initial_size}; step {avg["step"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
