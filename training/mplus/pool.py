"""Θ at the product's scale as a recorded pool of rows, for fitting and measuring the retriever.

At N = 160k tokens a layer's Θ holds ~20,000 candidate rows (320 windows of 512 tokens, K = 64 rows
each); an episode that writes that much costs ~10 minutes on one core, so fitting on whole episodes
of that size is out of reach here. But a distractor's rows do not depend on the fact asked (the
product feeds facts, then code; a window's write reads only θ's newest K rows), so one recording
serves every problem: `record` writes `streams` memories of `windows` long-code windows each (with
feed, chunks of code as the product feeds it: `feed_stream`) and keeps, per layer, every row they
wrote. `augmented` appends them (`normed`: through the layer's
input norm, as the key projector reads them) to a problem's own candidates as extra negatives (tag BANKED, the
trainer's bank weighting: positives ½, the episode's negatives ¼, these ¼), so a problem recorded
among a few windows is ranked among a repository's worth.

Off-policy (the default), the problems' question rows are recorded once, under the state's own
retrieval among their few windows, with much of the fact still in θ: the read finds it there, and
the upper layers' question rows are those of a read that knows the answer. In the product at 160k
the fact left θ long ago, and the upper layers' question rows hold only what retrieval brought.
On-policy (`with_pool`) the question is asked of the memory the product would hold: a
repository's worth of pool rows in Θ, a θ of code, the episode's θ rows among the candidates; and
asked again after each fit (the episodes' rows do not depend on the projectors; their keys are
recomputed), so the upper layers fit the question rows they will meet.

Shapes: a recorded pool's rows are a list over layers of [P, d] rows as stored (P = streams × rows
written per stream, less the rows still in θ), `normed` the same through each layer's input norm
(what the key projector reads and `augmented` appends); a problem is retriever_ceiling.Problem.
"""
import random
from typing import List, NamedTuple, Optional

import torch

from .data import LONG_CODE_TOKENS
from .model import Memory
from .retriever_ceiling import Problem, problem_stage, recall, score, write
from .train import BANKED


class Recorded(NamedTuple):
    """What `record` keeps of its memories."""
    rows: List[torch.Tensor]      # per layer [P, d]: every row the streams wrote, as stored
    stm: List[torch.Tensor]       # per layer [N, d]: θ after one stream's last window (code only)
    stm_ages: List[torch.Tensor]  # per layer [N]


def record(model, corpus, windows: int, streams: int, seed: int, feed: bool = False) -> Recorded:
    """The rows `streams` memories of `windows` long-code windows wrote (tag > 0: not the stream's
    own one-line fact, not Θ's learned initial rows, which every problem already holds), and the
    θ a stream ends with (the one holding the fewest of its fact's rows). feed: the streams are
    code as the product feeds it (feed_stream), one memory at a time (its chunks differ in length)."""
    with torch.no_grad():
        if not feed:
            _, mem = write(model, corpus, problem_stage(True, windows, 0.0, long_code=True), streams,
                           random.Random(seed), torch.Generator().manual_seed(seed))
            mems = [mem]
        else:
            rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
            mems = []
            for _ in range(streams):
                mem = model.fresh_memory(1)
                for j, ids in enumerate(feed_stream(corpus, rng, windows)):
                    model.inject(mem, torch.tensor([ids]), tag=torch.tensor([j + 1]), gen=gen, use_ltm=True, grad=False)
                mems.append(mem)
    # Detached: Θ starts from the model's learned rows (a parameter), so the gathered rows can carry
    # a graph, and every trainer step that reads the pool (Stage.pool_share) would backpropagate
    # through it again (found by test_pool_share's resumed run).
    rows = [torch.cat([torch.cat([m.ltm[l], m.cache[l]], 1)[torch.cat([m.ltm_tag[l], m.cache_tag[l]], 1) > 0] for m in mems]).detach()
            for l in range(model.c.num_layers)]
    mem = mems[0]
    s = int(sum((t == 0).sum(1) for t in mem.stm_tag).argmin())
    return Recorded(rows, [x[s] for x in mem.stm], [x[s] for x in mem.stm_ages])


def feed_stream(corpus, rng: random.Random, windows: int) -> List[List[int]]:
    """`windows` injections of code as the product feeds a repository (Corpus.feed: each chunk
    with its header naming its declarations, the checkpoint's chunking): files drawn at random,
    each whole and in order."""
    out: List[List[int]] = []
    while len(out) < windows:
        for text in corpus.feed[rng.randrange(len(corpus.feed))]:
            ids = corpus.tok.encode(text)[:LONG_CODE_TOKENS]
            if ids:
                out.append(ids)
            if len(out) == windows:
                break
    return out


def normed(model, pool: List[torch.Tensor]) -> List[torch.Tensor]:
    """The pool's rows through each layer's input norm: the candidates `augmented` appends."""
    with torch.no_grad():
        return [layer.input_layernorm(rows) for layer, rows in zip(model.model.layers, pool)]


def with_pool(model, mem: Memory, pool: Recorded, sample: int = 0, gen=None, theta: bool = True, grad: bool = False) -> Memory:
    """mem (unchanged) as the product holds it when a repository's worth of code has been fed after
    it: the pool's rows (all, or `sample` drawn, the same for every episode) after Θ's own, tagged
    BANKED, age 0 (the newest: the product feeds the facts first); with theta, θ the pool's code
    and the episode's θ rows dropped to the cache with their ages (as `_update` drops them), so the
    read finds the fact only where retrieval does; every key recomputed with the model's current key
    projectors, as a memory written now would hold them. grad: the episode's rows keep their graph
    (the trainer's pooled steps train the writes through it) and the keys that of the key projector
    (the pool's rows as the retriever's negatives); otherwise all of it is computed without one."""
    B = mem.ltm[0].shape[0]
    wide = lambda b: b.unsqueeze(0).expand(B, *b.shape)
    cat = lambda a, b: torch.cat([a, wide(b)], dim=1)
    out = Memory([], [], [], [], [], [], [], [], [], mem.update_step, [], [], [])
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        for l, layer in enumerate(model.model.layers):
            extra = pool.rows[l]
            if sample and sample < extra.shape[0]:
                extra = extra[torch.randperm(extra.shape[0], generator=gen)[:sample]]
            P = extra.shape[0]
            out.ltm.append(cat(mem.ltm[l], extra))
            # Keys are per row: the pool's once, not once per episode.
            out.ltm_keys.append(torch.cat([layer.keys(mem.ltm[l]), wide(layer.keys(extra))], dim=1))
            out.ltm_ages.append(cat(mem.ltm_ages[l], torch.zeros(P, dtype=mem.ltm_ages[l].dtype)))
            out.ltm_rf.append(cat(mem.ltm_rf[l], torch.full((P,), float(model.c.initial_rf))))
            out.ltm_tag.append(cat(mem.ltm_tag[l], torch.full((P,), BANKED, dtype=mem.ltm_tag[l].dtype)))
            if theta:
                N = pool.stm[l].shape[0]
                out.cache.append(torch.cat([mem.cache[l], mem.stm[l]], 1))
                out.cache_ages.append(torch.cat([mem.cache_ages[l], mem.stm_ages[l]], 1))
                out.cache_tag.append(torch.cat([mem.cache_tag[l], mem.stm_tag[l]], 1))
                out.stm.append(wide(pool.stm[l]))
                out.stm_ages.append(wide(pool.stm_ages[l]))
                out.stm_tag.append(torch.full((B, N), BANKED, dtype=mem.stm_tag[l].dtype))
            else:
                out.cache.append(mem.cache[l]), out.cache_ages.append(mem.cache_ages[l]), out.cache_tag.append(mem.cache_tag[l])
                out.stm.append(mem.stm[l]), out.stm_ages.append(mem.stm_ages[l]), out.stm_tag.append(mem.stm_tag[l])
            out.cache_keys.append(layer.keys(out.cache[l]))
    return out


def recorded_as_exported(model, corpus, chunks: int, seed: int) -> Recorded:
    """record (one stream of `chunks` chunks of fed code) with Θ as the exported checkpoint keeps
    it (merges every 100 injections, recall frequency 100: README's export flags) and the model in
    eval mode, as the product writes; the model comes back as it was. Training's Θ (a merge every 2
    injections, recall frequency 10) keeps only ~20 injections' rows: not a repository's worth."""
    c = model.c
    kept, was = (c.update_ltm_frequency, c.initial_rf), model.training
    c.update_ltm_frequency, c.initial_rf = 100, 100
    model.eval()
    try:
        return record(model, corpus, chunks, 1, seed, feed=True)
    finally:
        c.update_ltm_frequency, c.initial_rf = kept
        model.train(was)


def hardest(problem: Problem, pool: List[torch.Tensor], proj, k: int) -> torch.Tensor:
    """Indices into pool[l]: the union over the batch's episodes of the k pool rows each episode's
    question scores highest under proj (layer l's (query_proj, key_proj)): the rows that outrank
    its fact and take its place in R. A random sample of a repository's rows rarely holds them
    (4,096 of ~80,000), and the BCE's gradient on a negative is its sigmoid, so nearly all of
    what moves the ranking comes from these few."""
    l, q_in, q_mask, _, _ = problem
    with torch.no_grad():
        # The pool's keys once, broadcast against every episode's question: [1, P, d] → scores [B, P].
        s = score(proj, q_in, q_mask, pool[l].unsqueeze(0))[2]
        return s.topk(min(k, s.shape[1]), dim=1).indices.flatten().unique()


class Hardest:
    """`hardest` for a fit's recurring problems, recomputed on a problem's every `every`-th visit:
    scoring a repository's ~80,000 rows per layer on each step costs several times the step, and
    the projectors move little in a few hundred steps (a fit draws one of ~32 batches a step, so a
    problem comes back every ~32 steps)."""

    def __init__(self, pool: List[torch.Tensor], k: int, every: int = 8):
        self.pool, self.k, self.every = pool, k, every
        self.seen = {}

    def __call__(self, problem: Problem, proj) -> torch.Tensor:
        visits, idx = self.seen.get(id(problem), (0, None))
        if visits % self.every == 0:
            idx = hardest(problem, self.pool, proj, self.k)
        self.seen[id(problem)] = (visits + 1, idx)
        return idx


def augmented(problem: Problem, pool: List[torch.Tensor], sample: int = 0, gen=None, also: Optional[torch.Tensor] = None) -> Problem:
    """The problem with the pool's rows (all, or `sample` drawn, and the rows at `also` besides:
    `hardest`'s) after its own, tagged BANKED, each row once; the same pool rows for every episode
    of the batch."""
    l, q_in, q_mask, rows, tags = problem
    extra = pool[l]
    if (sample and sample < extra.shape[0]) or also is not None:
        picked = torch.randperm(extra.shape[0], generator=gen)[:sample] if sample else torch.zeros(0, dtype=torch.long)
        if also is not None:
            picked = torch.cat([picked, also]).unique()
        extra = extra[picked]
    B = rows.shape[0]
    rows = torch.cat([rows, extra.unsqueeze(0).expand(B, -1, -1)], dim=1)
    tags = torch.cat([tags, torch.full((B, extra.shape[0]), BANKED, dtype=tags.dtype)], dim=1)
    return l, q_in, q_mask, rows, tags


def pool_recall(projs, sets: List[List[Problem]], pool: List[torch.Tensor], R: int) -> List[float]:
    """Per layer: mean share of the fact's rows in the top R among its own candidates and the whole
    pool (retriever_ceiling.recall at the pool's scale)."""
    return recall(projs, sets, R, augment=lambda p, _: augmented(p, pool))
