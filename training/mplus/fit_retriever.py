"""A last, retriever-only stage: the query/key projectors fitted to a frozen model's memory at the
product's scale, written into a copy of the state (then `export` as usual).

  /usr/bin/python3 -m training.mplus.fit_retriever --data DATA --state S --out FITTED.pt
      [--batches 64] [--steps 2000] [--distractors 8,60] [--one-line 0.5] [--threads 2]
      [--long-code] [--pool W,S [--feed] [--rounds N] [--pool-sample 4096] [--hard K]]

With --pool (pool.py) the problems' code is written as the product writes a repository (512-token
windows, as --long-code), and S recorded memories of W chunks of code join every step as extra
negatives: each problem is ranked among a repository's worth of rows (W 430: ~160k tokens), and a
held-out memory of W chunks measures recall@R at that scale before and after. --feed: that code is
chunked as the product feeds it (DATA/feed.jsonl, training/feedchunks.js: every chunk's header
names its declarations), not training's windows. --rounds N: the problems' questions are asked of
the memory the product would hold (pool.with_pool: the pool in Θ, a θ of code), again after each
of N fits, so the upper layers fit the question rows they will meet. --hard K: each step also
scores, against each episode, the K pool rows its question ranks highest (pool.hardest), the ones
that push its fact out of R; a random sample seldom holds them. This is the recipe's last
stage before export (training/README.md):

  /usr/bin/python3 -m training.mplus.fit_retriever --data DATA --state training/carry/small.pt --out FITTED.pt \
      --pool 430,3 --feed --rounds 1 --steps 1000 --batches 32 --batch 8 --distractors 4,12 --one-line 0.75 --hard 256 --seed 7 --threads 1

The rounds' projectors (and the state's own) are compared by the held-out recall asked as the
product asks, and the best is written: a second round can go back (twenty-ninth session, from the
twenty-sixth's carry, seed 6: 0.699 → 0.723 → 0.591 mean over the layers, and through the product,
which follows this figure, 45 → 49 → 36 of 72 held out at 160k). With --hard 256 round 1 reached
0.840 against 0.723 without, and answered 96 of 144 at 160k on seeds 1–36 against 90 without and 78 before
(BENCHMARKS.md). The carry's fit now is the same with --seed 7 and --rounds 1 (thirtieth session):
its recall is seed 6's within noise (0.846), yet through the product it retrieves 89% of the
facts' rows at 160k against 73% and answers 286 of 360 there against 242. This figure does not
tell fits from different seeds apart: fit several and choose by the product's bench.

Measured (BENCHMARKS.md, twenty-fourth session), from the twenty-second session's carry with the
twenty-third's fit: through the product at 160k (seeds 1–18) the facts' rows found 47% → 72% and
answers 21 → 38 of 72, at 0–32k 191 → 198 of 360. The twenty-third session's fit (--pool 320,3, no
--feed, no rounds: 2,000 steps) had taken them from 28% and 11 answers; 4,000 more steps of it
found 64% and answered 14: more of the fact's rows is not by itself more answers. Training's
windows are easier code than the product feeds (replay.py: the carry finds 0.67 0.91 0.96 0.97 of a
fact's rows per layer among 20k rows of them, 0.48 0.43 0.55 0.36 in the product's 160k).
Why: co-trained, the retriever sees 6–16 chunks per episode (plus the bank's rows), and most of
its positives are the corpus's facts in longer chunks. At the product's scale it ranks worse
than it could: `retriever_ceiling --one-line --distractors 40` on run26 at 20,558 found 0.16–0.25
of the fact's rows in the top R with the state's projectors, and 0.33–0.41 with copies fitted
for 600 steps to 24 batches of such episodes (BENCHMARKS.md). With everything else frozen the
rows the write produces do not move, so fitting is an ordinary supervised problem on recorded
inputs (retriever_ceiling.collect: the question's rows and every Θ + cache row, through the
layer's input norm), cheap next to a training step.

The training problems mix what the product meets: per batch, one-line constant files (as
`bench retention` and a repository's small constant files feed them) or the corpus's facts
(`fact_fits`), among a distractor count drawn from --distractors, a tenth to a half of them other
facts. The loss is the trainer's own (train.retriever_bce: positives = the fact's chunk, the
paper's labels). Two fixed test sets, never trained on, are measured before and after: recall@R
per layer, and the exact-answer rate with the model's own retrieval (re-run with the fitted
projectors, so Θ's keys are the new key_proj's, as the product computes them) beside the read's
ceiling (the fact's chunk forced into R). The saved state differs from S only in the projectors;
their AdamW moments are dropped (they belonged to other weights), so a run resumed from it starts
them afresh.

Measured on run26 at 20,558 (BENCHMARKS.md, fourteenth session), 64 batches, 2,000 steps: one-line
facts' recall@R 0.16–0.25 → 0.21–0.40, corpus facts' unchanged (0.07–0.12); answers with the
model's own retrieval unchanged (values 0.21, definitions 0.00–0.04 of ~48); through the product
at 8k the share of the facts' rows retrieved 1.9–3.0% → 5.2–6.0%, exact still 0/12. Labelled by
content (--positives content) the same. With R = 64 (one chunk's rows) the read needs nearly all
of a fact's rows; a third of them answers no better than none. Those fits ranked a fact among
training's short windows; fitted to them, the projectors ranked the product's 512-token windows
worse (seventeenth session). --pool fits to the product's windows at the product's scale.
"""
import argparse
import random
import sys
import time
from typing import List, Tuple

import torch

from .data import Corpus, Stage
from . import pool
from .device import atomic_save, load_state
from .model import MPlus, frozen_as_exported
from .retriever_ceiling import ask, collect, fit, problem_stage, projectors, recall, write
from .train import is_retriever

# The test sets: (label, one-line facts, distractors, share of them other facts). The first is
# retriever_ceiling's one-line figure in BENCHMARKS.md; the second the corpus's facts at its scale.
TESTS = (('one-line facts, 40 distractors, 10% other facts', True, 40, 0.1),
         ('corpus facts, 40 distractors, 50% other facts', False, 40, 0.5))


def training_episodes(model: MPlus, corpus: Corpus, batches: int, batch: int, lo: int, hi: int, one_line: float, seed: int,
                      positives: str = 'chunk', long_code: bool = False):
    """`batches` written batches (retriever_ceiling.write), each of one kind and one distractor
    count (batches differ)."""
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        stage = problem_stage(rng.random() < one_line, rng.randint(lo, hi), rng.uniform(0.1, 0.5), positives, long_code=long_code)
        out.append(write(model, corpus, stage, batch, rng, gen))
    return out


def asked_among(model: MPlus, episodes, recorded: pool.Recorded, sample: int, gen):
    """The episodes' problems with the question asked of the memory the product would hold after
    the recorded code (pool.with_pool: its rows, or `sample` of them, in Θ, its θ), under the
    model's current projectors."""
    return [ask(model, b, pool.with_pool(model, mem, recorded, sample, gen)) for b, mem in episodes]


def measure(model: MPlus, corpus: Corpus, stage: Stage, batches: int, batch: int, seed: int):
    """(recall@R per layer, [(kind, exact with own retrieval, exact with the chunk forced)]) on the
    same episodes for a given seed, whatever the projectors: the memory is written afresh, so Θ's
    keys are the current key_proj's."""
    answers: List[Tuple[str, bool, bool]] = []
    sets = collect(model, corpus, stage, batches, batch, random.Random(seed), torch.Generator().manual_seed(seed), answers)
    return recall(projectors(model), sets, model.c.retrieve_size), answers


def install(model: MPlus, projs):
    """The fitted (query_proj, key_proj) per layer into the model's layers."""
    with torch.no_grad():
        for layer, (qp, kp) in zip(model.model.layers, projs):
            layer.self_attn.query_proj.load_state_dict(qp.state_dict())
            layer.self_attn.key_proj.load_state_dict(kp.state_dict())


def with_projectors(s: dict, model: MPlus, info: dict) -> dict:
    """A copy of state s with the model's retriever weights, their AdamW moments dropped (AdamW
    keys its state by the parameter's place in make_optimizer's groups: the language model's
    parameters first, then the retriever's)."""
    out = dict(s)
    out['model'] = dict(s['model'])
    names = [n for n, _ in model.named_parameters()]
    for n, p in model.named_parameters():
        if is_retriever(n):
            out['model'][n] = p.detach().clone()
    if 'opt' in s:
        n_rest = sum(not is_retriever(n) for n in names)
        out['opt'] = {'state': {k: v for k, v in s['opt']['state'].items() if k < n_rest}, 'param_groups': s['opt']['param_groups']}
    out['retriever_fit'] = info
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--out', required=True, help='where the state with the fitted projectors goes')
    ap.add_argument('--batches', type=int, default=64, help='recorded training batches')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--distractors', default='8,60', help='lo,hi: distractor counts drawn per batch')
    ap.add_argument('--one-line', type=float, default=0.5, help='share of batches whose facts are one-line files')
    ap.add_argument('--positives', default='chunk', choices=('chunk', 'content', 'span'),
                    help="the fact's rows the fit and the recall count (retriever_ceiling's --positives)")
    ap.add_argument('--long-code', action='store_true',
                    help="the problems' code written as the product writes a repository (Stage.long_code: windows of up to 512 tokens)")
    ap.add_argument('--pool', default='', help='W,S: S memories of W long-code windows (pool.py) as every problem\'s extra '
                                               'negatives, and one more of W windows to measure recall at that scale (320: ~160k tokens)')
    ap.add_argument('--feed', action='store_true',
                    help='the pool is code as the product feeds it (Corpus.feed, training/feedchunks.js: a header naming every '
                         'declaration of a chunk, the checkpoint\'s chunking), not training\'s long-code windows')
    ap.add_argument('--pool-sample', type=int, default=4096, help='pool rows each step scores per layer')
    ap.add_argument('--hard', type=int, default=0,
                    help='with --pool: besides the sample, the K pool rows each episode\'s question scores highest under the '
                         'projectors at that step (pool.hardest: the rows that outrank its fact); 0: the sample alone')
    ap.add_argument('--rounds', type=int, default=0,
                    help='with --pool: fit this many times, each time asking the problems\' questions again among a pool sample '
                         'in Θ under the projectors so far (pool.with_pool: the upper layers fit the product\'s question rows); '
                         '0: once, the questions asked among their own few windows')
    ap.add_argument('--test-batches', type=int, default=12)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    try:
        lo, hi = (int(x) for x in a.distractors.split(','))
        if not 0 <= lo <= hi:
            raise ValueError
    except ValueError:
        print(f'fit_retriever: --distractors {a.distractors!r}: give lo,hi with 0 ≤ lo ≤ hi, e.g. 8,60', file=sys.stderr)
        return 2
    try:
        windows, streams = (int(x) for x in a.pool.split(',')) if a.pool else (0, 0)
        if a.pool and not (windows > 0 and streams > 0):
            raise ValueError
    except ValueError:
        print(f'fit_retriever: --pool {a.pool!r}: give W,S (windows per memory, memories), e.g. 320,4', file=sys.stderr)
        return 2
    if a.feed and not a.pool:
        print('fit_retriever: --feed says what the pool is: give --pool W,S with it', file=sys.stderr)
        return 2
    if a.hard < 0 or (a.hard and not a.pool):
        print(f'fit_retriever: --hard {a.hard}: give a count ≥ 0, and --pool W,S with it (the rows it picks from)', file=sys.stderr)
        return 2
    if a.rounds < 0 or (a.rounds and not a.pool):
        print(f'fit_retriever: --rounds {a.rounds}: give a count ≥ 0, and --pool W,S with it (the rows its questions are asked among)', file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    s = load_state(a.state)
    model = frozen_as_exported(s)
    fmt = lambda xs: ' '.join(f'{x:.3f}' for x in xs)
    share = lambda got, i: sum(x[i] for x in got) / len(got)

    if a.pool:
        t0 = time.time()
        train_pool = pool.record(model, corpus, windows, streams, a.seed + 100, a.feed)
        test_pool = pool.record(model, corpus, windows, 1, 2000, a.feed)
        train_normed, test_normed = pool.normed(model, train_pool.rows), pool.normed(model, test_pool.rows)
        rng, gen = random.Random(3000), torch.Generator().manual_seed(3000)
        scale_test = [write(model, corpus, problem_stage(True, 8, 0.3, a.positives, long_code=True), a.batch, rng, gen)
                      for _ in range(a.test_batches)]
        # Off-policy: asked once, under the state's own projectors (the memories' keys are theirs).
        scale_asked = [ask(model, b, mem) for b, mem in scale_test]
        print(f'  pools recorded in {time.time() - t0:.0f} s: {train_pool.rows[0].shape[0]} rows per layer to fit against, '
              f'{test_pool.rows[0].shape[0]} to measure', flush=True)

    def report(when: str):
        """Prints recall at the test sets; with a pool returns the mean over layers of the recall
        asked as the product asks (what the best round is kept by)."""
        if a.pool:
            R, P = model.c.retrieve_size, test_pool.rows[0].shape[0]
            off = pool.pool_recall(projectors(model), scale_asked, test_normed, R)
            on = pool.pool_recall(projectors(model), asked_among(model, scale_test, test_pool, 0, None), test_normed, R)
            print(f'  {when}, one-line facts among 8 long-code windows (30% other facts) and {P} pool rows: '
                  f'recall@R {fmt(off)}; asked among them (the product\'s question rows) {fmt(on)}', flush=True)
            return sum(on) / len(on)
        for k, (label, one_line, d, fn) in enumerate(TESTS):
            rec, answers = measure(model, corpus, problem_stage(one_line, d, fn, a.positives), a.test_batches, a.batch, 1000 + k)
            line = f'  {when}, {label}: recall@R {fmt(rec)}'
            for kind in ('value', 'def'):
                got = [x for x in answers if x[0] == kind]
                if got:
                    line += f'; {kind}s {share(got, 1):.2f} own / {share(got, 2):.2f} forced ({len(got)})'
            print(line, flush=True)

    print(f'fit_retriever: {a.state}: {a.batches} batches of {a.batch} ({lo}–{hi} distractors, {a.one_line:.0%} one-line), '
          f'{a.steps} steps{f" a round, {a.rounds} rounds asked among the pool" if a.rounds else ""}; positives: the fact\'s {a.positives}')
    # With a pool the projectors kept are the best of the rounds (or the state's own) by the held-out
    # recall asked as the product asks: rounds can go back (from the twenty-sixth session's carry a
    # second round fell 0.723 → 0.591 mean, and through the product 49 → 36 of 72 held out at 160k).
    best = (report('before'), 0, projectors(model))
    long_code = a.long_code or bool(a.pool)
    episodes = training_episodes(model, corpus, a.batches, a.batch, lo, hi, a.one_line, a.seed, a.positives, long_code)
    gen = torch.Generator().manual_seed(a.seed)
    for r in range(max(1, a.rounds)):
        # On-policy, each round asks again under the last round's projectors: what the lower layers
        # now retrieve among a repository's worth of rows makes the upper layers' question rows.
        train = (asked_among(model, episodes, train_pool, train_pool.rows[0].shape[0] // streams, gen) if a.rounds
                 else [ask(model, b, mem) for b, mem in episodes])
        # Afresh each round: its problems are new (and a cache keyed by a problem's id must not outlive it).
        hard = pool.Hardest(train_normed, a.hard) if a.hard else None
        augment = (lambda p, projs: pool.augmented(p, train_normed, a.pool_sample, gen, hard(p, projs[p[0]]) if hard else None)) if a.pool else None
        fitted, losses = fit(projectors(model), train, 'bce', a.steps, seed=a.seed + r, augment=augment,
                             report=lambda step, p, v: print(f'  step {step}: loss {v:.4f}', flush=True) if step % 500 == 0 else None)
        install(model, fitted)
        got = report(f'after round {r + 1}' if a.rounds else 'after')
        if got is not None and got > best[0]:
            best = (got, r + 1, projectors(model))
    if a.pool:
        install(model, best[2])
        which = "the state's own projectors" if best[1] == 0 else f'round {best[1]}'
        print(f'  kept {which}: mean recall asked among the pool {best[0]:.3f}', flush=True)
    out = with_projectors(s, model, dict(batches=a.batches, batch=a.batch, steps=a.steps, distractors=[lo, hi],
                                         one_line=a.one_line, seed=a.seed, positives=a.positives, long_code=long_code,
                                         pool=a.pool, pool_sample=a.pool_sample, hard=a.hard, rounds=a.rounds, kept_round=best[1] if a.pool else None, feed=a.feed, loss=sum(losses[-100:]) / min(100, len(losses))))
    atomic_save(out, a.out)
    print(f'fit_retriever: wrote {a.out} (step {s["step"]}; only the projectors differ)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
