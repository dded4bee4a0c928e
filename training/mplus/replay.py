"""A product feed log replayed through the trainer's model: what its retriever finds of each fact
(a diagnostic: prints, asserts nothing).

  MPLUS_FEED_LOG=FEED.jsonl node bin/mplus.js bench retention --model X --tokens 163840 --facts 4 --modes mplus --seed 19
  /usr/bin/python3 -m training.mplus.replay --data DATA --state S --feed-log FEED.jsonl [--drops 1,2,3]

The sidecar logs every injection's text (src/sidecar/feeder.ts, MPLUS_FEED_LOG). This writes the
same injections, in order, into the trainer's memory (Θ as exported: merges every 100 injections,
rf 100), asks each fact's value (the log's `export const NAME = …` files under src/, as
`bench retention` writes them) and prints per layer the share of the fact's rows among the R
retrieved, as the bench's factRowsRetrievedByLayer counts it. θ's drops are the trainer's, drawn
per --drops seed (the sidecar's are its own), so figures agree in distribution, not row for row.

Why: it tells a retriever that fails on the product's memory from one that fails on the
trainer's. On the twenty-third session's carry, seed 19 at 160k (430 injections, 27,776
candidate rows a layer), the product found 0.47 0.43 0.55 0.35 of the facts' rows; this replay
0.48 0.43 0.55 0.36; while fit_retriever's pool of training's long-code windows (27k rows) gave
0.67 0.91 0.96 0.97. The engines agree; the pool's code was easier than the code the product
feeds (a header naming every declaration of a chunk: pool.py --feed).
"""
import argparse
import json
import re
import sys
from typing import List, Tuple

import torch

from .confusion import found_share
from .data import Corpus, prompt, question_text
from .device import load_state
from .model import MPlus, frozen_as_exported

FACT = re.compile(r'^export const (\w+) = ', re.M)


class FeedLogError(ValueError):
    pass


def read_log(path: str) -> Tuple[List[str], List[Tuple[int, str]]]:
    """(every injection's text in order, [(injection index, NAME)] of the facts). Refuses a log
    that is not the sidecar's, or holds no fact, by name."""
    texts, facts = [], []
    try:
        with open(path) as f:
            for i, line in enumerate(f):
                rec = json.loads(line)
                texts.append(rec['text'])
                m = FACT.search(rec['text'])
                if rec['file'].startswith('src/') and m:
                    facts.append((i, m.group(1)))
    except OSError as e:
        raise FeedLogError(f'{path}: cannot read it ({e.strerror})')
    except (ValueError, KeyError, TypeError) as e:
        raise FeedLogError(f'{path}: line {len(texts) + 1} is not a feed record ({e}); write one with MPLUS_FEED_LOG={path}')
    if not facts:
        raise FeedLogError(f'{path}: no fact (a src/ file holding `export const NAME = …`): log a `bench retention` run')
    return texts, facts


def recall_by_layer(model: MPlus, tok, texts: List[str], facts: List[Tuple[int, str]], seed: int) -> List[List[float]]:
    """Per layer, per fact: the share of the fact's candidate rows (Θ + cache) among the R retrieved."""
    per: List[List[float]] = [[] for _ in range(model.c.num_layers)]
    with torch.no_grad():
        mem = model.fresh_memory(1)
        g = torch.Generator().manual_seed(seed)
        for i, text in enumerate(texts):
            model.inject(mem, torch.tensor([tok.encode(text)]), tag=torch.tensor([i + 1]), gen=g, use_ltm=True, grad=False)
        for i, name in facts:
            q = tok.encode(prompt(question_text('value', name)))
            _, retrieved, _ = model.generate_logits(mem, torch.tensor([q]), torch.tensor([len(q)]))
            for l, got in enumerate(retrieved):
                per[l] += found_share(torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], 1) == i + 1, got)
    return per


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='the data folder (its tokenizer: the checkpoint\'s)')
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--feed-log', required=True, help='MPLUS_FEED_LOG of a bench retention run')
    ap.add_argument('--drops', default='1', help='seeds of θ\'s random drops, comma-separated')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        texts, facts = read_log(a.feed_log)
    except FeedLogError as e:
        print(f'replay: {e}', file=sys.stderr)
        return 2
    tok = Corpus(a.data).tok
    model = frozen_as_exported(load_state(a.state))
    print(f'replay: {a.feed_log}: {len(texts)} injections, facts {", ".join(n for _, n in facts)}')
    for seed in (int(x) for x in a.drops.split(',')):
        per = recall_by_layer(model, tok, texts, facts, seed)
        print(f'  drops {seed}: fact rows retrieved by layer ' + ' '.join(f'{sum(x) / len(x):.2f}' if x else '-' for x in per), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
