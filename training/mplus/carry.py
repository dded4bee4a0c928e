"""A run's progress, small enough to commit: how training survives from one session to the next.

Each session gets a fresh machine. /work/scratch (the corpus, the run folders) does not outlive it,
and run6 (step 4,100: ~9 h of 2 cores) was lost that way; only what lands on main survives. A full
`state.pt` of the small preset is ~33 MB: weights (8 MB f32), AdamW's two moments (16 MB) and the
retriever's bank (8 MB). The carry keeps what costs hours to rebuild and drops what comes back by
itself:

  kept     the weights (f32, bit for bit), the run's identity and curriculum position (step,
           skipped, the stage bookkeeping of --advance-at/--advance-on-plateau), every RNG state,
           the tokenizer spec, and the step it was carried at;
  dropped  the AdamW moments (train.py restarts the warmup from the carried step, so fresh
           moments never take full-size steps) and the bank (refilled by the next batches).

  /usr/bin/python3 -m training.mplus.carry --state RUN/state.pt --out training/carry/small.pt
  npm run train -- --data D --run NEW_RUN <the run's own flags> --init-from training/carry/small.pt

A carried state whose identity equals the new run's (less `init_from`) is a continuation: train.py
restores its RNGs and stage bookkeeping too, so only the moments and the bank differ from a resume.
"""
import argparse
import os
import sys

from .device import atomic_save, load_state

# What a state.pt holds that the carry leaves out (and train.py rebuilds).
DROPPED = ('opt', 'bank')

# What every run state and carry holds: a file without them is something else (an export's
# weights, another program's pickle), refused before any of it is used.
RUN_STATE_KEYS = ('identity', 'config', 'model', 'step', 'tokenizer')


def require_run_state(state: dict, name: str = '') -> None:
    """Raise ValueError naming `name` (a path) when `state` is no run state or carry."""
    missing = [k for k in RUN_STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        where = f'{name}: ' if name else ''
        raise ValueError(f'{where}not a training run state (no {", ".join(missing)}); '
                         "give a run folder's state.pt or a carry")


def pack(state: dict) -> dict:
    """The carry of a run state: everything but DROPPED, weights copied as f32."""
    require_run_state(state)
    out = {k: v for k, v in state.items() if k not in DROPPED}
    out['model'] = {k: v.detach().float().clone() for k, v in state['model'].items()}
    out['carried_at'] = state['step']
    return out


def is_carry(state: dict) -> bool:
    return 'opt' not in state


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--state', required=True, help="a run's state.pt")
    ap.add_argument('--out', required=True, help='the carry file to write (e.g. training/carry/small.pt)')
    a = ap.parse_args(argv)
    try:
        s = load_state(a.state)
        c = pack(s)
    except Exception as e:
        print(f'carry: {a.state}: cannot read a run state ({e}); give a run folder\'s state.pt', file=sys.stderr)
        return 1
    atomic_save(c, a.out)  # a kill never leaves a half-written carry where a good one was
    print(f'carry: {a.out}: step {c["step"]} (curriculum position {c["step"] + c.get("skipped", 0)}), '
          f'{os.path.getsize(a.out) / 2**20:.1f} MiB (state.pt {os.path.getsize(a.state) / 2**20:.1f} MiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
