"""How much a run's read path uses memory, from its state.pt (safe to run beside the trainer).

  /usr/bin/python3 -m training.mplus.probe --state RUN/state.pt --data DATA [--episodes 32]

Prints the step and the continuation loss with each episode's own memory vs another episode's
(train.memory_gain): a gap that grows means the model has started to read what it wrote.
"""
import argparse
import sys

import torch

from .config import ModelConfig
from .data import Corpus
from .device import load_state
from .model import MPlus
from .train import memory_gain


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--state', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--episodes', type=int, default=32)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    s = load_state(a.state)
    model = MPlus(ModelConfig.from_hf(s['config']))
    model.load_state_dict(s['model'])
    own, other = memory_gain(model, Corpus(a.data), 12345, a.episodes)
    print(f'step {s["step"]}: continuation loss {own:.4f} with its own memory, {other:.4f} with another episode\'s '
          f'(gap {other - own:+.4f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
