"""How well could any retriever do on a state's memory at the product's scale? (a diagnostic:
prints, asserts nothing)

  /usr/bin/python3 -m training.mplus.retriever_ceiling --data DATA --state S [--distractors 40]
      [--fact-negatives 0.5] [--train-batches 24] [--test-batches 4] [--steps 600] [--losses bce,rank]
      [--width S] [--positives span|chunk|content] [--fact-fits] [--one-line]

Episodes of stage 3's kind with many more chunks than training feeds (40 distractors: ~2,700
candidate rows per layer, like ~10k tokens of a repository), Θ kept as the product keeps it
(merges every 100 injections, as exported). The model is frozen; per layer it records the
retriever's inputs (the question's rows and every Θ + cache row, through the layer's input norm)
and which rows are the fact's: with `--positives chunk` (the default, as stage 3 trains: the
paper's labels) its whole chunk's, with `span` the rows written at its own tokens (its name,
through the value), with `content` the rows that carry its chunk (Stage.content_tags: a short
chunk's write re-reads the previous chunk's rows, the next chunk's re-reads the fact's). Then:
- the exact-answer rate with the model's own retrieval, and with the fact's whole chunk forced
  into every layer's R (the read's ceiling: what perfect retrieval would give at this scale);
- recall@R of the fact's rows (the share of them in the top R) with the state's own projectors,
  on the test episodes, beside chance (R / candidates);
- the same after fitting fresh copies of the projectors to the training episodes alone, with the
  trainer's BCE (`bce`) and with a listwise ranking loss on the retrieval score itself (`rank`:
  −log of the positives' share of softmax(score / 0.05) over all candidates), every 100 steps;
  with --width S, fresh projectors S wide instead (is the retriever too narrow?).

The fitted recall is a ceiling for this memory: what projectors can find in rows the write path
produced. If it stays near the state's own, a better retriever loss cannot help; the rows do not
carry what the question asks for, and the write (or the model's width) must change. run8
(BENCHMARKS.md): fitted to whole chunks, 0.04–0.08 at step 7,731; fitted to the fact's tokens,
0.30–0.44 at step ~18,850 (own 0.07–0.28), chance 0.024: the rows carry the name; the chunk
labels asked for rows of other code. But the read needs more than those rows (a definition's
answer, its path, is in the header's rows), so training on span labels raised span recall
×3 and no answers (train.fact_row_tags).
"""
import argparse
import copy
import random
import sys
from typing import List, Optional, Tuple

import torch

from .data import Corpus, Stage, sample_batch
from .device import load_state
from .confusion import found_share
from .model import MPlus, frozen_as_exported, projector, retrieval_scores
from .train import BANKED, FACT_CONTEXT, exact, injection_tag, retriever_bce

# One layer's problem for one batch: (layer, normed question rows [B, m_q, d], question mask
# [B, m_q], normed candidate rows [B, C, d], candidate tags [B, C] (0 = the fact's)).
Problem = Tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
TAU = 0.05


def forced(model: MPlus, mem, l: int, scores: torch.Tensor, fact: torch.Tensor) -> torch.Tensor:
    """Layer l's R retrieved rows with the fact chunk's rows first (then the best by score), in the
    model's prefix order: what the read sees when retrieval is perfect."""
    return model.select(mem, l, scores + 2.0 * fact.float())  # scores ≤ 1


def problem_stage(one_line: bool, distractors: int, fact_negatives: float, positives: str = 'chunk',
                  fact_fits: bool = True, long_code: bool = False) -> Stage:
    """Episodes of stage 3's kind at the product's scale: the fact anywhere among `distractors`
    chunks, Θ on, one-line or the corpus's facts, the fact's rows labelled as --positives says.
    long_code: the code is written as the product writes a repository (Stage.long_code: windows of
    up to 512 tokens of one file), so 320 distractors are ~160k tokens."""
    n = (distractors, distractors)
    return Stage('probe', 1, 256, n, True, fact_anywhere=True, fact_negatives=fact_negatives,
                 span_positives=positives == 'span', content_tags=positives == 'content', fact_fits=fact_fits,
                 one_line_facts=1.0 if one_line else 0.0, long_code=1.0 if long_code else 0.0,
                 long_code_distractors=n if long_code else ())


def write(model: MPlus, corpus: Corpus, stage: Stage, batch: int, rng, gen):
    """One batch of episodes written into a fresh memory: (the batch, its Memory). The rows do not
    depend on the projectors (a write never retrieves), so a memory can be asked again after the
    projectors change, its keys recomputed (pool.with_pool)."""
    b = sample_batch(corpus, batch, stage, rng)
    mem = model.fresh_memory(batch)
    with torch.no_grad():
        for j, x in enumerate(b.contexts):
            model.inject(mem, x, tag=injection_tag(b, j, stage, model.c.num_tokens), gen=gen, use_ltm=True, grad=False,
                         tags_follow_content=stage.content_tags)
    return b, mem


def ask(model: MPlus, b, mem, answers: Optional[List[Tuple[str, bool, bool]]] = None) -> List[Problem]:
    """Per layer: the retriever's inputs as the batch's question reached it (the question's rows
    and every Θ + cache row, through the layer's input norm). Rows tagged BANKED (pool.with_pool's:
    a repository's worth of other code in Θ, so the upper layers' question rows are the product's)
    are ranked by the question but left out of the problem. answers, when given, gets per episode
    (the fact's kind, exact with the model's own retrieval, exact with the fact's chunk forced in)."""
    seen: List[Problem] = []
    retrieve = model.retrieve

    def recording(mem, l, h_q, q_mask, extra=None):
        m_q = int(q_mask.sum(1).max())
        norm = model.model.layers[l].input_layernorm
        rows = torch.cat([mem.ltm[l], mem.cache[l]], dim=1)
        tags = torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], dim=1)
        own = tags[0] != BANKED  # with_pool gives every episode the same BANKED columns
        rows, tags = rows[:, own], tags[:, own]
        seen.append((l, norm(h_q[:, :m_q]).detach(), q_mask[:, :m_q].clone(), norm(rows).detach(), tags.clone()))
        return retrieve(mem, l, h_q, q_mask, extra)

    model.retrieve = recording  # this instance only, for the question below
    try:
        with torch.no_grad():
            logits, retrieved, terms = model.generate_logits(mem, b.tokens, b.q_len)
            if answers is not None:
                fixed = []
                for l, (lg, w) in enumerate(terms):
                    if lg is None:
                        fixed.append(retrieved[l])
                        continue
                    tags = seen[l][4]
                    if lg.shape[-1] != tags.shape[1]:
                        raise ValueError('answers are measured on an episode\'s own memory, not with pool rows in it')
                    fixed.append(forced(model, mem, l, retrieval_scores(lg, w), (tags == 0) | (tags == FACT_CONTEXT)))
                oracle, _, _ = model.generate_logits(mem, b.tokens, b.q_len, fixed=fixed)
                answers += list(zip(b.kinds, exact(logits, b.target).tolist(), exact(oracle, b.target).tolist()))
    finally:
        del model.retrieve
    return seen


def collect(model: MPlus, corpus: Corpus, stage: Stage, batches: int, batch: int, rng, gen,
            answers: Optional[List[Tuple[str, bool, bool]]] = None) -> List[List[Problem]]:
    """Per batch, per layer: the retriever's inputs as the question's read reached it (write, then
    ask). Under stage.span_positives the fact's positives are the rows at its own tokens (tag 0)
    and the rest of its chunk is FACT_CONTEXT, as the trainer labels them."""
    return [ask(model, *write(model, corpus, stage, batch, rng, gen), answers) for _ in range(batches)]


def projectors(model: MPlus):
    """Copies of each layer's (query_proj, key_proj)."""
    return [(copy.deepcopy(l.self_attn.query_proj), copy.deepcopy(l.self_attn.key_proj)) for l in model.model.layers]


def fresh_projectors(model: MPlus, width: int, seed: int = 0):
    """New (query_proj, key_proj) per layer of another width, drawn from seed: does a wider
    retriever find more in the same rows?"""
    torch.manual_seed(seed)
    d = model.c.hidden_size
    return [(projector(d, width), projector(d, width)) for _ in model.model.layers]


def score(proj, q_in, q_mask, rows):
    """(logits [B, m_q, C], weights [B, m_q, 1], scores [B, C]): the retrieval score, mean sigmoid."""
    qp, kp = proj
    lg = qp(q_in) @ kp(rows).transpose(1, 2)
    w = q_mask.float().unsqueeze(-1)
    return lg, w, retrieval_scores(lg, w)


def recall(projs, sets: List[List[Problem]], R: int, augment=None) -> List[float]:
    """Per layer: mean share of the fact's candidate rows in the top R (episodes with some).
    augment(problem, projs), when given, is what is ranked instead (pool.augmented: more candidates)."""
    per = [[] for _ in projs]
    with torch.no_grad():
        for problems in sets:
            for p in problems:
                l, q_in, q_mask, rows, tags = augment(p, projs) if augment else p
                s = score(projs[l], q_in, q_mask, rows)[2]
                per[l] += found_share(tags == 0, s.topk(min(R, s.shape[1]), dim=1).indices)
    return [sum(p) / len(p) if p else float('nan') for p in per]


def rank_loss(s: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """−log of the positives' softmax mass over all candidates (FACT_CONTEXT rows left out), per
    episode with positives."""
    pos = tags == 0
    keep = pos.any(1)
    s = s.masked_fill(tags == FACT_CONTEXT, float('-inf'))
    z, pos = s[keep] / TAU, pos[keep]  # episodes without positives never enter (their log would be −inf)
    if z.shape[0] == 0:
        return s.sum() * 0
    return (torch.logsumexp(z, 1) - torch.logsumexp(z.masked_fill(~pos, float('-inf')), 1)).mean()


def fit(projs, train: List[List[Problem]], loss: str, steps: int, seed: int = 0, report=None, augment=None):
    """Fits copies of projs to the training problems; report(step, projs, loss) every 100 steps.
    augment(problem, projs), when given, is what each step scores instead (pool.augmented: more
    candidates, chosen under the projectors as they are at that step). Returns the fitted copies and the loss per step."""
    projs = copy.deepcopy(projs)
    params = [p for qp, kp in projs for p in list(qp.parameters()) + list(kp.parameters())]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.001)
    rng = random.Random(seed)
    losses = []
    for step in range(steps):
        total = 0
        problems = rng.choice(train)
        for p in problems:
            l, q_in, q_mask, rows, tags = augment(p, projs) if augment else p
            lg, w, s = score(projs[l], q_in, q_mask, rows)
            total = total + (retriever_bce(lg, w, tags) if loss == 'bce' else rank_loss(s, tags))
        total = total / len(problems)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total))
        if report and (step + 1) % 100 == 0:
            report(step + 1, projs, sum(losses[-100:]) / 100)
    return projs, losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True)
    ap.add_argument('--state', required=True, help="a run's state.pt or a carry")
    ap.add_argument('--distractors', type=int, default=40)
    ap.add_argument('--fact-negatives', type=float, default=0.5, help='share of the distractors that are other facts')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--train-batches', type=int, default=24)
    ap.add_argument('--test-batches', type=int, default=4)
    ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--losses', default='bce,rank')
    ap.add_argument('--width', type=int, default=0, help='fit fresh projectors of this width (selector_hidden_dim) instead of copies of the state\'s')
    ap.add_argument('--positives', default='chunk', choices=('span', 'chunk', 'content'),
                    help="the fact's rows that count: its whole chunk's (as stage 3 trains), those at its own tokens, "
                         "or the rows that carry its chunk's content (Stage.content_tags)")
    ap.add_argument('--fact-fits', action='store_true',
                    help='every fact\'s window holds its name and answer (Stage.fact_fits); off: the episodes recorded before it')
    ap.add_argument('--one-line', action='store_true',
                    help='every fact (the one asked and the other facts among the distractors) a one-line constant file '
                         'as `bench retention` feeds it (Stage.one_line_facts); off: the corpus\'s facts')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.data)
    s = load_state(a.state)
    model = frozen_as_exported(s)
    R = model.c.retrieve_size
    stage = problem_stage(a.one_line, a.distractors, a.fact_negatives, a.positives, a.fact_fits)
    rng, gen = random.Random(5), torch.Generator().manual_seed(5)
    answers: List[Tuple[str, bool, bool]] = []
    test = collect(model, corpus, stage, a.test_batches, a.batch, rng, gen, answers)
    train = collect(model, corpus, stage, a.train_batches, a.batch, rng, gen)
    C = test[0][0][3].shape[1]
    fmt = lambda xs: ' '.join(f'{x:.3f}' for x in xs)
    print(f'retriever_ceiling: {a.state}; {a.distractors} distractors ({a.fact_negatives:.0%} other facts), '
          f'{C} candidates per layer, R {R}, chance {R / C:.3f}; {"one-line facts; " if a.one_line else ""}positives: the fact\'s {dict(span="tokens", chunk="chunk", content="content")[a.positives]}')
    for kind in ('value', 'def'):
        got = [(x, y) for k, x, y in answers if k == kind]
        if got:
            print(f'  exact answers, {"values     " if kind == "value" else "definitions"} ({len(got)} test episodes): '
                  f'{sum(x for x, _ in got) / len(got):.3f} with its own retrieval, '
                  f'{sum(y for _, y in got) / len(got):.3f} with the fact\'s chunk forced into the R (the read\'s ceiling)')
    own = projectors(model)
    print(f'  the state\'s own projectors: recall@R per layer, test {fmt(recall(own, test, R))}; train {fmt(recall(own, train, R))}')
    start = fresh_projectors(model, a.width) if a.width else own
    if a.width:
        print(f'  fitting fresh projectors of width {a.width} (the state\'s: {model.c.selector_hidden_dim})')
    for loss in [x for x in a.losses.split(',') if x]:
        if loss not in ('bce', 'rank'):
            print(f'retriever_ceiling: unknown loss {loss!r} (bce or rank)', file=sys.stderr)
            return 2
        fit(start, train, loss, a.steps,
            report=lambda step, p, v, loss=loss: print(f'  fitted ({loss}), step {step}: loss {v:.4f}, test recall@R {fmt(recall(p, test, R))}', flush=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
