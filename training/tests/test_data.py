"""A corrupt or partial training data folder is refused with a message naming it."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import random

from training.mplus.data import Corpus, DataError, sample_continuation

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


class DataFolderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='mplus-data-')
        cls.good = os.path.join(cls.tmp, 'good')
        # Real extraction (the product's chunker and grammars) of a small real source folder.
        subprocess.run(['node', os.path.join(ROOT, 'training', 'extract.js'), '--dir', os.path.join(ROOT, 'src'),
                        '--out', cls.good], check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy(self, name):
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.good, d)
        return d

    def test_good_folder_loads(self):
        c = Corpus(self.good)
        self.assertGreater(len(c.value_facts), 0)
        self.assertGreater(len(c.def_facts), 0)

    def test_continuation_is_what_follows_in_the_file(self):
        c = Corpus(self.good)
        b = sample_continuation(c, 6, 32, 24, random.Random(3))
        self.assertEqual(tuple(b.context.shape), (6, 32))
        self.assertEqual(tuple(b.tokens.shape), (6, 24))
        for i in range(6):
            ctx, cont = bytes(b.context[i].tolist()), bytes(b.tokens[i].tolist())
            # The injected bytes and the predicted bytes are adjacent in one real chunk.
            self.assertTrue(any(ctx + cont in f['bytes'][k] for f in c.files for k in range(len(f['bytes']))))
            self.assertEqual(b.target[i, :-1].tolist(), b.tokens[i, 1:].tolist())

    def test_missing_manifest(self):
        d = self.copy('nomanifest')
        os.unlink(os.path.join(d, 'manifest.json'))
        with self.assertRaisesRegex(DataError, 'nomanifest.*no manifest.json.*extract.js'):
            Corpus(d)

    def test_truncated_files(self):
        d = self.copy('truncated')
        p = os.path.join(d, 'files.jsonl')
        with open(p, 'rb') as f:
            lines = f.readlines()
        with open(p, 'wb') as f:
            f.writelines(lines[: len(lines) // 2])
        with self.assertRaisesRegex(DataError, 'truncated/files.jsonl.*does not match manifest'):
            Corpus(d)

    def test_corrupt_line(self):
        d = self.copy('corrupt')
        p = os.path.join(d, 'files.jsonl')
        with open(p, 'ab') as f:
            f.write(b'{"file": "x", "chunks": [\n')
        with self.assertRaisesRegex(DataError, 'corrupt/files.jsonl: line \\d+ is not valid JSON'):
            Corpus(d)

    def test_not_a_data_folder(self):
        d = os.path.join(self.tmp, 'empty')
        os.makedirs(d, exist_ok=True)
        with self.assertRaisesRegex(DataError, 'empty: no manifest.json'):
            Corpus(d)


if __name__ == '__main__':
    unittest.main()
