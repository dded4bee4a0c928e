"""Test cases that need a real data folder: training/extract.js (the product's chunker and grammars)
run once per class on this repository's src/, in a temporary folder removed afterwards."""
import json
import os
import shutil
import tempfile
import unittest

from training.mplus import tokenizer as tok
from training.mplus.data import extract_dir, feed_dir

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def smoke_run_flags(data: str) -> list:
    """train.py flags for a few quick, quiet, seeded smoke-preset steps on data (add --run and --max-steps)."""
    return ['--data', data, '--preset', 'smoke', '--seed', '5', '--batch', '4', '--lr', '3e-3', '--warmup', '10',
            '--log-every', '1', '--eval-every', '0', '--quiet', '--save-every', '1e9']


def with_feed(tmp: str, data: str) -> str:
    """data's feed.jsonl (training/feedchunks.js) from a checkpoint folder in tmp holding what that
    script reads of an export (the trainer's tokenizer, a chunking of 96–128 tokens); its path."""
    model_dir = os.path.join(tmp, 'checkpoint')
    os.makedirs(model_dir)
    tok.write(model_dir)
    with open(os.path.join(model_dir, 'chunking.json'), 'w') as f:
        json.dump({'unit': 'tokens', 'max': 128, 'min': 96}, f)
    feed_dir(os.path.join(ROOT, 'src'), data, model_dir)
    return model_dir


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
