"""stops: the bench's misses sorted as the bench sorts them, and an early stop's next piece."""
import contextlib
import io
import os
import unittest

from training.mplus import stops, train
from training.tests.srcdata import SrcDataCase, smoke_run_flags, with_feed


class KindTest(unittest.TestCase):
    def test_sorted_as_bench_retention_sorts_them(self):
        others = ['462929', '680705', '46']
        self.assertEqual(stops.kind('462929', '462929', others), 'hit')
        self.assertEqual(stops.kind('x = 462929;', '462929', others), 'hit')
        self.assertEqual(stops.kind('680705', '462929', others), 'other')
        self.assertEqual(stops.kind(' 4629\n', '462929', others[:2]), 'early')
        # another fact's value wins over a beginning, as in retentionReport.missKinds
        self.assertEqual(stops.kind('46', '4629', others), 'other')
        self.assertEqual(stops.kind('', '462929', others), 'wrong')
        self.assertEqual(stops.kind('4730', '462929', others), 'wrong')

    def test_next_piece_only_while_the_value_is_followed_piece_by_piece(self):
        self.assertEqual(stops.next_piece([5, 7], [5, 7, 9]), 9)
        self.assertEqual(stops.next_piece([], [5, 7, 9]), 5)
        self.assertIsNone(stops.next_piece([5, 8], [5, 7, 9]), 'left the value')
        self.assertIsNone(stops.next_piece([5, 7, 9], [5, 7, 9]), 'nothing after the whole value')


class StopsRunTest(SrcDataCase):
    def test_every_question_is_counted_once_per_memory(self):
        with_feed(self.tmp, self.data)
        run = os.path.join(self.tmp, 'run')
        self.assertEqual(train.main(smoke_run_flags(self.data) + ['--run', run, '--max-steps', '1']), 0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = stops.main(['--data', self.data, '--state', os.path.join(run, 'state.pt'), '--rounds', '2', '--pool', '6'])
        self.assertEqual(rc, 0)
        totals = [line for line in out.getvalue().splitlines() if line.startswith('  N = ') and 'hit ' in line]
        self.assertEqual(len(totals), 2, out.getvalue())
        for line in totals:
            counts = [int(x.split()[-1]) for x in line.split(';')[0].split(':')[1].split(',')]
            self.assertEqual(sum(counts), 8, line)  # 2 rounds × 4 facts, each sorted once


if __name__ == '__main__':
    unittest.main()
