"""Provenance follows content (Stage.content_tags): the rows a short chunk's write re-reads from θ
keep the tags of the rows they re-read, in θ, the cache and Θ alike; the forward is unchanged."""
import unittest

import torch

from training.mplus.config import preset
from training.mplus.data import Stage
from training.mplus.model import MPlus
from training.mplus.train import stage_identity


class ContentTagsTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.model = MPlus(preset('smoke', 300, 256, 257)).eval()
        self.K, self.N = self.model.c.num_tokens, self.model.c.stm_size

    def feed(self, follow: bool, lengths, seed=0):
        g = torch.Generator().manual_seed(seed)
        mem = self.model.fresh_memory(2)
        x = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for j, n in enumerate(lengths):
                chunk = torch.randint(0, 256, (2, n), generator=x)
                self.model.inject(mem, chunk, tag=torch.full((2,), j), gen=g, tags_follow_content=follow)
        return mem

    def test_a_short_chunk_keeps_the_tags_of_the_rows_it_re_read(self):
        K, n = self.K, 6
        mem = self.feed(True, [K + 4, n])
        for l in range(self.model.c.num_layers):
            self.assertEqual(mem.stm_tag[l][:, self.N - K:].tolist(), [[0] * (K - n) + [1] * n] * 2)
        # without the switch every new row is the chunk's (the paper's chunk labels)
        mem = self.feed(False, [K + 4, n])
        self.assertEqual(mem.stm_tag[0][:, self.N - K:].tolist(), [[1] * K] * 2)

    def test_chains_through_several_short_chunks_and_reaches_the_cache_and_theta(self):
        K = self.K
        lengths = [K, 5, 5, 5] + [K] * 8  # enough to drop rows into the cache and merge
        follow, plain = self.feed(True, lengths), self.feed(False, lengths)
        for l in range(self.model.c.num_layers):
            # the same memory either way: only the tags differ
            self.assertTrue(torch.equal(follow.stm[l], plain.stm[l]))
            self.assertTrue(torch.equal(follow.ltm[l], plain.ltm[l]))
        # chunk 0's content survives in the re-reads of chunks 1..3 (each keeps K − 5 re-read rows)
        everywhere = lambda mem, t: sum(int((torch.cat([mem.stm_tag[l], mem.ltm_tag[l], mem.cache_tag[l]], 1) == t).sum())
                                        for l in range(self.model.c.num_layers))
        self.assertGreater(everywhere(follow, 0), everywhere(plain, 0))
        self.assertLess(everywhere(follow, 2), everywhere(plain, 2))

    def test_the_field_enters_a_runs_identity_only_when_set(self):
        plain = Stage('s', 10, 8, (0, 0), True)
        on = Stage('s', 10, 8, (0, 0), True, content_tags=True)
        self.assertEqual(len(stage_identity(on)), len(stage_identity(plain)) + 1)
        self.assertNotIn(True, stage_identity(plain)[5:])


if __name__ == '__main__':
    unittest.main()
