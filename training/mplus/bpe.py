"""A byte-level BPE tokenizer for code, trained here on the corpus, written as `tokenizer.json`.

  /usr/bin/python3 -m training.mplus.bpe --data DATA [--vocab 4096]    # writes DATA/bpe.json

A data folder with `bpe.json` trains with it; export writes it as the checkpoint's tokenizer.json.

Why (BENCHMARKS.md "Training"): with one token per byte a constant's name is 5–15 tokens and a
512-token chunk holds 512 bytes of code. Code-trained merges make names 1–4 tokens (the lookup
the model must learn spans fewer positions) and carry ~3× the code per token, so the product
feeds a repository in ~3× fewer injections and Θ's rows cover ~3× more of it.

Pre-tokenization (one regex, ASCII classes only, so that Python's `re` and the product's
JavaScript `@huggingface/tokenizers` (`Split`, flags "gu") cut every text identically):
  ` ?[A-Z]+(?![a-z])`  an upper-case run (`MAX`, `HTTP` of `HTTPServer`), with its leading space
  ` ?[A-Z]?[a-z]+`     a word or camelCase part (`value`, `Server`)
  `[0-9]{1,3}`         up to three digits (numbers copy group by group)
  ` ?[^ \\t\\r\\nA-Za-z0-9]+`  a punctuation run (` =`, `();`), non-ASCII included
  `[ \\t\\r\\n]+(?![^ \\t\\r\\n])|[ \\t\\r\\n]+`  whitespace, leaving one space for the next word
Every character matches one alternative, so nothing falls between matches. Then GPT-2's byte →
printable map (ByteLevel with use_regex false) and the merges, lowest rank first.

Ids: 0..255 the bytes (as in the byte-level tokenizer), 256..259 the specials, then the merges in
rank order. Training is deterministic (ties: the lexically smallest pair).
"""
import argparse
import collections
import hashlib
import json
import os
import re
import sys
import time
from typing import Dict, List, Tuple

from .tokenizer import BOS, EOS, PAD, SPECIALS, bytes_to_unicode, special_tokens

PATTERN = r" ?[A-Z]+(?![a-z])| ?[A-Z]?[a-z]+|[0-9]{1,3}| ?[^ \t\r\nA-Za-z0-9]+|[ \t\r\n]+(?![^ \t\r\n])|[ \t\r\n]+"
_RE = re.compile(PATTERN)
# The product's tokenizer turns a special token's text (`<|end_of_text|>` in a source file) into
# that token before pre-tokenizing; so does encode, or the ids would differ from the product's.
_SPECIAL_RE = re.compile('(' + '|'.join(re.escape(x) for x in SPECIALS) + ')')
_SPECIAL_ID = {x: 256 + i for i, x in enumerate(SPECIALS)}
FIRST_MERGE = 256 + len(SPECIALS)


def pieces(text: str) -> List[bytes]:
    return [m.group(0).encode('utf-8') for m in _RE.finditer(text)]


def train(texts, vocab: int, log=None) -> List[Tuple[int, int]]:
    """Merges (pairs of ids) learned from texts until the vocabulary has `vocab` ids."""
    counts = collections.Counter()
    for t in texts:
        counts.update(pieces(t))
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pair_count: Dict[Tuple[int, int], int] = collections.Counter()
    where: Dict[Tuple[int, int], set] = collections.defaultdict(set)
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_count[p] += freq[i]
            where[p].add(i)
    merges = []
    t0 = time.time()
    while FIRST_MERGE + len(merges) < vocab and pair_count:
        best = max(pair_count.items(), key=lambda kv: (kv[1], (-kv[0][0], -kv[0][1])))
        pair, n = best
        if n < 2:
            break
        new = FIRST_MERGE + len(merges)
        merges.append(pair)
        for i in list(where[pair]):
            w, f = words[i], freq[i]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                if pair_count[p] <= 0:
                    del pair_count[p]
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                where[p].add(i)
        del where[pair]
        pair_count.pop(pair, None)
        if log and len(merges) % 500 == 0:
            log(f'bpe: {len(merges)} merges ({time.time() - t0:.0f} s)')
    return merges


class BpeTokenizer:
    kind = 'bpe'

    def __init__(self, merges: List[Tuple[int, int]]):
        self.merges = [tuple(m) for m in merges]
        self.rank = {m: FIRST_MERGE + r for r, m in enumerate(self.merges)}
        self.bytes_of: Dict[int, bytes] = {b: bytes([b]) for b in range(256)}
        for m, i in self.rank.items():
            self.bytes_of[i] = self.bytes_of[m[0]] + self.bytes_of[m[1]]
        for x, i in _SPECIAL_ID.items():  # a special's text, as the product decodes it
            self.bytes_of[i] = x.encode()
        self.vocab_size = FIRST_MERGE + len(self.merges)
        self.bos, self.eos, self.pad = BOS, EOS, PAD
        self._cache: Dict[bytes, List[int]] = {}

    def _word(self, w: bytes) -> List[int]:
        ids = self._cache.get(w)
        if ids is not None:
            return ids
        ids = list(w)
        while len(ids) > 1:
            best = min(((self.rank.get(p, 1 << 30), k) for k, p in enumerate(zip(ids, ids[1:]))))
            if best[0] == 1 << 30:
                break
            k = best[1]
            ids = ids[:k] + [best[0]] + ids[k + 2:]
        if len(self._cache) < 1 << 18:
            self._cache[w] = ids
        return ids

    def encode(self, text) -> List[int]:
        return self.encode_offsets(text)[0]

    def encode_offsets(self, text) -> Tuple[List[int], List[int]]:
        """ids and each id's starting byte offset in the UTF-8 text (str or bytes)."""
        s = text.decode('utf-8', errors='replace') if isinstance(text, bytes) else text
        ids, offs, at = [], [], 0
        for k, part in enumerate(_SPECIAL_RE.split(s)):
            if k % 2:
                ids.append(_SPECIAL_ID[part])
                offs.append(at)
                at += len(self.bytes_of[ids[-1]])
                continue
            for w in pieces(part):
                for i in self._word(w):
                    ids.append(i)
                    offs.append(at)
                    at += len(self.bytes_of[i])
        return ids, offs

    def decode(self, ids) -> str:
        return b''.join(self.bytes_of.get(i, b'') for i in ids).decode('utf-8', errors='replace')

    def tokenizer_json(self) -> dict:
        b2u = bytes_to_unicode()
        sym = lambda i: ''.join(b2u[b] for b in self.bytes_of[i])
        vocab = {sym(b): b for b in range(256)}
        added = special_tokens()
        for t in added:
            vocab[t['content']] = t['id']
        for m, i in self.rank.items():
            vocab[sym(i)] = i
        return {
            'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added, 'normalizer': None,
            'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
                {'type': 'Split', 'pattern': {'Regex': PATTERN}, 'behavior': 'Isolated', 'invert': False},
                {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
            'post_processor': None,
            'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False},
            'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                      'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                      'vocab': vocab, 'merges': [f'{sym(a)} {sym(b)}' for a, b in self.merges]},
        }

    def to_spec(self) -> dict:
        return {'kind': 'bpe', 'merges': [list(m) for m in self.merges]}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_spec()).encode()).hexdigest()[:16]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True, help='folder written by training/extract.js')
    ap.add_argument('--vocab', type=int, default=4096)
    a = ap.parse_args(argv)
    from .data import Corpus, DataError
    try:
        corpus = Corpus(a.data, tokenizer=False)
    except DataError as e:
        print(f'bpe: {e}', file=sys.stderr)
        return 1
    texts = (c for f in corpus.files for c in f['chunks'])
    merges = train(texts, a.vocab, log=lambda m: print(m, flush=True))
    t = BpeTokenizer(merges)
    path = os.path.join(a.data, 'bpe.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(t.to_spec(), f)
    os.replace(path + '.tmp', path)
    n_bytes = n_tok = 0
    for f in corpus.files[::20]:
        for c in f['chunks']:
            n_bytes += len(c.encode('utf-8'))
            n_tok += len(t.encode(c))
    print(f'bpe: wrote {path}: {t.vocab_size} ids, {n_bytes / max(1, n_tok):.2f} bytes per token on a 5% sample')
    return 0


if __name__ == '__main__':
    sys.exit(main())
