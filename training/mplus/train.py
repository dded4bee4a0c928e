"""Trains a small M+ from scratch on lookup questions about real code, and keeps doing so across kills.

  /usr/bin/python3 -m training.mplus.train --data /work/scratch/corpus-data --run /work/scratch/train-run \\
      [--preset small] [--seed 1] [--batch 16] [--threads 2]

The run folder holds `state.pt` (model, optimizer, step, every RNG state; written atomically
every --save-every seconds and at each stage end) and `log.jsonl` (one line per logged step and
per evaluation). Starting again with the same folder resumes from `state.pt`: same seed + same
arguments → the same batches and the same weights as an uninterrupted run (the data RNG state
is saved with the weights): bit for bit on one thread (--threads 1). On two, the resumed process
sums some reduction in another order (the small preset, 4 steps after a resume: up to 2e-7 apart
in f32, 9e-5 with bf16 matmuls), while two uninterrupted runs side by side stay bit-equal; the op
is not pinned down. A different preset/seed than the folder's is refused.

Curriculum (TRAINING.md): (1) one short context, θ only, memory uncompressed (contexts ≤ K);
(2) longer contexts and several unrelated chunks after the fact, θ only; (3) cache + Θ merges +
co-trained retriever on, more distractors, the fact anywhere among them and half of them other
facts. Loss: cross-entropy on the answer tokens; in stage 3 plus the retriever's BCE (positives =
memory rows that came from the fact's chunk; negatives = the other candidates and a bank of
earlier steps' distractor rows, bank.py).
With --advance-at X, a stage other than the last ends early once two evaluations in a row reach
exact X; with --advance-on-plateau K, once K evaluations in a row fail to beat the stage's best by
0.02 (the steps it skips are saved as the run's `skipped`; stages are looked up by curriculum
position = step + skipped). Evaluation: exact answer under greedy decoding, which equals "every answer token is the argmax
under teacher forcing" — one forward, no sampling loop.
"""
import argparse
import copy
import dataclasses
import json
import os
import random
import sys
import time
from typing import Optional

import torch
import torch.nn.functional as F

from .device import PRECISIONS, atomic_save, autocast, load_state, pick, pick_precision
from .config import preset
from .data import Corpus, DataError, Stage, sample_batch, sample_continuation
from .bank import RowBank
from .carry import is_carry
from .model import MPlus

CURRICULA = {
    'smoke': [Stage('single', 10_000, 48, (0, 0), False)],
    'small': [
        Stage('1-single-uncompressed', 5000, 64, (0, 0), False, continuation=16),
        Stage('2-theta-distractors', 5000, 128, (1, 2), False, continuation=8),
        # Θ on, distractors growing. At 2–6 distractors (≤ 7 chunks, ≤ ~450 candidates) the
        # retriever never has to rank: its own pick answers as well as the fact's chunk forced into
        # R, yet at 40 it answers ~4% where the forced chunk still answers ~50% (run8). 5,300 steps
        # at 6–16 (run10) raised both, most of all the read at scale (BENCHMARKS.md). 16 is the most
        # that training's Θ holds: initial_rf 10 at update_ltm_frequency 2 keeps ~20 injections.
        Stage('3-ltm-retriever', 7000, 256, (2, 6), True, continuation=8, fact_anywhere=True, fact_negatives=0.5,
              bank_negatives=4096),
        # ask_others 2 from position 21,272 (run22, 980 steps from the θ-512 carry): two more of an
        # episode's facts asked from its memory, so only the name picks the answer. Among other
        # facts `confusion` rose 0.31/0.34 → 0.42/0.45, the bench's four one-line facts 9 → 19/128
        # (benchfacts); a step costs ~1.6×. No equal-step control was run (BENCHMARKS.md).
        # fact_fits from position 22,300 (run23, from run22 there): until then 64% of the other
        # definitions asked and 20% of the first had their path cropped out of memory, so they
        # taught the read to make a path up.
        # one_line_facts 0.25 from position 23,814 (run24, from run23 there): a quarter of the
        # steps' facts are one-line constant files, as the product's bench feeds them. 1,664
        # steps: benchfacts 19/32, 20/64, 21/128 → 30/32, 23/64, 27/128 (BENCHMARKS.md).
        # Half the steps one-line from position 25,478 (run26, from run24 there): a quarter drill
        # steps (one_line_drill: one-line facts only, as the bench at N = 0) and a third of the rest
        # one-line facts among code. Beside run25 (one_line_facts 0.5, no drill), 75 min each on
        # one thread: 1,080 steps against 961, benchfacts 4 facts 38 against 43/128 (27 before),
        # the product's N = 0 4 against 3/12, one-line facts among 40 chunks answered 0.42 against
        # 0.23 with its own retrieval (BENCHMARKS.md): within noise of each other, adopted for the
        # product's and retrieval's figures and the cheaper steps. 822 more steps (run27, to
        # position 27,380): benchfacts 4 facts 38 → 58/128, the product's N = 0 4 → 8/12.
        # From position 26,558 R is 256 (config.py; run28 from run26 there), with Θ's initial rows
        # tiled to 256 at 27,147: the product at 4k answers 15/36 (R 64: 0/12). 864 more
        # steps (run29) moved N = 0 18 → 22/36 and 4k 15 → 5/36: these stages train the read
        # among ≤ 16 chunks, not the ranking among the product's hundreds. So did an anneal, another
        # seed, 16–40 distractors and training's Θ at 64 rows (run30, 31, 33, 34: 250–450 steps each); the
        # mean of the carry and such branches (average.py) reads better than any: N = 0 35 → 47/72,
        # 4k 26 → 30/72 on held-out seeds, 8k 4 → 0 (BENCHMARKS.md, sixteenth session). Fed the
        # 512-token chunks export now writes, every one of these states finds the facts' rows alike
        # (77–82% at 4k): what the continuations lose is the read among them, not the ranking
        # (seventeenth session). So from position 27,147 (run41, 417 steps from the carry, --lr 1e-3)
        # every non-drill step writes its code as the product chunks it (long_code: windows of one
        # file up to 512 tokens; ~1.6x a step): on seeds 1–18 the carry's 36/32/15/8/3 of 72 at
        # N = 0/4k/8k/16k/32k became 42/32/28/10/9, the facts' rows found at 4k–32k 80/56/38/32% →
        # 95/79/58/49%; half the steps at --lr 2e-3 (run40) 33/24/17/6/5. The mean of the carry, run40
        # and two saves of run41 answered 42/38/25/27/25 held out, 13 at 64k (last session's mean
        # 47/29/18/9/5, 0; BENCHMARKS.md, eighteenth session). That mean and two saves of a branch
        # of it with --seed 2 (run42, 378 and 520 steps; the carry since) answer 46/39/34/31/21
        # held out, 14 at 64k (nineteenth session).
        # ask_others 3 and write_grad_drill (every write of a drill step trained through) from
        # position 29,504 (runH, 806 steps from runG, the twenty-fifth session's carry, whose drill-
        # only branch showed that binding is made in the write): after the retriever fit, on seeds
        # 1–36 N = 0 127 → 125 and 160k 67 → 78 of 144 (BENCHMARKS.md, twenty-sixth session).
        Stage('3b-ltm-more-distractors', 23000, 256, (6, 16), True, continuation=8, fact_anywhere=True,
              fact_negatives=0.5, bank_negatives=4096, ask_others=3, fact_fits=True, one_line_facts=1 / 3,
              one_line_drill=0.25, long_code=1.0, write_grad_drill=True),
    ],
}


def stage_identity(st: Stage) -> tuple:
    """A stage's fields as a run's identity records them. Fields added later (span_positives,
    content_tags) enter only when set, so a run saved before they existed resumes under the same
    curriculum."""
    return tuple(v for f, v in zip(dataclasses.fields(st), dataclasses.astuple(st))
                 if f.name not in LATER_FIELDS or v)


LATER_FIELDS = ('span_positives', 'content_tags', 'ask_others', 'fact_fits', 'one_line_facts', 'one_line_drill',
                'long_code', 'long_facts', 'real_words', 'long_code_distractors', 'write_grad_all',
                'write_grad_drill', 'pool_share')


def is_retriever(name: str) -> bool:
    """The retriever's projectors (query_proj, key_proj; encoder_query_proj is shipped, never used)."""
    return 'query_proj' in name or 'key_proj' in name


# The paper's "small L2 penalty on retriever weights (0.001)", as AdamW's decoupled decay. As a
# loss term (run3–run7 until step ~4,500) it killed the retriever: Adam normalizes every
# gradient, so the penalty's gradient 0.002·w moved each weight by ~lr per step toward 0, while
# the BCE's gradient on a product q·k of two small projections was smaller still. In ~10 steps
# the projectors fell from rms 0.02 to 4e-5, every score to sigmoid(0), the BCE to exactly ln 2
# (0.6931, or 0.3466 for a batch without positives), and zero stayed a saddle it never left.
RETRIEVER_WEIGHT_DECAY = 0.001


def make_optimizer(model: MPlus, lr: float) -> torch.optim.Optimizer:
    """AdamW with two groups: the language model (decay 0.01) and the retriever (its own decay)."""
    retr = [p for n, p in model.named_parameters() if is_retriever(n)]
    rest = [p for n, p in model.named_parameters() if not is_retriever(n)]
    return torch.optim.AdamW([{'params': rest, 'weight_decay': 0.01}, {'params': retr, 'weight_decay': RETRIEVER_WEIGHT_DECAY}],
                             lr=lr, betas=(0.9, 0.98))


def load_optimizer(opt: torch.optim.Optimizer, saved: dict):
    """A saved AdamW state into opt, with the retriever group's decay the code's: states from
    before the fix saved 0.0 there."""
    opt.load_state_dict(saved)
    opt.param_groups[1]['weight_decay'] = RETRIEVER_WEIGHT_DECAY


def restore_progress(s: dict, rng: random.Random, gen: torch.Generator):
    """A state's RNGs into rng, gen and torch; returns its stage bookkeeping
    (evals_in_a_row, best_stage, stage_best, evals_since_best)."""
    rng.setstate(s['rng'])
    gen.set_state(s['gen'])
    torch.set_rng_state(s['torch_rng'])
    return s.get('evals_in_a_row', 0), s.get('best_stage'), s.get('stage_best', -1.0), s.get('evals_since_best', 0)


def reinit_retriever(model: MPlus, opt: torch.optim.Optimizer, seed: int):
    """Draws the retriever's projectors afresh (the model's init, N(0, 0.02), from `seed`) and
    forgets their optimizer moments: a way out of the collapsed retriever above."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if is_retriever(n):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
                opt.state.pop(p, None)


def stage_at(stages, pos):
    """The stage holding curriculum position `pos`, and where it starts and ends."""
    start = 0
    for st in stages:
        if pos < start + st.steps:
            return st, start, start + st.steps
        start += st.steps
    return stages[-1], start - stages[-1].steps, start


def mastered(evals_in_a_row: int, acc: float, advance_at: float):
    """Evaluations in a row at or above `advance_at`, counting this one; a stage ends early at 2.

    The paper's curriculum is step-based; on a CPU its first stage runs hours after the task is
    learned (run3: exact 0.81 at step 1,500 of 5,000). Two evaluations in a row (64 fixed
    episodes each) guard against one lucky draw. The evaluations are deterministic, so a run
    stays reproducible from its seed.
    """
    n = evals_in_a_row + 1 if advance_at > 0 and acc >= advance_at else 0
    return n, n >= 2


PLATEAU_GAIN = 0.02  # an evaluation "improves" on the stage's best by at least this much


def plateaued(best: float, since_best: int, acc: float, patience: int):
    """(stage best, evaluations since it, whether the stage has stopped improving).

    With patience K > 0, a stage ends once K evaluations in a row fail to beat its best by
    PLATEAU_GAIN (two 64-episode evaluations differ by ~0.06 by chance, so K should be several).
    On a CPU a stage whose task the model cannot master at this size would otherwise run all its
    steps: run3's stage 2 (θ of 128 rows, half of the fact's rows dropped per distractor) held at
    exact 0.39–0.44 for its first 400 steps, with ~4,300 steps (hours) left, while the retriever
    (stage 3) had not started. Deterministic evaluations keep a run reproducible from its seed.
    """
    if acc >= best + PLATEAU_GAIN or best < 0:
        return max(acc, best), 0, False
    since_best += 1
    return best, since_best, patience > 0 and since_best >= patience


class ColumnBCE(torch.autograd.Function):
    """col[b, c] = Σ_r w[b, r] · BCE(x[b, r, c], y[b, c]) with BCE(x, y) = softplus(x) − x·y, and its
    gradient written out, w · (σ(x) − y): autograd's softplus backward took 23 ms a layer on the
    [32, ~20, 4,500] logits of a stage-3 step (the profile's third op), sigmoid a few."""

    @staticmethod
    def forward(ctx, x, w, y):
        ctx.save_for_backward(x, w, y)
        return ((F.softplus(x) - x * y.unsqueeze(1)) * w).sum(1)

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        return (torch.sigmoid(x) - y.unsqueeze(1)) * (w * g.unsqueeze(1)), None, None


# Tag of the fact chunk's rows that were not written at the fact's own tokens, under a stage's
# span_positives: neither positives nor negatives for the retriever (fact_row_tags).
FACT_CONTEXT = -3
# The tag of a negatives bank's rows appended after an episode's candidates (bank.py, pool.py).
BANKED = -2


def fact_row_tags(span: torch.Tensor, n: int, K: int) -> torch.Tensor:
    """Per-row tags [B, K] for the fact chunk's K new rows: 0 at the fact's tokens, FACT_CONTEXT
    elsewhere. span [B, 2] = the fact's token span [lo, hi) in its n-token context. A write keeps
    the layer outputs at the last K positions of [bos, θ's last K rows, the n tokens], so row r was
    written at token n − K + r (negative: a re-read θ row, never the fact's).

    Why try it: most of a chunk's rows are other code (a chunk holds ~50 tokens, the name and
    value a few), and no query can tell them from the same tokens elsewhere. On run8 at step
    ~18,850, 40 distractors (2,688 candidates, chance 0.024), projectors fitted to the rows at the
    name tokens found 0.30–0.44 of them in the top R; fitted to whole chunks, 0.04–0.08.
    Why stage 3 does not use it (run9, BENCHMARKS.md): 3,100 steps of it raised span recall at
    that scale from 0.08–0.13 to 0.19–0.38 and answered no more (2% with its own retrieval), while
    the evaluations at 2–6 distractors fell from ~0.5 to ~0.3: forced into the R, the span rows
    alone answer no definition (its path is in the header's rows) and a third of values; the
    whole chunk answers half of each."""
    tok = n - K + torch.arange(K, device=span.device).view(1, K)
    at = (tok >= span[:, :1]) & (tok < span[:, 1:2])
    return torch.where(at, torch.zeros_like(tok), torch.full_like(tok, FACT_CONTEXT))


def injection_tag(batch, j: int, stage: Stage, K: int) -> torch.Tensor:
    """The provenance tag injection j's rows carry: its chunk's [B], or for the fact's chunk
    under stage.span_positives one per row (fact_row_tags)."""
    if j == batch.fact_at and stage.span_positives:
        return fact_row_tags(batch.span, batch.contexts[j].shape[1], K)
    return batch.tags[j]


# The tag an episode's own fact's rows take when another of its facts is asked: a negative.
ASKED_OTHER = 1 << 30


def asked_fact_positive(tags: torch.Tensor, q_tag: torch.Tensor) -> torch.Tensor:
    """Candidate tags [B', C] relabelled per question so that 0 marks the rows of the fact it
    asks (q_tag [B']): the episode's own fact's rows become negatives (ASKED_OTHER) where another
    fact is asked. Tags below 0 (none, banked, left out) are unchanged."""
    q = q_tag.unsqueeze(1)
    return torch.where(tags == q, torch.zeros_like(tags), torch.where((tags == 0) & (q != 0), torch.full_like(tags, ASKED_OTHER), tags))


def retriever_bce(lg: torch.Tensor, w: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """One layer's retriever loss. lg [B, m_q, C] logits q·k of each question row against each
    candidate (then the bank's rows, tag −2); w [B, m_q, 1] 1 on question rows; tags [B, C]: 0 =
    the fact's rows (positives), FACT_CONTEXT = left out, else negatives.

    BCE per (row, candidate), averaged over the question rows of each class: positives and
    negatives weigh ½ each; with a bank, positives ½, the episode's own negatives ¼ and the bank ¼.
    Pooled with the episode's own negatives (the other facts: the hard ones), 4,096 banked rows
    drowned them: run5's fact-row recall fell to chance (0.175 against 0.167 at step 3,220).

    A class is a set of columns, so each column's BCE is summed over the rows first ([B, C]) and
    the classes are masks on that: the same sums as masking [B, m_q, C] three times, in one pass
    over the big tensor (ColumnBCE)."""
    lg = lg.float()  # bf16 under autocast: the loss itself in f32
    p = (tags == 0).float()                                          # [B, C] positives
    banked = (tags == BANKED).float()                                    # [B, C] the bank's rows
    neg = 1 - p - banked - (tags == FACT_CONTEXT).float()            # [B, C] the episode's own negatives
    col = ColumnBCE.apply(lg, w, p)                                  # [B, C]: per column, over question rows
    rows = w.sum(1)                                                  # [B, 1]: question rows per episode
    mean_over = lambda sel: (col * sel).sum() / (sel * rows).sum().clamp(min=1)
    if bool(banked.any()):
        return 0.5 * mean_over(p) + 0.25 * mean_over(neg) + 0.25 * mean_over(banked)
    return 0.5 * (mean_over(p) + mean_over(neg))


def episode_loss(model: MPlus, batch, stage: Stage, gen: torch.Generator, bank: Optional[RowBank] = None, pool=None):
    """bank: the retriever's extra negatives (bank.py), scored when the stage asks for them, then
    refilled with this batch's distractor rows. pool: a recorded pool (pool.Recorded) a pooled
    batch (Stage.pool_share) is asked behind; without one it is asked of its own memory."""
    mem = model.fresh_memory(batch.contexts[0].shape[0])
    every_write = stage.write_grad_all or (stage.write_grad_drill and batch.drill)
    for j, x in enumerate(batch.contexts):
        # Only the fact's own write is trained through (unless stage.write_grad_all, or
        # write_grad_drill in a drill step); distractors run forward only (cost).
        model.inject(mem, x, tag=injection_tag(batch, j, stage, model.c.num_tokens), gen=gen, use_ltm=stage.use_ltm,
                     grad=every_write or j == batch.fact_at, tags_follow_content=stage.content_tags)
    written = mem
    if pool is not None and batch.pooled:
        # The pool's ~27k rows a layer are the retriever's banked negatives here: no bank on top.
        mem = pool_memory(model, mem, pool, gen)
    banked = bank is not None and stage.use_ltm and stage.bank_negatives > 0
    extra = bank.on(model.memory.device) if banked and mem is written else None
    # Several questions per memory (stage.ask_others): each reads its episode's memory.
    logits, _, terms = model.generate_logits(mem, batch.tokens, batch.q_len, extra=extra, episode=batch.q_episode)
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.target.reshape(-1), ignore_index=-100)
    ret = torch.zeros(())
    n_ret = 0
    if stage.use_ltm:
        for l, (lg, w) in enumerate(terms):
            if lg is None:
                continue
            tags = torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], dim=1)  # [B, M+C]
            if batch.q_tag is not None:  # per question [B', M+C]
                tags = asked_fact_positive(tags.index_select(0, batch.q_episode), batch.q_tag)
            if extra is not None:  # banked rows: negatives (tag −2)
                tags = torch.cat([tags, torch.full((tags.shape[0], extra[l].shape[0]), BANKED, dtype=tags.dtype, device=tags.device)], dim=1)
            ret = ret + retriever_bce(lg, w, tags)
            n_ret += 1
        if n_ret:
            ret = ret / n_ret
            # No L2 term here: under Adam it killed the retriever (make_optimizer).
    if banked:
        for l in range(model.c.num_layers):
            rows = torch.cat([written.ltm[l], written.cache[l]], dim=1)
            tags = torch.cat([written.ltm_tag[l], written.cache_tag[l]], dim=1)
            bank.add(l, rows[tags >= 1], gen)  # distractor chunks' rows (not the fact's, not shipped ones)
    correct = exact(logits, batch.target)
    return lm, ret, correct


def pool_memory(model: MPlus, mem, recorded, gen: torch.Generator):
    """mem behind POOL_SAMPLE of the recorded pool's rows, the episode's graph kept (pool.with_pool;
    pool.py builds on this module, so it is imported here, not at the top)."""
    from .pool import with_pool
    return with_pool(model, mem, recorded, POOL_SAMPLE, gen, grad=True)


# Stage.pool_share: chunks of fed code in the pool (~160k tokens), and how many steps a recording
# serves: the writes drift as they train, so the pool is written again by the weights of the step
# that refreshes it (kept in state.pt: a resumed run records the same pool).
POOL_CHUNKS = 430
POOL_REFRESH = 250
# Rows of the pool (~27k a layer) a pooled step's Θ holds, drawn afresh each step: asked behind all
# of them, a step cost ~4.5x a drill step (35 s against 8, one shared core), behind this many ~1.8x
# (4.5–5.5 s). The ranking among all of them is fit_retriever's (--pool) before export.
POOL_SAMPLE = 4096


def record_pool(cfg, pool_from: dict, corpus, seed: int, dev):
    """The pool pool_from's weights write ({'step', 'model'}): POOL_CHUNKS chunks of fed code,
    recorded as the product keeps Θ (pool.recorded_as_exported), seeded by the run's seed and the step."""
    from .pool import recorded_as_exported
    with torch.random.fork_rng(devices=[]):  # a model's init draws: the run's torch RNG stays as it was
        m = MPlus(copy.deepcopy(cfg)).to(dev)
    m.load_state_dict(pool_from['model'])
    return recorded_as_exported(m, corpus, POOL_CHUNKS, seed * 1_000_003 + pool_from['step'])


def continuation_loss(model: MPlus, corpus, stage: Stage, rng, gen: torch.Generator):
    """Inject K bytes of code (uncompressed), predict the next K through the read path."""
    K = model.c.num_tokens
    b = sample_continuation(corpus, stage.continuation, K, K, rng).to(model.memory.device)
    mem = model.fresh_memory(b.context.shape[0])
    model.inject(mem, b.context, gen=gen, use_ltm=False)
    logits, _, _ = model.generate_logits(mem, b.tokens, b.q_len)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.target.reshape(-1))


def exact(logits, target):
    """Per episode: every answer token (and the eos) is the argmax → greedy decoding is exact."""
    ok = (logits.argmax(-1) == target) | (target == -100)
    return ok.all(dim=1)


def train_step(model: MPlus, opt, corpus, stage: Stage, batch_size: int, rng, gen: torch.Generator, dev, mark=None,
               bank: Optional[RowBank] = None, precision: str = 'f32', pool=None):
    """One optimizer step: a batch of fact episodes, the stage's continuation episodes, backward,
    clipping, AdamW. Returns (answer loss, retriever loss, continuation loss, exact per episode).
    mark(part), when given, is called as each part ends (stepcost.py times them): 'sample',
    'episode', 'continuation', 'backward', 'optimizer'. precision 'bf16': the forward under
    autocast (device.py); the losses come out f32 either way."""
    mark = mark or (lambda part: None)
    batch = sample_batch(corpus, batch_size, stage, rng).to(dev)
    mark('sample')
    with autocast(precision, torch.device(dev)):
        lm, ret, ok = episode_loss(model, batch, stage, gen, bank, pool)
        mark('episode')
        cont = continuation_loss(model, corpus, stage, rng, gen) if stage.continuation else torch.zeros(())
        mark('continuation')
    opt.zero_grad(set_to_none=True)
    (lm + ret + cont).backward()
    mark('backward')
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    mark('optimizer')
    return lm, ret, cont, ok


@torch.no_grad()
def evaluate(model, corpus, stage: Stage, seed: int, episodes: int, batch: int):
    """Exact-hit rate on fresh random names/values (its own RNG: the same questions every time)."""
    model.eval()
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    hits = n = 0
    for _ in range(max(1, episodes // batch)):
        b = sample_batch(corpus, batch, stage, rng).to(model.memory.device)
        _, _, ok = episode_loss(model, b, stage, gen)
        hits += int(ok.sum())
        n += ok.numel()
    model.train()
    return hits / max(1, n)


@torch.no_grad()
def memory_gain(model, corpus, seed: int, episodes: int = 32):
    """Continuation loss with each episode's own memory vs with another episode's memory.

    The gap is how much the read path uses what was written: it opens long before exact recall
    appears, so a run that will never learn to read memory shows itself early."""
    model.eval()
    K = model.c.num_tokens
    b = sample_continuation(corpus, episodes, K, K, random.Random(seed)).to(model.memory.device)
    mem = model.fresh_memory(episodes)
    model.inject(mem, b.context, gen=torch.Generator().manual_seed(seed), use_ltm=False)
    ce = lambda lg, t: float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), t.reshape(-1)))
    own = ce(model.generate_logits(mem, b.tokens, b.q_len)[0], b.target)
    tokens, target = b.tokens.roll(1, 0), b.target.roll(1, 0)  # episode i reads episode i−1's memory
    other = ce(model.generate_logits(mem, tokens, b.q_len)[0], target)
    model.train()
    return own, other


def learning_rate(peak: float, step: int, warm_from: int, warmup: int, anneal_from: int, anneal: int) -> float:
    """Linear warmup from warm_from, then constant; in an --anneal branch also a linear fall to 0
    over `anneal` steps from anneal_from (the decay phase of a warmup-stable-decay schedule: the
    parent run stays at the constant rate and can go on; its branches are the models to use)."""
    lr = peak * min(1.0, (step - warm_from + 1) / warmup)
    if anneal:
        lr *= max(0.0, 1.0 - (step - anneal_from) / anneal)
    return lr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='folder written by training/extract.js')
    ap.add_argument('--run', required=True, help='run folder: state.pt, log.jsonl (resumed if present)')
    ap.add_argument('--preset', default='small')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='auto', help='auto (CUDA when torch sees a GPU), cpu, cuda, cuda:N')
    ap.add_argument('--precision', default='auto', choices=PRECISIONS,
                    help='the training forward\'s matmuls: auto (bf16 where the CPU has AMX/AVX512-BF16 or the GPU bf16, else f32), '
                         'f32, bf16. Not part of the run\'s identity (like --device): a run may go on in another')
    ap.add_argument('--max-steps', type=int, default=0, help='stop after this many steps in all (0: the whole curriculum)')
    ap.add_argument('--max-seconds', type=float, default=0, help='save and stop after this much wall time (0: no limit); the same command resumes')
    ap.add_argument('--log-every', type=int, default=20)
    ap.add_argument('--eval-every', type=int, default=250)
    ap.add_argument('--eval-episodes', type=int, default=64)
    ap.add_argument('--save-every', type=float, default=120, help='seconds between state.pt writes')
    ap.add_argument('--advance-at', type=float, default=0.0,
                    help='end a stage (not the last) once two evaluations in a row reach this exact-answer rate (0: never)')
    ap.add_argument('--advance-on-plateau', type=int, default=0, metavar='K',
                    help=f'also end a stage (not the last) once K evaluations in a row fail to beat its best by {PLATEAU_GAIN} (0: never)')
    ap.add_argument('--init-from', metavar='STATE',
                    help="a new run starts from another run's state.pt or a carry (carry.py): its weights, optimizer moments "
                         "(a carry has none: the warmup starts again) and curriculum position (the same model config and "
                         "tokenizer). The same run carried over (equal identity) also goes on with its RNGs and stage "
                         "bookkeeping; another (a changed curriculum) draws from --seed with the bookkeeping fresh. "
                         "Once this run has its own state.pt it resumes from that")
    ap.add_argument('--reinit-retriever', action='store_true',
                    help='with --init-from: draw the retriever\'s projectors afresh (from --seed) and forget their moments; '
                         'for states whose retriever collapsed under the old L2 term (RETRIEVER_WEIGHT_DECAY). '
                         'Not part of the run\'s identity: a resume or a carry of this run does not draw again')
    ap.add_argument('--retriever-grad', action='store_true',
                    help='let the retriever\'s loss flow into the hidden states its keys and queries are made from '
                         '(config detach_hidden_state false; the forward is the same). Part of the run\'s identity')
    ap.add_argument('--anneal', type=int, default=0, metavar='N',
                    help='a decay branch: from the step this run starts at (its --init-from state, or 0) the learning '
                         'rate falls linearly to 0 over N steps, and the run stops there. Constant-rate training '
                         'goes on in the parent run; this one is what gets exported. Part of the run\'s identity')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    if a.reinit_retriever and not a.init_from:
        ap.error('--reinit-retriever goes with --init-from (a new run from a state whose retriever collapsed)')
    torch.set_num_threads(a.threads)
    try:
        dev = pick(a.device)
        precision = pick_precision(a.precision, dev)
    except ValueError as e:
        print(f'train: {e}', file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        corpus = Corpus(a.data)
    except DataError as e:
        print(f'train: {e}', file=sys.stderr)
        return 1
    stages = CURRICULA[a.preset]
    t = corpus.tok
    cfg = preset(a.preset, t.vocab_size, t.bos, t.eos)
    # The authors detach (TRAINING.md): their retriever reads a pretrained 8B's hidden states,
    # where ours come from a base trained from scratch. Letting the BCE shape them was measured
    # (run12, BENCHMARKS.md 2026-12-04): it cost the read more than it gave the retriever. Off.
    cfg.detach_hidden_state = not a.retriever_grad
    os.makedirs(a.run, exist_ok=True)
    state_path = os.path.join(a.run, 'state.pt')
    log_path = os.path.join(a.run, 'log.jsonl')
    identity = {'preset': a.preset, 'seed': a.seed, 'batch': a.batch, 'lr': a.lr, 'corpus': corpus.manifest['sha256'], 'tokenizer': t.fingerprint(),
                'curriculum': [stage_identity(st) for st in stages], 'advance_at': a.advance_at,
                'advance_on_plateau': a.advance_on_plateau}
    if a.retriever_grad:  # only when set: runs from before the flag resume under the same identity
        identity['retriever_grad'] = True
    if a.anneal:
        identity['anneal'] = a.anneal
    if a.init_from:
        identity['init_from'] = os.path.abspath(a.init_from)

    torch.manual_seed(a.seed)
    model = MPlus(cfg).to(dev)
    opt = make_optimizer(model, a.lr)
    rng = random.Random(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    bank = RowBank(cfg.num_layers, max(st.bank_negatives for st in stages), cfg.hidden_size)
    step = 0
    skipped = 0
    pool_from = None  # Stage.pool_share: the step and weights the pool was recorded from
    warm_from = 0  # the step the warmup counts from (a carry's step: its moments start fresh)
    anneal_from = 0  # the step an --anneal branch starts its decay from (where it left its parent)
    evals_in_a_row = 0
    best_stage, stage_best, evals_since_best = None, -1.0, 0  # the stage whose best evaluation this is (−1: none yet)
    same_model = lambda c: {**c, 'detach_hidden_state': None}  # a training switch, not the model
    if os.path.exists(state_path):
        try:
            s = load_state(state_path)
        except Exception as e:  # a torn write is impossible (atomic rename); anything else is named
            print(f'train: {state_path}: cannot load ({e}); move it aside to start over', file=sys.stderr)
            return 1
        # runs from before --advance-at / --advance-on-plateau never advanced early
        if {'advance_at': 0.0, 'advance_on_plateau': 0, **s['identity']} != identity:
            print(f'train: {a.run} holds a run with {s["identity"]}, not {identity}; use another --run folder', file=sys.stderr)
            return 1
        if same_model(s['config']) != same_model(cfg.to_hf()):
            print(f'train: {state_path} holds a model of another shape than preset {a.preset} now makes '
                  f'(θ {s["model"]["memory"].shape[1]} rows, the preset {cfg.stm_size}); go on from it in a new --run folder '
                  'with --init-from, after training.mplus.grow if θ grew', file=sys.stderr)
            return 1
        model.load_state_dict(s['model'])
        load_optimizer(opt, s['opt'])
        evals_in_a_row, best_stage, stage_best, evals_since_best = restore_progress(s, rng, gen)
        step = s['step']
        skipped = s.get('skipped', 0)
        warm_from = s.get('warm_from', 0)
        anneal_from = s.get('anneal_from', 0)
        pool_from = s.get('pool_from')
        bank.load(s.get('bank', bank.state()))
        print(f'train: resumed {a.run} at step {step}' + (f' (curriculum position {step + skipped})' if skipped else ''), flush=True)
    elif a.init_from:
        try:
            s = load_state(a.init_from)
        except Exception as e:
            print(f'train: --init-from {a.init_from}: cannot load ({e}); give a run\'s state.pt or a carry (training/carry/)', file=sys.stderr)
            return 1
        if same_model(s['config']) != same_model(cfg.to_hf()) or s['identity']['tokenizer'] != identity['tokenizer']:
            print(f'train: --init-from {a.init_from}: its model config or tokenizer differs from preset {a.preset} on {a.data}; '
                  'a run can only start from a state of the same model', file=sys.stderr)
            return 1
        model.load_state_dict(s['model'])
        step, skipped = s['step'], s.get('skipped', 0)
        anneal_from = step
        if is_carry(s):  # no moments: fresh AdamW moments take full-size steps, so warm up again
            warm_from = step
        else:
            load_optimizer(opt, s['opt'])
        if a.reinit_retriever:
            reinit_retriever(model, opt, a.seed)
        # The same run carried over (identity equal but for init_from): go on with its randomness and
        # stage bookkeeping, so only the moments and the bank differ from a resume. Otherwise (a
        # changed curriculum) randomness comes from --seed and the bookkeeping starts fresh.
        continuation = {k: v for k, v in s['identity'].items() if k != 'init_from'} == \
            {k: v for k, v in identity.items() if k != 'init_from'}
        if continuation:
            evals_in_a_row, best_stage, stage_best, evals_since_best = restore_progress(s, rng, gen)
        if 'bank' in s:
            bank.load(s['bank'])
        with open(log_path, 'a') as lg:
            lg.write(json.dumps({'step': step, 'initialized_from': identity['init_from'], 'from_identity': s['identity'],
                                 'continuation': continuation, 'fresh_moments': is_carry(s), 'reinit_retriever': a.reinit_retriever,
                                 'time': time.time()}) + '\n')
        print(f'train: {a.run} starts from {a.init_from} at step {step} (curriculum position {step + skipped})'
              + ('; the same run goes on' if continuation else '')
              + (f'; fresh optimizer moments, warmup again over {a.warmup} steps' if is_carry(s) else '')
              + ('; the retriever drawn afresh' if a.reinit_retriever else ''), flush=True)
    # Curriculum position = step + the steps of stages ended early (--advance-at).
    total = sum(st.steps for st in stages)
    if a.max_steps:
        total = min(total, a.max_steps)
    if a.anneal:  # a decay branch ends where its rate reaches 0
        total = min(total, anneal_from + a.anneal + skipped)

    def save():
        atomic_save({'identity': identity, 'config': cfg.to_hf(), 'model': model.state_dict(), 'opt': opt.state_dict(),
                     'rng': rng.getstate(), 'gen': gen.get_state(), 'torch_rng': torch.get_rng_state(), 'step': step,
                     'skipped': skipped, 'evals_in_a_row': evals_in_a_row, 'best_stage': best_stage, 'stage_best': stage_best, 'evals_since_best': evals_since_best,
                     'warm_from': warm_from, 'anneal_from': anneal_from, 'bank': bank.state(), 'tokenizer': t.to_spec(),
                     **({'pool_from': pool_from} if pool_from else {})}, state_path)

    log = open(log_path, 'a')
    # Where and how this stretch of the run trains (neither is part of its identity).
    log.write(json.dumps({'step': step, 'device': str(dev), 'precision': precision, 'threads': a.threads, 'time': time.time()}) + '\n')
    log.flush()
    model.train()
    t0 = time.time()
    last_save = time.time()
    done0 = step
    ema = None
    recorded = None  # the pool pooled batches are asked behind (Stage.pool_share)
    while step + skipped < total:
        stage, _, stage_end = stage_at(stages, step + skipped)
        # Not due with no pool recorded: a resumed run, whose state.pt kept the weights its pool came from.
        due = pool_from is None or step - pool_from['step'] >= POOL_REFRESH
        if stage.pool_share > 0 and (recorded is None or due):
            if due:
                pool_from = {'step': step, 'model': {k: v.detach().clone() for k, v in model.state_dict().items()}}
            t1 = time.time()
            recorded = record_pool(cfg, pool_from, corpus, a.seed, dev)
            log.write(json.dumps({'step': step, 'pool_recorded_at': pool_from['step'], 'pool_rows': recorded.rows[0].shape[0],
                                  'seconds': round(time.time() - t1, 1), 'time': time.time()}) + '\n')
            log.flush()
        lr = learning_rate(a.lr, step, warm_from, a.warmup, anneal_from, a.anneal)
        for g in opt.param_groups:
            g['lr'] = lr
        lm, ret, cont, ok = train_step(model, opt, corpus, stage, a.batch, rng, gen, dev, bank=bank, precision=precision,
                                      pool=recorded)
        step += 1
        ema = lm.item() if ema is None else 0.95 * ema + 0.05 * lm.item()
        pos = step + skipped
        if step % a.log_every == 0 or pos == total:
            el = time.time() - t0
            rate = (step - done0) / el
            rec = {'step': step, 'stage': stage.name, 'loss': round(lm.item(), 4), 'loss_ema': round(ema, 4),
                   'retriever_loss': round(float(ret), 4), 'continuation_loss': round(float(cont), 4), 'train_exact': round(ok.float().mean().item(), 3),
                   'lr': lr, 'steps_per_s': round(rate, 3), 'eta_s': int((total - pos) / max(rate, 1e-9)), 'time': time.time()}
            log.write(json.dumps(rec) + '\n')
            log.flush()
            if not a.quiet:
                eta = rec['eta_s']
                print(f'step {pos}/{total} [{stage.name}] loss {lm.item():.3f} (ema {ema:.3f}) ret {float(ret):.3f} cont {float(cont):.3f} '
                      f'exact {rec["train_exact"]:.2f} {rate:.2f} steps/s ETA {eta // 3600}h{eta % 3600 // 60:02d}m', flush=True)
        if a.eval_every and step % a.eval_every == 0:
            acc_now = evaluate(model, corpus, stage, 12345, a.eval_episodes, a.batch)
            own, other = memory_gain(model, corpus, 12345)
            rec = {'step': step, 'eval_stage': stage.name, 'eval_exact': acc_now, 'cont_own_memory': round(own, 4),
                   'cont_other_memory': round(other, 4), 'time': time.time()}
            log.write(json.dumps(rec) + '\n')
            log.flush()
            if not a.quiet:
                print(f'eval step {step} [{stage.name}] exact {acc_now:.3f}; continuation loss {own:.3f} with its memory, '
                      f'{other:.3f} with another\'s', flush=True)
            evals_in_a_row, advance = mastered(evals_in_a_row, acc_now, a.advance_at)
            if best_stage != stage.name:  # a new stage (ended by its steps or early): its own best
                best_stage, stage_best, evals_since_best = stage.name, -1.0, 0
            stage_best, evals_since_best, flat = plateaued(stage_best, evals_since_best, acc_now, a.advance_on_plateau)
            why = (f'two evaluations in a row at exact >= {a.advance_at}' if advance else
                   f'{evals_since_best} evaluations without beating its best ({stage_best:.3f}) by {PLATEAU_GAIN}')
            if (advance or flat) and stage is not stages[-1] and pos < stage_end:
                skipped += stage_end - pos
                evals_in_a_row = 0
                log.write(json.dumps({'step': step, 'stage_ended_early': stage.name, 'skipped_steps': stage_end - pos, 'why': why, 'time': time.time()}) + '\n')
                log.flush()
                print(f'train: stage {stage.name} ended at step {step}: {why} ({stage_end - pos} of its steps skipped)', flush=True)
        pos = step + skipped
        if time.time() - last_save > a.save_every or pos == total or pos == stage_end:
            save()
            last_save = time.time()
        if a.max_seconds and time.time() - t0 > a.max_seconds:
            save()
            print(f'train: stopped after {time.time() - t0:.0f} s at step {step} (--max-seconds); run the same command to go on', flush=True)
            break
    log.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
