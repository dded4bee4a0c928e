"""Test cases that need a real data folder: training/extract.js (the product's chunker and grammars)
run once per class on this repository's src/, in a temporary folder removed afterwards."""
import os
import shutil
import tempfile
import unittest

from training.mplus.data import extract_dir

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


class SrcDataCase(unittest.TestCase):
    """cls.tmp: the class's temporary folder; cls.data: the data folder in it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='mplus-test-')
        cls.data = os.path.join(cls.tmp, 'data')
        extract_dir(os.path.join(ROOT, 'src'), cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
