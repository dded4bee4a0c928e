"""Extra negatives for the co-trained retriever: memory rows of earlier steps' distractor chunks.

In an episode Θ and the cache hold a few hundred candidate rows per layer; in the product at
N = 160k they hold ~49k, and the fact's rows must still be in the top R. The retriever's BCE sees
only an episode's own candidates, so it is never asked to rank the fact above thousands of rows.
The bank keeps, per layer, the last `capacity` rows (detached hidden states, as Θ stores them)
that earlier batches wrote for distractor chunks (other facts' chunks among them: hard negatives).
Each step their keys are recomputed with the current key projector and scored by the question's
queries as negatives only; they are never retrieved, so the answer path is unchanged.

Shapes: per layer [E, d], E ≤ capacity. Saved in state.pt so a resumed run is the same run.
"""
from typing import List, Optional

import torch


class RowBank:
    def __init__(self, layers: int, capacity: int, d: int, per_step: Optional[int] = None):
        self.capacity = capacity
        # A quarter of the bank is replaced each step: fresh rows, while one step's batch cannot
        # fill it with a single episode's chunks.
        self.per_step = per_step or max(1, capacity // 4)
        self.rows: List[torch.Tensor] = [torch.zeros(0, d) for _ in range(layers)]

    def __bool__(self):
        return self.capacity > 0

    def add(self, l: int, rows: torch.Tensor, gen: torch.Generator):
        """rows [n, d]: this step's distractor rows of layer l; a seeded sample of per_step joins."""
        rows = rows.detach().float().cpu()
        if rows.shape[0] > self.per_step:
            rows = rows[torch.randperm(rows.shape[0], generator=gen)[:self.per_step]]
        self.rows[l] = torch.cat([self.rows[l], rows])[-self.capacity:]

    def on(self, dev) -> List[torch.Tensor]:
        return [r.to(dev) for r in self.rows]

    def state(self):
        return [r.clone() for r in self.rows]

    def load(self, rows: List[torch.Tensor]):
        self.rows = [r.float().cpu()[-self.capacity:] for r in rows]
