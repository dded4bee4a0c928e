"""The retention bench's facts through the trainer's forward, by their place in the feed (a
diagnostic: prints, asserts nothing).

  /usr/bin/python3 -m training.mplus.benchfacts --data DATA --state S [--facts 1,2,4] [--rounds 16]
      [--pad-to 64]

`mplus bench retention` at N = 0 feeds F one-line files (`export const NAME = 123;`, names of
2–3 syllables per word, values below 1e6) and asks for each value. This runs the same episode in
the trainer (no sidecar, no export): the chunks as the product's chunker writes them (header,
then the line), Θ as exported (merges every 100 injections, rf 100), drops drawn per round, greedy
answers; exact = the value appears in the answer, as the bench counts it. It prints the share
right per fact's place in the feed (0 = fed first), which the bench's single figure hides: run11
at step 13,871 answered one fact 11/16, and of two the older 9/16 but the newer 3/16 (a chunk
shorter than K is written with the previous chunk's rows re-read, so the older fact is in θ
twice). --pad-to K pads each chunk with spaces to K tokens (as training pads short contexts),
which takes the re-read rows away: then the older 0/16, the newer 11/16 (θ = 2K rows at the time:
each chunk dropped half of what θ held of the one before).
"""
import argparse
import random
import sys
from typing import Dict, List, Tuple

import torch

from .data import Corpus, one_line_text, prompt, question_text
from .device import load_state
from .model import MPlus, frozen_as_exported

SYL = ['ka', 'lo', 'mi', 'ren', 'tor', 'vex', 'sul', 'pha', 'dri', 'nox', 'bel', 'qua', 'zin', 'gor', 'fen', 'wil']  # the bench's


def draw(rng: random.Random, n: int):
    """n facts as the bench draws them: (name, value, path)."""
    word = lambda: ''.join(rng.choice(SYL) for _ in range(2 + rng.randrange(2))).upper()
    out, seen = [], set()
    while len(out) < n:
        name = f'{word()}_{word()}'
        if name in seen:
            continue
        seen.add(name)
        out.append((name, str(rng.randrange(1_000_000)), f'src/{word().lower()}/{name.lower()}.ts'))
    return out


def greedy(model: MPlus, mem, question: List[int], eos: int, max_tokens: int = 12) -> Tuple[List[int], torch.Tensor]:
    """Greedy decoding by teacher-forced re-runs (retrieval reads the question rows only): the answer
    tokens and the logits [V] of the last step (where EOS won, or the cap)."""
    toks = list(question)
    last = None
    for _ in range(max_tokens):
        logits, _, _ = model.generate_logits(mem, torch.tensor([toks]), torch.tensor([len(question)]))
        last = logits[0, -1]
        nxt = int(last.argmax())
        if nxt == eos:
            break
        toks.append(nxt)
    return toks[len(question):], last


def answer(model: MPlus, mem, question: List[int], eos: int, max_tokens: int = 12) -> List[int]:
    """The greedy answer's tokens."""
    return greedy(model, mem, question, eos, max_tokens)[0]


def by_place(model: MPlus, tok, facts: int, rounds: int, pad_to: int = 0) -> Dict[int, List[bool]]:
    """Per place in the feed, per round: whether the value was in the answer."""
    out: Dict[int, List[bool]] = {p: [] for p in range(facts)}
    space = tok.encode(' ')
    with torch.no_grad():
        for r in range(rounds):
            fs = draw(random.Random(r), facts)
            mem = model.fresh_memory(1)
            g = torch.Generator().manual_seed(r)
            for name, value, path in fs:
                ids = tok.encode(one_line_text(name, value, path))
                ids += space * max(0, pad_to - len(ids))
                model.inject(mem, torch.tensor([ids]), gen=g, use_ltm=True)
            for p, (name, value, _) in enumerate(fs):
                got = tok.decode(answer(model, mem, tok.encode(prompt(question_text('value', name))), tok.eos))
                out[p].append(value in got)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='the data folder (its tokenizer)')
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--facts', default='1,2,4')
    ap.add_argument('--rounds', type=int, default=16)
    ap.add_argument('--pad-to', type=int, default=0, help='pad each chunk with spaces to this many tokens')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    tok = Corpus(a.data).tok
    s = load_state(a.state)
    model = frozen_as_exported(s)
    print(f'benchfacts: {a.state} (θ {model.c.stm_size} rows, K {model.c.num_tokens}); {a.rounds} rounds'
          + (f'; chunks padded to {a.pad_to} tokens' if a.pad_to else ''))
    for n in (int(x) for x in a.facts.split(',')):
        res = by_place(model, tok, n, a.rounds, a.pad_to)
        right = sum(sum(v) for v in res.values())
        places = ' '.join(f'{sum(v)}/{len(v)}' for v in res.values())
        print(f'  {n} facts: {right}/{n * a.rounds} right; by place in the feed (oldest first) {places}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
