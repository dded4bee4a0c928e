"""A run state with a larger θ, N = (num_blocks − num_ltm_blocks)·K, or a larger retrieval, R =
num_ltm_blocks·K rows per layer: the same model (the learned initial rows of θ and of Θ are the
only parameters the sizes shape).

  /usr/bin/python3 -m training.mplus.grow --state RUN/state.pt --num-blocks 9 --out GROWN.pt
  /usr/bin/python3 -m training.mplus.grow --state RUN/state.pt --num-blocks 12 --num-ltm-blocks 4 --out GROWN.pt  # R ×4, θ kept
  npm run train -- … --init-from GROWN.pt     # with a preset whose num_blocks (num_ltm_blocks) are the new ones

Why: θ holds N rows and every injection drops K of them at random, so with N = 2K (the small
preset until 2026-12-04) each chunk halves what θ still holds of every older one. Two one-line
facts in a row: the older one keeps ~half its rows, and the write of a chunk shorter than K
re-reads θ's newest rows, so the bench's facts answered 9/16 for the older and 3/16 for the newer;
padded to K tokens (no re-read copies), 0/16 and 11/16 (BENCHMARKS.md, ninth session). mplus-8b
keeps N = 40K.

The learned initial θ (`memory` [L, N, d]: what an empty memory holds) is tiled to the new N, and
so are its AdamW moments when the state has them; nothing else changes. The state's config
follows (its identity names only the preset); its step, curriculum position and RNGs are kept, so
`--init-from` goes on from where the smaller run stopped. Questions now sit 1 + R + N positions in;
the run learns that within a few hundred steps (measured in BENCHMARKS.md).

When R grows past Θ's initial rows (`ltm_initial_size`; the learned `ltm.{l}` [M, d]), those
rows and their moments are tiled too, to the smallest whole multiple ≥ R. Why: with fewer merged
Θ rows than R, retrieval repeat-fills from Θ and never reads the dropped cache (MPLUS-SPEC), and
the exported Θ merges only every 100 injections, so R ×4 with Θ's 64 rows kept (run28, fourteenth
session) read nothing dropped from θ in the product: N = 0 answered 1/12 where R = 64 answered 4.
With them tiled it answered 8/12, and at 4k–8k tokens, where R = 64 answered nothing, 7/24: the
`small` preset's R is 256 since (`grow --num-blocks 12 --num-ltm-blocks 4`).
"""
import argparse
import sys
from typing import Optional

import torch

from .device import atomic_save, load_state
from .config import ModelConfig
from .model import MPlus
from .train import is_retriever


def grow(s: dict, num_blocks: int, num_ltm_blocks: Optional[int] = None) -> dict:
    """A copy of run state s with θ grown to (num_blocks − num_ltm_blocks)·K rows and R to
    num_ltm_blocks·K (num_ltm_blocks None: the state's). θ may stay as it is when R grows."""
    old = ModelConfig.from_hf(s['config'])
    cfg = ModelConfig.from_hf(s['config'])
    old_n = old.stm_size
    cfg.num_blocks = num_blocks
    if num_ltm_blocks is not None:
        if num_ltm_blocks < old.num_ltm_blocks:
            raise ValueError(f'R can only grow: num_ltm_blocks {old.num_ltm_blocks} now, {num_ltm_blocks} asked')
        cfg.num_ltm_blocks = num_ltm_blocks
    new_n = cfg.stm_size
    r_grows = cfg.retrieve_size > old.retrieve_size
    ltm_reps = -(-cfg.retrieve_size // old.ltm_initial_size) if old.ltm_initial_size else 1  # 0: Θ starts empty
    if new_n < old_n or new_n % old_n or (new_n == old_n and not r_grows and ltm_reps == 1):
        raise ValueError(f'θ can only grow by a whole factor: {old_n} rows now, {new_n} asked (num_blocks {num_blocks}, '
                         f'num_ltm_blocks {cfg.num_ltm_blocks})')
    # name → (tensor dim tiled, factor): θ [L, N, d] along N; Θ's initial rows [M, d] per layer along M
    tiles = {'memory': (1, new_n // old_n)}
    if ltm_reps > 1:
        cfg.ltm_initial_size = old.ltm_initial_size * ltm_reps
        tiles.update({f'ltm.{l}': (0, ltm_reps) for l in range(old.num_layers)})
    tile = lambda t, dim, reps: torch.cat([t] * reps, dim=dim).clone()
    out = dict(s)
    out['config'] = cfg.to_hf()
    out['model'] = dict(s['model'])
    for name, (dim, reps) in tiles.items():
        out['model'][name] = tile(s['model'][name], dim, reps)
    if 'opt' in s:  # AdamW keys its state by the parameter's place in make_optimizer's groups
        names = [n for n, _ in MPlus(old).named_parameters() if not is_retriever(n)]
        opt = {'state': dict(s['opt']['state']), 'param_groups': s['opt']['param_groups']}
        for name, (dim, reps) in tiles.items():
            i = names.index(name)
            if i in opt['state']:
                st = dict(opt['state'][i])
                for k in ('exp_avg', 'exp_avg_sq'):
                    st[k] = tile(st[k], dim, reps)
                opt['state'][i] = st
        out['opt'] = opt
    out['grown_from'] = {'num_blocks': old.num_blocks, 'step': s['step']}
    if r_grows:
        out['grown_from']['num_ltm_blocks'] = old.num_ltm_blocks
    if ltm_reps > 1:
        out['grown_from']['ltm_initial_size'] = old.ltm_initial_size
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--num-blocks', type=int, required=True, help='the new num_blocks (θ = (num_blocks − num_ltm_blocks)·K rows)')
    ap.add_argument('--num-ltm-blocks', type=int, help='the new num_ltm_blocks (R = num_ltm_blocks·K retrieved rows); default: the state\'s')
    ap.add_argument('--out', required=True)
    a = ap.parse_args(argv)
    try:
        s = load_state(a.state)
        g = grow(s, a.num_blocks, a.num_ltm_blocks)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f'grow: {a.state}: {e}', file=sys.stderr)
        return 1
    atomic_save(g, a.out)
    old, new = ModelConfig.from_hf(s['config']), ModelConfig.from_hf(g['config'])
    print(f'grow: {a.out}: θ {old.stm_size} → {new.stm_size} rows per layer, R {old.retrieve_size} → {new.retrieve_size}, '
          f'Θ initial {old.ltm_initial_size} → {new.ltm_initial_size}, step {g["step"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
