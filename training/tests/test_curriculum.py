"""The curriculum's bookkeeping: which stage a position is in, and when a stage ends early."""
import unittest

from training.mplus.data import Stage
from training.mplus.train import CURRICULA, PLATEAU_GAIN, mastered, plateaued, stage_at


class CurriculumTest(unittest.TestCase):
    def test_stage_at_positions(self):
        st = CURRICULA['small']
        self.assertEqual(stage_at(st, 0), (st[0], 0, 5000))
        self.assertEqual(stage_at(st, 4999), (st[0], 0, 5000))
        self.assertEqual(stage_at(st, 5000), (st[1], 5000, 10000))
        self.assertEqual(stage_at(st, 16999), (st[2], 10000, 17000))
        self.assertEqual(stage_at(st, 17000), (st[3], 17000, 40000))
        self.assertEqual(stage_at(st, 39999), (st[3], 17000, 40000))
        # past the end: the last stage (the loop stops there)
        self.assertEqual(stage_at(st, 40000)[0], st[3])

    def test_two_evaluations_in_a_row_end_a_stage(self):
        n, adv = mastered(0, 0.81, 0.8)
        self.assertEqual((n, adv), (1, False))  # one lucky draw is not enough
        n, adv = mastered(n, 0.79, 0.8)
        self.assertEqual((n, adv), (0, False))  # the count restarts below the bar
        n, adv = mastered(n, 0.80, 0.8)
        n, adv = mastered(n, 0.83, 0.8)
        self.assertEqual((n, adv), (2, True))

    def test_off_by_default(self):
        n = 0
        for _ in range(5):
            n, adv = mastered(n, 1.0, 0.0)
            self.assertFalse(adv)
        self.assertEqual(n, 0)

    def test_skipping_lands_on_the_next_stage(self):
        st = [Stage('a', 100, 8, (0, 0), False), Stage('b', 100, 8, (0, 0), False)]
        step, skipped = 30, 0
        _, _, end = stage_at(st, step + skipped)
        skipped += end - (step + skipped)
        self.assertEqual(stage_at(st, step + skipped)[0].name, 'b')
        self.assertEqual(step + skipped, 100)

    def test_a_plateau_ends_a_stage_after_k_evaluations_without_gain(self):
        # run3's stage 2: 0.406, 0.438, 0.438, 0.438, 0.391, … (patience 4)
        best, since, flat = plateaued(-1.0, 0, 0.406, 4)
        self.assertEqual((best, since, flat), (0.406, 0, False))  # the first evaluation sets the best
        best, since, flat = plateaued(best, since, 0.438, 4)
        self.assertEqual((best, since, flat), (0.438, 0, False))  # +0.032: a gain
        for acc, n in ((0.438, 1), (0.438 + PLATEAU_GAIN / 2, 2), (0.391, 3)):
            best, since, flat = plateaued(best, since, acc, 4)
            self.assertEqual((best, since, flat), (0.438, n, False))
        self.assertTrue(plateaued(best, since, 0.43, 4)[2])
        # a real gain restarts the count, and the best moves up
        self.assertEqual(plateaued(best, since, 0.47, 4), (0.47, 0, False))

    def test_no_plateau_rule_by_default(self):
        best, since = 0.5, 0
        for _ in range(10):
            best, since, flat = plateaued(best, since, 0.1, 0)
            self.assertFalse(flat)
        self.assertEqual(since, 10)


if __name__ == '__main__':
    unittest.main()
