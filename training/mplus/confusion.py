"""How a run's state answers and retrieves when other facts share its memory (a diagnostic: prints, asserts nothing).

  /usr/bin/python3 -m training.mplus.confusion --data DATA --state RUN/state.pt [--episodes 64] [--distractors 3]

Stage-3 episodes (Θ, cache, retrieval) with the fact's chunk first or anywhere, among plain code
or among other facts' chunks, and the exact-answer rate of each, also per place of the fact; and
the retriever's recall: the share of the fact's rows among Θ + cache that it puts in the top R
(mean over layers and episodes whose fact has rows there), beside chance (R / candidates). An
untrained retriever scores every row alike and ties go to the lower candidate index, the older
rows: a fact fed early is then "recalled" well above chance with no skill (the smoke model:
0.72 against 0.33). Compare states with each other, not with chance alone.
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


def found_share(pos: torch.Tensor, chosen: torch.Tensor):
    """pos [B, C] (True = a fact's row), chosen [B, R] candidate indices: per episode that has fact
    rows, the share of them among the chosen."""
    got, have = torch.gather(pos, 1, chosen).sum(1).float(), pos.sum(1).float()
    return (got[have > 0] / have[have > 0]).tolist()


def fact_recall(model: MPlus, b, gen: torch.Generator):
    """Per layer and episode: the share of the fact's Θ + cache rows in the top R, and R / candidates."""
    mem = model.fresh_memory(b.tokens.shape[0])
    for x, tag in zip(b.contexts, b.tags):
        model.inject(mem, x, tag=tag, gen=gen, use_ltm=True)
    _, retrieved, terms = model.generate_logits(mem, b.tokens, b.q_len)
    recall, chance = [], []
    for l, order in enumerate(retrieved):
        if terms[l][0] is None:  # Θ too small to score: nothing was chosen
            continue
        pos = torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], dim=1) == 0
        recall += found_share(pos, order)
        chance.append(order.shape[1] / pos.shape[1])
    return recall, chance


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', required=True)
    ap.add_argument('--preset', default='small')
    ap.add_argument('--episodes', type=int, default=64)
    ap.add_argument('--distractors', type=int, default=3)
    ap.add_argument('--fact-fits', action='store_true',
                    help='every fact\'s window holds its name and answer (Stage.fact_fits); off: the episodes recorded before it')
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
        stage = Stage('probe', 1, 256, (a.distractors, a.distractors), True, fact_anywhere=anywhere, fact_negatives=negatives,
                      fact_fits=a.fact_fits)
        rng, gen = random.Random(7), torch.Generator().manual_seed(7)
        by_place, by_kind, recall, chance = {}, {}, [], []
        with torch.no_grad():
            for _ in range(max(1, a.episodes // batch)):
                b = sample_batch(corpus, batch, stage, rng)
                _, _, ok = episode_loss(model, b, stage, gen)
                by_place.setdefault(b.fact_at, []).extend(ok.tolist())
                for k, x in zip(b.kinds, ok.tolist()):
                    by_kind.setdefault(k, []).append(x)
                r, c = fact_recall(model, b, gen)
                recall += r
                chance += c
        every = [x for v in by_place.values() for x in v]
        places = ', '.join(f'{k + 1}: {sum(v) / len(v):.2f} ({len(v)})' for k, v in sorted(by_place.items()))
        mean = lambda xs: sum(xs) / len(xs) if xs else float('nan')
        print(f'  among {"other facts" if negatives else "plain code "}, fact {"anywhere" if anywhere else "first   "}: '
              f'exact {mean(every):.3f} (values {mean(by_kind.get("value", [])):.2f}, definitions {mean(by_kind.get("def", [])):.2f}), fact rows retrieved {mean(recall):.3f} (chance {mean(chance):.3f})   '
              f'exact by place of the fact (1 = oldest): {places}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
