"""A last, read-only stage: the read adapter (`decoder_adapter`, used only while answering) fitted
to a frozen model's memories as the product holds them, written into a copy of the state (then
`export` as usual).

  /usr/bin/python3 -m training.mplus.fit_read --data DATA --state S --out FITTED.pt
      [--steps 600] [--batch 8] [--pool 430] [--pool-share 0.5] [--lr 3e-4] [--threads 1]

Why a read-only stage: the misses left after the retriever fit are mostly binding. Held out at
160k, 23 of 38 misses were another fact's value, with all four facts' rows in R (BENCHMARKS.md,
twenty-fourth session), and at N = 0 21 of 26. The read learned to answer among 6–16 training
chunks; the product asks it among a θ of code and 256 retrieved rows, most of them other facts'
and a repository's. The read adapter is the one part of the model that only answering uses: the
write (base weights and the `default` adapter) makes every memory row, the projectors choose R,
and neither reads the decoder adapter. So with it alone trained, the memories stay exactly what
the product writes, and a step costs a no-grad write and one question's backward, not the
trainer's BPTT through an injection.

Problems, per step one kind (--pool-share of them the second):
- N = 0: one-line constant files only (the trainer's drill step, Stage.one_line_drill: 2–6 facts,
  as `bench retention` feeds them), every fact asked (ask_others) from θ;
- 160k: the same memory with a repository's worth of code fed after it (pool.with_pool: a recorded
  pool of --pool chunks of the code the product feeds, training/feedchunks.js, in Θ; θ that
  code's), so each fact is found only where retrieval finds it, among the other facts' rows.
The loss is the trainer's answer loss (cross-entropy on the answer and eos), on the same batches.
A fixed held-out set of each kind (other seeds, a pool recorded from other files) is measured
before, every --eval-every steps and after: exact answers as greedy decoding gives them.
The learning rate warms up for 30 steps and falls linearly to 0 (a decay branch: the weights to
export are the last). The saved state differs from S only in the decoder adapter; its AdamW
moments are dropped.
"""
import argparse
import dataclasses
import random
import sys
import time

import torch
import torch.nn.functional as F

from . import pool
from .data import Corpus, Stage
from .device import atomic_save, load_state
from .model import MPlus, frozen_as_exported
from .retriever_ceiling import write
from .train import exact

READ_ADAPTER = 'decoder_adapter'
# The trainer's drill step (one-line facts only), every other fact asked: 2–6 questions a memory.
DRILL = Stage('read-fit', 1, 256, (1, 5), True, fact_anywhere=True, fact_negatives=1.0, ask_others=5, fact_fits=True,
              one_line_facts=1.0, one_line_drill=1.0)
WARMUP = 30


def read_parameters(model: MPlus):
    """The read adapter's tensors: (name, parameter) of every lora_A/B.decoder_adapter."""
    return [(n, p) for n, p in model.named_parameters() if f'.{READ_ADAPTER}.' in n]


def problem(model: MPlus, corpus: Corpus, batch: int, recorded, rng, gen, real_words: float = 0.0):
    """One written batch and the memory its questions are asked of: θ alone (recorded None) or
    with the pool fed after it. real_words: the share of facts named and valued with the corpus's
    words (Stage.real_words), as a repository's are."""
    b, mem = write(model, corpus, dataclasses.replace(DRILL, real_words=real_words), batch, rng, gen)
    if recorded is not None:
        mem = pool.with_pool(model, mem, recorded)
    return b, mem


def answer_loss(model: MPlus, b, mem):
    """(cross-entropy on the answers, exact per question)."""
    logits, _, _ = model.generate_logits(mem, b.tokens, b.q_len, episode=b.q_episode)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.target.reshape(-1), ignore_index=-100)
    return loss, exact(logits, b.target)


def measure(model: MPlus, tests) -> float:
    """Share of the held-out questions answered exactly."""
    ok = n = 0
    with torch.no_grad():
        for b, mem in tests:
            _, got = answer_loss(model, b, mem)
            ok += int(got.sum())
            n += got.numel()
    return ok / max(1, n)


def fit(model: MPlus, draw, steps: int, lr: float, each=None) -> float:
    """AdamW on the read adapter alone: step k answers draw(k)'s (batch, memory); each(k), when
    given, after every step. Returns the answer loss's moving average at the end."""
    params = [p for _, p in read_parameters(model)]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    avg, t0 = None, time.time()
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g['lr'] = lr * min(step / WARMUP, (steps - step + 1) / max(1, steps - WARMUP))
        loss, _ = answer_loss(model, *draw(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        avg = float(loss) if avg is None else 0.95 * avg + 0.05 * float(loss)
        if step % 20 == 0:
            rate = step / (time.time() - t0)
            print(f'  step {step}/{steps}: loss {avg:.3f}, {rate:.2f} steps/s, ETA {(steps - step) / rate / 60:.0f} min', flush=True)
        if each:
            each(step)
    return avg


def trainable(model: MPlus):
    """Freezes everything but the read adapter (what `fit` trains)."""
    for n, p in model.named_parameters():
        p.requires_grad_(f'.{READ_ADAPTER}.' in n)


def with_read(s: dict, model: MPlus, info: dict) -> dict:
    """A copy of state s with the model's read adapter, AdamW moments dropped."""
    out = {k: v for k, v in s.items() if k != 'opt'}
    out['model'] = dict(s['model'])
    for n, p in read_parameters(model):
        out['model'][n] = p.detach().clone()
    out['read_fit'] = info
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--out', required=True, help='where the state with the fitted read adapter goes')
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--batch', type=int, default=8, help='memories a step (each asked 2–6 questions)')
    ap.add_argument('--lr', type=float, default=3e-4)
    ap.add_argument('--pool', type=int, default=430, help='chunks of fed code after the facts in the 160k problems (430: ~160k tokens)')
    ap.add_argument('--pool-share', type=float, default=0.5, help='share of steps asked after the pool (the rest: from θ)')
    ap.add_argument('--real-words', type=float, default=0.0,
                    help="share of facts named and valued with the corpus's words (Stage.real_words; the rest: syllables, as the bench's)")
    ap.add_argument('--test-batches', type=int, default=6, help='held-out batches of each kind')
    ap.add_argument('--eval-every', type=int, default=100)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    if a.steps < 1 or a.batch < 1 or not 0 <= a.pool_share <= 1 or not 0 <= a.real_words <= 1 or a.pool < 1:
        print('fit_read: give --steps ≥ 1, --batch ≥ 1, --pool ≥ 1, and --pool-share and --real-words in [0, 1]', file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    s = load_state(a.state)
    model = frozen_as_exported(s)
    trainable(model)
    params = [p for _, p in read_parameters(model)]
    t0 = time.time()
    train_pool = pool.record(model, corpus, a.pool, 1, a.seed + 100, feed=True)
    test_pool = pool.record(model, corpus, a.pool, 1, 2000, feed=True)
    rng, gen = random.Random(5000), torch.Generator().manual_seed(5000)
    tests = {'θ (N = 0)': [problem(model, corpus, a.batch, None, rng, gen) for _ in range(a.test_batches)],
             'after the pool (160k)': [problem(model, corpus, a.batch, test_pool, rng, gen) for _ in range(a.test_batches)]}
    if a.real_words:
        tests['real words, θ'] = [problem(model, corpus, a.batch, None, rng, gen, 1.0) for _ in range(a.test_batches)]
    print(f'fit_read: {a.state}: {a.steps} steps of {a.batch} memories, {a.pool_share:.0%} after {a.pool} chunks of fed code '
          f'({train_pool.rows[0].shape[0]} rows a layer); {sum(p.numel() for p in params)} read parameters; '
          f'set up in {time.time() - t0:.0f} s', flush=True)

    def report(when: str):
        print(f'  {when}: exact ' + ', '.join(f'{k} {measure(model, v):.3f}' for k, v in tests.items()), flush=True)

    report('before')
    rng, gen = random.Random(a.seed), torch.Generator().manual_seed(a.seed)
    draw = lambda step: problem(model, corpus, a.batch, train_pool if rng.random() < a.pool_share else None, rng, gen, a.real_words)
    avg = fit(model, draw, a.steps, a.lr, lambda step: report(f'step {step}') if step % a.eval_every == 0 and step < a.steps else None)
    report('after')
    atomic_save(with_read(s, model, dict(steps=a.steps, batch=a.batch, lr=a.lr, pool=a.pool, pool_share=a.pool_share, real_words=a.real_words,
                                         seed=a.seed, loss=avg)), a.out)
    print(f'fit_read: wrote {a.out} (step {s["step"]}; only the read adapter differs)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
