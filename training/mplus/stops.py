"""Where the retention bench's answers stop early, through the trainer's forward (a diagnostic:
prints, asserts nothing).

  /usr/bin/python3 -m training.mplus.stops --data DATA --state S [--rounds 40] [--pool 430]

`mplus bench retention` sorts its misses (other fact / stopped early / wrong). After 160k tokens
the largest kind is an answer that stops early: `4629` for `462929`, the read emitting EOS after
some of the value's pieces. This asks why. Per round, four facts drawn as the bench draws them
(benchfacts.draw) are written into a fresh memory (Θ as exported), asked from θ (N = 0) and after a
recorded pool of --pool chunks of the code the product feeds (pool.with_pool: 430 chunks ≈ 160k
tokens), greedily. For each early stop it prints P(EOS) at the stop, P(the value's next piece) and
that piece's rank (0 = greedy's pick), then per N the kinds and the medians.

What it told (BENCHMARKS.md, thirtieth session): the next piece is mostly the runner-up, so the
read knows how the value goes on and the EOS decision is narrow; retrieving more of the fact's
rows (R 256 → 384) left the same questions stopping.
"""
import argparse
import random
import statistics
import sys
from typing import List, Optional

import torch

from . import pool
from .benchfacts import draw, greedy
from .data import Corpus, one_line_text, prompt, question_text
from .device import load_state
from .model import frozen_as_exported

KINDS = ('hit', 'other', 'early', 'wrong')


def kind(said: str, value: str, others: List[str]) -> str:
    """As `bench retention` sorts an answer (retentionReport.missKinds): the value in it; else another
    fact's value in it; else a proper beginning of the value; else wrong."""
    said = said.strip()
    if value in said:
        return 'hit'
    if any(o != value and o in said for o in others):
        return 'other'
    return 'early' if said and value.startswith(said) else 'wrong'


def next_piece(said: List[int], value: List[int]) -> Optional[int]:
    """The value's next token after the pieces said, when they are its first pieces; else None (the
    answer left the value's own tokenization, so no single token continues it)."""
    n = len(said)
    return value[n] if value[:n] == said and len(value) > n else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='the data folder (its tokenizer and feed.jsonl)')
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--rounds', type=int, default=40, help='memories of four facts')
    ap.add_argument('--pool', type=int, default=430, help='chunks of fed code after the facts (430: ~160k tokens)')
    ap.add_argument('--seed', type=int, default=1000, help='first round\'s facts seed (the bench uses 1, 2, …: keep apart)')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    tok = corpus.tok
    model = frozen_as_exported(load_state(a.state))
    recorded = pool.recorded_as_exported(model, corpus, a.pool, 2000)
    far = f'{a.pool} chunks'
    counts = {(n, k): 0 for n in ('0', far) for k in KINDS}
    stops = {'0': [], far: []}
    print(f'stops: {a.state}; {a.rounds} rounds of 4 facts, asked from θ and after {far} of fed code')
    for r in range(a.rounds):
        facts = draw(random.Random(a.seed + r), 4)
        mem = model.fresh_memory(1)
        gen = torch.Generator().manual_seed(a.seed + r)
        with torch.no_grad():
            for name, value, path in facts:
                model.inject(mem, torch.tensor([tok.encode(one_line_text(name, value, path))]), gen=gen, use_ltm=True)
            memories = (('0', mem), (far, pool.with_pool(model, mem, recorded)))
        for n, m in memories:
            for name, value, _ in facts:
                with torch.no_grad():
                    said, last = greedy(model, m, tok.encode(prompt(question_text('value', name))), tok.eos)
                probs = last.softmax(-1)
                k = kind(tok.decode(said), value, [v for _, v, _ in facts])
                counts[(n, k)] += 1
                nxt = next_piece(said, tok.encode(value)) if k == 'early' else None
                if nxt is not None:
                    p_eos, p_next = float(probs[tok.eos]), float(probs[nxt])
                    stops[n].append((p_eos, p_next, int((probs > probs[nxt]).sum())))
                    print(f'  N = {n}: {value} said {tok.decode(said)!r}: P(EOS) {p_eos:.3f}, P(next piece) {p_next:.3f}, '
                          f'its rank {stops[n][-1][2]}', flush=True)
    for n in ('0', far):
        line = ', '.join(f'{k} {counts[(n, k)]}' for k in KINDS)
        s = stops[n]
        if s:
            line += (f'; early stops: median P(EOS) {statistics.median(x[0] for x in s):.2f}, median P(next piece) '
                     f'{statistics.median(x[1] for x in s):.2f}, the next piece the runner-up in {sum(x[2] == 1 for x in s)} of {len(s)}')
        print(f'  N = {n}: {line}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
