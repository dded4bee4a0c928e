"""Code as the product feeds it (training/feedchunks.js, Corpus.feed, pool.record --feed) and a
product feed log replayed through the trainer (replay.py)."""
import contextlib
import io
import json
import os
import random
import shutil

import torch

from training.mplus import fit_retriever, pool, replay, train
from training.mplus.data import Corpus, DataError, one_line_text
from training.mplus.device import load_state
from training.mplus.model import frozen_as_exported
from training.tests.srcdata import SrcDataCase, smoke_run_flags, with_feed


class FeedTest(SrcDataCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_dir = with_feed(cls.tmp, cls.data)
        run = os.path.join(cls.tmp, 'run')
        assert train.main(smoke_run_flags(cls.data) + ['--run', run, '--max-steps', '2']) == 0
        cls.state = os.path.join(run, 'state.pt')

    def test_every_file_is_chunked_as_the_product_feeds_it(self):
        corpus = Corpus(self.data)
        self.assertEqual(len(corpus.feed), len(corpus.files))
        chunks = [c for f in corpus.feed for c in f]
        self.assertGreater(len(chunks), len(corpus.files))
        for f, cs in zip(corpus.files, corpus.feed):
            for c in cs:
                self.assertTrue(c.startswith(f'// file: {f["file"]}'), c[:80])
                if '<|' not in c:  # the product's tokenizer reads '<|eot_id|>' in code as one special token, the trainer's as bytes
                    self.assertLessEqual(len(corpus.tok.encode(c)), 128)  # the checkpoint's max, in its tokens
        # merged up to min: most of a long file's chunks are longer than training's small ones
        longest = max(corpus.feed, key=len)
        self.assertGreater(sum(len(corpus.tok.encode(c)) >= 96 for c in longest), len(longest) // 2)

    def test_a_missing_or_cut_feed_is_refused_by_name(self):
        other = os.path.join(self.tmp, 'copy')
        shutil.copytree(self.data, other)
        os.remove(os.path.join(other, 'feed.jsonl'))
        with self.assertRaises(DataError) as e:
            Corpus(other).feed
        self.assertIn('feed.jsonl: missing', str(e.exception))
        self.assertIn('feedchunks.js', str(e.exception))
        with open(os.path.join(self.data, 'feed.jsonl')) as f:
            lines = f.readlines()
        with open(os.path.join(other, 'feed.jsonl'), 'w') as f:
            f.writelines(lines[:-1])
        with self.assertRaises(DataError) as e:
            Corpus(other).feed
        self.assertIn('cut short or stale', str(e.exception))

    def test_a_feed_stream_is_whole_files_in_order_and_its_pool_records(self):
        corpus = Corpus(self.data)
        stream = pool.feed_stream(corpus, random.Random(4), 7)
        self.assertEqual(len(stream), 7)
        first = corpus.feed[random.Random(4).randrange(len(corpus.feed))]
        want = [corpus.tok.encode(c) for c in first][:7]
        self.assertEqual(stream[:len(want)], want)
        model = frozen_as_exported(load_state(self.state))
        rec = pool.record(model, corpus, 20, 2, 5, feed=True)
        K, N = model.c.num_tokens, model.c.stm_size
        self.assertEqual(rec.stm[0].shape, (N, model.c.hidden_size))
        # two memories of 20 injections: every row they wrote but those still in θ (N at most)
        self.assertGreaterEqual(rec.rows[0].shape[0], 2 * (20 * K - N))
        self.assertLessEqual(rec.rows[0].shape[0], 2 * 20 * K)

    def test_feed_needs_a_pool(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fit_retriever.main(['--data', self.data, '--state', self.state, '--out', os.path.join(self.tmp, 'x.pt'), '--feed'])
        self.assertEqual(rc, 2)
        self.assertIn('--feed', err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'x.pt')))

    def test_a_feed_log_replays_and_a_bad_one_is_refused(self):
        corpus = Corpus(self.data)
        log = os.path.join(self.tmp, 'feed.jsonl')
        facts = [('KALO_RENMI', '123456', 'src/kalo/kalo_renmi.ts'), ('MIDRI_WIL', '42', 'src/midri/midri_wil.ts')]
        with open(log, 'w') as f:
            for name, value, path in facts:
                f.write(json.dumps({'file': path, 'startLine': 1, 'endLine': 1, 'text': one_line_text(name, value, path)}) + '\n')
            for text in pool.feed_stream(corpus, random.Random(1), 12):
                f.write(json.dumps({'file': 'vendor/part-00000.js', 'text': corpus.tok.decode(text)}) + '\n')
        texts, found = replay.read_log(log)
        self.assertEqual((len(texts), found), (14, [(0, 'KALO_RENMI'), (1, 'MIDRI_WIL')]))
        model = frozen_as_exported(load_state(self.state))
        per = replay.recall_by_layer(model, corpus.tok, texts, found, 1)
        self.assertEqual(len(per), model.c.num_layers)
        for xs in per:
            self.assertTrue(all(0 <= x <= 1 for x in xs))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            self.assertEqual(replay.main(['--data', self.data, '--state', self.state, '--feed-log', log, '--drops', '1,2']), 0)
        self.assertRegex(printed.getvalue(), r'drops 2: fact rows retrieved by layer( ([0-9.]+|-))+')
        bad = os.path.join(self.tmp, 'bad.jsonl')
        for content, why in (('{"file": "a.js"}\n', 'line 1 is not a feed record'), (json.dumps({'file': 'a.js', 'text': 'x'}) + '\n', 'no fact')):
            with open(bad, 'w') as f:
                f.write(content)
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(replay.main(['--data', self.data, '--state', self.state, '--feed-log', bad]), 2)
            self.assertIn(why, err.getvalue())
            self.assertIn(bad, err.getvalue())


if __name__ == '__main__':
    import unittest
    unittest.main()
