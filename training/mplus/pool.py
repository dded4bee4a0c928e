"""Θ at the product's scale as a recorded pool of rows, for fitting and measuring the retriever.

At N = 160k tokens a layer's Θ holds ~20,000 candidate rows (320 windows of 512 tokens, K = 64 rows
each); an episode that writes that much costs ~10 minutes on one core, so fitting on whole episodes
of that size is out of reach here. But a distractor's rows do not depend on the fact asked (the
product feeds facts, then code; a window's write reads only θ's newest K rows), so one recording
serves every problem: `record` writes `streams` memories of `windows` long-code windows each and
keeps, per layer, every row they wrote (through the layer's input norm, as the key projector reads
it). `augmented` appends them to a problem's own candidates as extra negatives (tag BANKED, the
trainer's bank weighting: positives ½, the episode's negatives ¼, these ¼), so a problem recorded
among a few windows is ranked among a repository's worth.

The problems' question rows are recorded once, under the state's own retrieval among their few
windows; a fit changes what the lower layers retrieve, and so the upper layers' question rows, which
the recording does not follow (measure through the product: export, then `bench retention`).

Shapes: a pool is a list over layers of [P, d] (P = streams × rows written per stream, less the
rows still in θ); a problem is retriever_ceiling.Problem.
"""
import random
from typing import List

import torch

from .retriever_ceiling import Problem, collect, problem_stage, recall
from .train import BANKED


def record(model, corpus, windows: int, streams: int, seed: int) -> List[torch.Tensor]:
    """Per layer: the rows `streams` memories of `windows` long-code windows wrote (tag > 0: not the
    episode's fact, not Θ's learned initial rows, which every problem already holds)."""
    stage = problem_stage(True, windows, 0.0, long_code=True)
    sets = collect(model, corpus, stage, 1, streams, random.Random(seed), torch.Generator().manual_seed(seed))
    return [rows[tags > 0] for _, _, _, rows, tags in sorted(sets[0], key=lambda p: p[0])]


def augmented(problem: Problem, pool: List[torch.Tensor], sample: int = 0, gen=None) -> Problem:
    """The problem with the pool's rows (all, or `sample` drawn) after its own, tagged BANKED; the
    same pool rows for every episode of the batch."""
    l, q_in, q_mask, rows, tags = problem
    extra = pool[l]
    if sample and sample < extra.shape[0]:
        extra = extra[torch.randperm(extra.shape[0], generator=gen)[:sample]]
    B = rows.shape[0]
    rows = torch.cat([rows, extra.unsqueeze(0).expand(B, -1, -1)], dim=1)
    tags = torch.cat([tags, torch.full((B, extra.shape[0]), BANKED, dtype=tags.dtype)], dim=1)
    return l, q_in, q_mask, rows, tags


def pool_recall(projs, sets: List[List[Problem]], pool: List[torch.Tensor], R: int) -> List[float]:
    """Per layer: mean share of the fact's rows in the top R among its own candidates and the whole
    pool (retriever_ceiling.recall at the pool's scale)."""
    return recall(projs, sets, R, augment=lambda p: augmented(p, pool))
