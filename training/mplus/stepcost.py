"""What one training step costs, per part, for each stage of a curriculum (a benchmark: prints
numbers, asserts nothing). Safe beside a running trainer, though the two then share the cores.

  /usr/bin/python3 -m training.mplus.stepcost --data DATA [--state RUN/state.pt] [--preset small]
      [--batch 32] [--steps 3] [--threads 2] [--precision auto|f32|bf16]

A step exactly as train.py runs it (its train_step): the batch sampled, the fact and its
distractors injected and the question teacher-forced (episode), the continuation episodes,
backward, clipping and AdamW (optimizer). The first step of each stage is a warm-up and is not
counted; the median of the rest is printed.
"""
import argparse
import random
import statistics
import sys
import time

import torch

from .bank import RowBank
from .config import preset
from .data import Corpus
from .device import PRECISIONS, load_state, pick_precision
from .model import MPlus
from .train import CURRICULA, make_optimizer, train_step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', help='a run\'s state.pt (its weights); default: a fresh model')
    ap.add_argument('--preset', default='small')
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--stage', help='only this stage (its name)')
    ap.add_argument('--precision', default='auto', choices=PRECISIONS, help="as train.py's")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    t = corpus.tok
    model = MPlus(preset(a.preset, t.vocab_size, t.bos, t.eos))
    if a.state:
        model.load_state_dict(load_state(a.state)['model'])
    opt = make_optimizer(model, 1e-6)
    rng, gen = random.Random(1), torch.Generator().manual_seed(1)
    precision = pick_precision(a.precision, torch.device('cpu'))
    print(f'stepcost: preset {a.preset}, batch {a.batch}, {a.threads} threads, {precision}, median of {a.steps} steps after one warm-up')
    for stage in CURRICULA[a.preset]:
        if a.stage and stage.name != a.stage:
            continue
        # The negatives bank as the trainer keeps it (filling from the warm-up step on).
        bank = RowBank(model.c.num_layers, stage.bank_negatives, model.c.hidden_size)
        parts = {'sample': [], 'episode': [], 'continuation': [], 'backward': [], 'optimizer': [], 'step': []}
        for i in range(a.steps + 1):
            marks = [('start', time.perf_counter())]
            train_step(model, opt, corpus, stage, a.batch, rng, gen, 'cpu', lambda part: marks.append((part, time.perf_counter())), bank, precision)
            if i == 0:
                continue
            for (_, t0), (part, t1) in zip(marks, marks[1:]):
                parts[part].append(t1 - t0)
            parts['step'].append(marks[-1][1] - marks[0][1])
        med = {k: statistics.median(v) for k, v in parts.items()}
        print(f'  {stage.name}: {med["step"]:.2f} s/step (' + ', '.join(f'{k} {v:.2f}' for k, v in med.items() if k != 'step') + ')')
    return 0


if __name__ == '__main__':
    sys.exit(main())
