"""How a run's state answers when other facts share its memory (a diagnostic: prints, asserts nothing).

  /usr/bin/python3 -m training.mplus.confusion --data DATA --state RUN/state.pt [--episodes 64] [--distractors 3]

Stage-3 episodes (Θ, cache, retrieval) with the fact's chunk first or anywhere, among plain code
or among other facts' chunks, and the exact-answer rate of each, also per place of the fact.
A model that copies from the oldest chunk scores well with plain code and the fact first, and
near zero among other facts; one that reads the name scores alike everywhere.
"""
import argparse
import random
import sys

import torch

from .config import preset
from .data import Corpus, Stage, sample_batch
from .device import load_state
from .model import MPlus
from .train import episode_loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', required=True)
    ap.add_argument('--preset', default='small')
    ap.add_argument('--episodes', type=int, default=64)
    ap.add_argument('--distractors', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    t = corpus.tok
    model = MPlus(preset(a.preset, t.vocab_size, t.bos, t.eos))
    model.load_state_dict(load_state(a.state)['model'])
    model.eval()
    batch = 32
    print(f'confusion: {a.state}, {a.episodes} episodes per row, {a.distractors} other chunks each')
    for negatives, anywhere in ((0.0, False), (0.0, True), (1.0, False), (1.0, True)):
        stage = Stage('probe', 1, 256, (a.distractors, a.distractors), True, fact_anywhere=anywhere, fact_negatives=negatives)
        rng, gen = random.Random(7), torch.Generator().manual_seed(7)
        by_place = {}
        with torch.no_grad():
            for _ in range(max(1, a.episodes // batch)):
                b = sample_batch(corpus, batch, stage, rng)
                _, _, ok = episode_loss(model, b, stage, gen)
                by_place.setdefault(b.fact_at, []).extend(ok.tolist())
        every = [x for v in by_place.values() for x in v]
        places = ', '.join(f'{k + 1}: {sum(v) / len(v):.2f} ({len(v)})' for k, v in sorted(by_place.items()))
        print(f'  among {"other facts" if negatives else "plain code "}, fact {"anywhere" if anywhere else "first   "}: '
              f'exact {sum(every) / len(every):.3f}   by place of the fact (1 = oldest): {places}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
