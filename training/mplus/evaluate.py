"""Knowledge retention of a checkpoint, with the trainer's forward (verify.py shows it computes what
the product computes): inject a fact's chunk, then N tokens of unrelated real code, then ask.

  /usr/bin/python3 -m training.mplus.evaluate (--model DIR | --state RUN/state.pt) --data DATA \\
      [--tokens 0,8192,32768] [--episodes 64] [--batch 16] [--json OUT.json]

Per N, for θ only (Θ off: no cache, no merges — MemoryLLM) and for M+ (cache, merges, retrieval):
exact = the greedy answer is the expected text then end-of-text (the argmax of every answer
position under teacher forcing: the same thing, in one forward); for M+ also the share of the
fact's memory rows (rows its injection wrote that are in Θ or the cache) that retrieval put in
the prefix, mean over layers. Names, values and paths are drawn fresh (seeded) for every episode.
"""
import argparse
import json
import random
import sys
import time

import torch

from . import checkpoint
from .config import ModelConfig
from .device import load_state
from .data import Corpus, Stage, padded, sample_batch
from .model import MPlus
from .train import exact


def load_model(a):
    if a.model:
        return checkpoint.load(a.model)
    s = load_state(a.state)
    m = MPlus(ModelConfig.from_hf(s['config']))
    m.load_state_dict(s['model'])
    return m.eval(), None


@torch.no_grad()
def run(model, shipped, corpus, n_tokens, use_ltm, episodes, batch, seed, ctx=512):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    hits = total = 0
    shares = []
    for _ in range(max(1, episodes // batch)):
        b = sample_batch(corpus, batch, Stage('eval', 0, ctx, (0, 0), use_ltm), rng)
        mem = model.fresh_memory(batch, shipped)
        model.inject(mem, b.contexts[0], tag=torch.zeros(batch, dtype=torch.long), gen=gen, use_ltm=use_ltm)
        fed = 0
        j = 1
        while fed < n_tokens:
            picks = [corpus.tok.encode(corpus.files[fi]['bytes'][ci]) for fi, ci in (rng.choice(corpus.chunks) for _ in range(batch))]
            n = max(16, min(ctx, n_tokens - fed, min(len(p) for p in picks)))
            rows = [padded(p[:n], n, corpus.tok.encode(' ')[0]) for p in picks]
            model.inject(mem, torch.tensor(rows), tag=torch.full((batch,), j, dtype=torch.long), gen=gen, use_ltm=use_ltm)
            fed += n
            j += 1
        logits, retrieved, _ = model.generate_logits(mem, b.tokens, b.q_len)
        ok = exact(logits, b.target)
        hits += int(ok.sum())
        total += ok.numel()
        if use_ltm:
            for l, order in enumerate(retrieved):
                tags = torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], dim=1)
                fact = (tags == 0)
                got = torch.gather(fact, 1, order).sum(1).float()
                have = fact.sum(1).float()
                for g, h in zip(got.tolist(), have.tolist()):
                    if h > 0:
                        shares.append(g / h)
    return hits / max(1, total), (sum(shares) / len(shares) if shares else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--model')
    src.add_argument('--state')
    ap.add_argument('--data', required=True)
    ap.add_argument('--tokens', default='0,8192,32768')
    ap.add_argument('--episodes', type=int, default=64)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seed', type=int, default=2026)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, shipped = load_model(a)
    corpus = Corpus(a.data)
    if model.c.vocab_size != corpus.tok.vocab_size:
        print(f'evaluate: the model has {model.c.vocab_size} token ids, the data folder\'s tokenizer '
              f'{corpus.tok.vocab_size} ({a.data}): evaluate with the data folder the model was trained on', file=sys.stderr)
        return 1
    rows = []
    print(f'{"N tokens":>9} {"θ-only exact":>13} {"M+ exact":>9} {"fact rows retrieved":>20} {"s":>6}')
    for n in [int(x) for x in a.tokens.split(',')]:
        t = time.time()
        theta, _ = run(model, shipped, corpus, n, False, a.episodes, a.batch, a.seed)
        mplus, share = run(model, shipped, corpus, n, True, a.episodes, a.batch, a.seed)
        rows.append({'tokens': n, 'theta_exact': theta, 'mplus_exact': mplus, 'fact_rows_retrieved': share})
        sh = '-' if share is None else f'{share:.1%}'
        print(f'{n:>9} {theta:>13.1%} {mplus:>9.1%} {sh:>20} {time.time() - t:>6.0f}', flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'episodes': a.episodes, 'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
