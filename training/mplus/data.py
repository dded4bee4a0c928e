"""Training episodes from the extracted corpus (training/extract.js), names and values randomized.

An episode: inject the chunk that holds a fact, then `distractors` chunks of other real code
(with `fact_anywhere`, the fact's chunk goes at a random place among them, and with
`fact_negatives` a share of the distractors are other facts' chunks, renamed alike), then ask
`What is the value of NAME?` (→ the literal) or `Where is NAME defined?` (→ the file's
repository-relative path, which the chunk's header line names). Before injection the fact's
name (every whole-word occurrence in the chunk), its value and the header's path are replaced by
freshly drawn ones, so the answer is only in memory, never in the weights.

Batches: every episode in a batch injects contexts of the same length at each step (the batched
forward needs one shape); a context longer than that is cropped to a window that keeps its
header line and the fact. Questions + answers are right-padded; the loss covers answer tokens.
"""
import dataclasses
import hashlib
import json
import os
import random
import re
import subprocess
from dataclasses import dataclass
from typing import List, Optional

import torch

from . import tokenizer as tok

FORMAT = 'mplus-training-corpus/1'


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def extract_dir(src: str, out: str):
    """A data folder from one source folder: training/extract.js (the product's chunker and
    grammars) with --dir; the smoke run and the tests use this repository's src/."""
    subprocess.run(['node', os.path.join(REPO, 'training', 'extract.js'), '--dir', src, '--out', out],
                   check=True, stdout=subprocess.DEVNULL)


def feed_dir(src: str, data: str, model: str):
    """feed.jsonl for a data folder extract_dir made from src (training/feedchunks.js --dir), chunked
    with the checkpoint folder model's tokenizer and chunking.json."""
    subprocess.run(['node', os.path.join(REPO, 'training', 'feedchunks.js'), '--dir', src, '--data', data, '--model', model],
                   check=True, stdout=subprocess.DEVNULL)


class DataError(Exception):
    pass


def question_text(kind: str, name: str) -> str:
    return f'What is the value of {name}?' if kind == 'value' else f'Where is {name} defined?'


# The checkpoint's own question template (question_template.txt in the checkpoint folder): the
# sidecar formats every question with it, so training and product prompts are the same bytes.
TEMPLATE = 'Q: {question}\nA: '


def prompt(question: str) -> str:
    return TEMPLATE.replace('{question}', question)


@dataclass
class Fact:
    file: int
    chunk: int
    kind: str
    name: str
    name_at: int
    value: str = None
    value_at: int = -1


class Corpus:
    """files.jsonl + manifest.json, validated: a partial or corrupt folder is refused by name."""

    def __init__(self, folder: str, tokenizer: bool = True):
        self.folder = folder
        fix = f'rebuild it: node training/extract.js --corpus /work/scratch/corpus --out {folder}'
        mpath = os.path.join(folder, 'manifest.json')
        fpath = os.path.join(folder, 'files.jsonl')
        if not os.path.isfile(mpath):
            raise DataError(f'{folder}: no manifest.json (not a training data folder, or extraction did not finish); {fix}')
        try:
            with open(mpath) as f:
                man = json.load(f)
        except ValueError as e:
            raise DataError(f'{mpath}: not valid JSON ({e}); {fix}')
        if man.get('format') != FORMAT:
            raise DataError(f'{mpath}: format {man.get("format")!r}, expected {FORMAT!r}; {fix}')
        if not os.path.isfile(fpath):
            raise DataError(f'{folder}: files.jsonl is missing; {fix}')
        h = hashlib.sha256()
        self.files: List[dict] = []
        with open(fpath, 'rb') as f:
            for i, line in enumerate(f):
                h.update(line)
                try:
                    self.files.append(json.loads(line))
                except ValueError as e:
                    raise DataError(f'{fpath}: line {i + 1} is not valid JSON ({e}); {fix}')
        if h.hexdigest() != man.get('sha256') or len(self.files) != man.get('files'):
            raise DataError(f'{fpath}: does not match manifest.json ({len(self.files)} files read, manifest says '
                            f'{man.get("files")}; checksum {"differs" if h.hexdigest() != man.get("sha256") else "matches"}): '
                            f'truncated or edited; {fix}')
        self.manifest = man
        self.facts: List[Fact] = []
        self.chunks = []  # (file, chunk) of every chunk, for distractors
        for fi, f in enumerate(self.files):
            f['bytes'] = [c.encode('utf-8') for c in f['chunks']]
            for ci in range(len(f['chunks'])):
                self.chunks.append((fi, ci))
            for x in f['facts']:
                self.facts.append(Fact(fi, x['chunk'], x['kind'], x['name'], x['nameAt'], x.get('value'), x.get('valueAt', -1)))
        # The tokenizer: bpe.json beside the data (training.mplus.bpe), else byte-level.
        self.tok = tok.ByteTokenizer()
        bpath = os.path.join(folder, 'bpe.json')
        if tokenizer and os.path.isfile(bpath):
            try:
                with open(bpath) as f:
                    self.tok = tok.from_spec(json.load(f))
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f'{bpath}: not a tokenizer spec ({e}); rebuild it: python3 -m training.mplus.bpe --data {folder}')
        self.value_facts = [x for x in self.facts if x.kind == 'value']
        self.def_facts = [x for x in self.facts if x.kind == 'def']
        if not self.value_facts or not self.def_facts:
            raise DataError(f'{folder}: no facts of one kind (values {len(self.value_facts)}, definitions {len(self.def_facts)}); {fix}')
        self._words: Optional[List[str]] = None
        self._feed: Optional[List[List[str]]] = None

    @property
    def feed(self) -> List[List[str]]:
        """Per file, its chunks as the product feeds them (feed.jsonl beside the data, written by
        training/feedchunks.js: the checkpoint's chunking, a header naming every declaration of a
        chunk), for the retriever's pool. Read once, on first use; refused by name when missing or
        cut short."""
        if self._feed is None:
            fpath = os.path.join(self.folder, 'feed.jsonl')
            fix = (f'write it: node training/feedchunks.js --corpus /work/scratch/corpus --data {self.folder} '
                   f'--model EXPORTED (a checkpoint written by training.mplus.export)')
            if not os.path.isfile(fpath):
                raise DataError(f'{fpath}: missing; {fix}')
            out = []
            with open(fpath) as f:
                for i, line in enumerate(f):
                    try:
                        out.append(json.loads(line)['chunks'])
                    except (ValueError, KeyError, TypeError) as e:
                        raise DataError(f'{fpath}: line {i + 1} is not a feed record ({e}); {fix}')
            if len(out) != len(self.files) or not any(out):
                raise DataError(f'{fpath}: {len(out)} files with chunks, files.jsonl has {len(self.files)}: cut short or stale; {fix}')
            self._feed = out
        return self._feed

    @property
    def words(self) -> List[str]:
        """The corpus's words (Stage.real_words): identifiers split at '_' and case changes, and
        the words of comments and strings, lowercased, 2–12 letters, seen at least WORD_MIN_COUNT
        times; sorted, so a seed draws the same ones. Read once, on first use."""
        if self._words is None:
            counts = {}
            for f in self.files:
                for c in f['chunks']:
                    for w in _WORD.findall(c):
                        w = w.lower()
                        counts[w] = counts.get(w, 0) + 1
            self._words = sorted(w for w, n in counts.items() if n >= WORD_MIN_COUNT and 2 <= len(w) <= 12)
        return self._words


# ---- randomization ----
_SYL = ['ka', 'lo', 'mi', 'ren', 'tor', 'vex', 'sul', 'pha', 'dri', 'nox', 'bel', 'qua', 'zin', 'gor', 'fen', 'wil',
        'ast', 'rum', 'cel', 'dor', 'ix', 'yan', 'pel', 'sto', 'mar', 'hel', 'jun', 'tek', 'bra', 'vol', 'ne', 'sa']
_WORDS = ['core', 'util', 'lib', 'src', 'render', 'math', 'net', 'io', 'view', 'data', 'model', 'parse', 'shader',
          'node', 'graph', 'time', 'text', 'cache', 'store', 'api', 'test', 'tools', 'common', 'internal']


# Stage.real_words: a word of code or prose ("format", "Locale", "HTTP"): an identifier splits
# into them at '_' and at case changes.
_WORD = re.compile(r'[A-Z]?[a-z]+|[A-Z]+(?![a-z])')
WORD_MIN_COUNT = 5


def _word(rng: random.Random, words: Optional[List[str]]) -> str:
    """One word of a drawn name or string: 1–3 syllables, or one of the corpus's words."""
    return rng.choice(words) if words else ''.join(rng.choice(_SYL) for _ in range(rng.randint(1, 3)))


def random_name(rng: random.Random, like: str, words: Optional[List[str]] = None) -> str:
    """A fresh name written as `like` is (UPPER_SNAKE, PascalCase, camelCase), of 1–3 words:
    made of syllables, or of the corpus's words when given (Stage.real_words)."""
    parts = [_word(rng, words) for _ in range(rng.randint(1, 3))]
    if like.isupper() or ('_' in like and like.upper() == like):
        return '_'.join(w.upper() for w in parts)
    if like[:1].isupper():
        return ''.join(w.capitalize() for w in parts)
    return parts[0] + ''.join(w.capitalize() for w in parts[1:])


def random_value(rng: random.Random, like: str, words: Optional[List[str]] = None) -> str:
    """A fresh literal of `like`'s kind. A string is 1–3 syllable pairs; with the corpus's words
    (Stage.real_words), 1–4 of them, each lower, Capitalized or UPPER, joined as real strings are
    ('mplus.chatView', 'M+ Repository Memory', 'label.txt')."""
    if like in ('true', 'false'):
        return rng.choice(['true', 'false'])
    if like[:1] in '\'"':
        q = like[0]
        if words:
            cased = [rng.choice([str.lower, str.lower, str.capitalize, str.upper])(rng.choice(words)) for _ in range(rng.randint(1, 4))]
            return q + rng.choice(['', '-', '_', '.', '.', ' ', '/', ':']).join(cased) + q
        return q + rng.choice(['', '-', '_', '.']).join(rng.choice(_SYL) + rng.choice(_SYL) for _ in range(rng.randint(1, 3))) + q
    if like.startswith('0x'):
        return hex(rng.randrange(1, 1 << rng.choice([8, 16, 24])))
    r = rng.random()
    if r < 0.6:
        return str(rng.randrange(0, 10 ** rng.randint(1, 6)))
    return f'{rng.randrange(0, 1000)}.{rng.randrange(0, 10 ** rng.randint(1, 4))}'


def random_path(rng: random.Random, ext: str, words: Optional[List[str]] = None) -> str:
    """A fresh repository-relative path: 1–3 folders, a base of syllables (or of 1–2 of the
    corpus's words, camelCase, with Stage.real_words) and ext."""
    parts = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    if words:
        base = random_name(rng, 'aB', words) if rng.random() < 0.5 else rng.choice(words)
    else:
        base = _word(rng, None)
    return '/'.join(parts + [base + ext])


_HEADER = re.compile(rb'^(// file: )([^\n]*?)( \xe2\x80\x94 [^\n]*)?\n')


def file_tail(chunks: List[bytes], after: int, size: int) -> bytes:
    """The code of the chunks after chunk `after` of one file, their header lines dropped, as the
    product's chunker merges neighbours under the first one's header: about `size` bytes, b''
    when size is 0 or the file ends there."""
    parts, got = [], 0
    for c in chunks[after + 1:]:
        if got >= size:
            break
        body = c[c.find(b'\n') + 1:] if c.startswith(b'// file: ') else c
        parts.append(body)
        got += len(body) + 1
    return b''.join(b'\n' + p for p in parts)


def randomized(corpus: Corpus, fact: Fact, rng: random.Random, tail: int = 0, words: Optional[List[str]] = None):
    """(chunk bytes with fresh name/value/path, fact span [lo, hi) in them, answer text). tail:
    about this many bytes of the file's code after the fact's chunk follow it (file_tail),
    renamed alike (Stage.long_facts). words: drawn from the corpus's words (Stage.real_words)."""
    f = corpus.files[fact.file]
    text = f['bytes'][fact.chunk] + file_tail(f['bytes'], fact.chunk, tail)
    ext = os.path.splitext(f['file'])[1]
    new_path = random_path(rng, ext, words).encode()
    new_name = random_name(rng, fact.name, words).encode()
    old_name = fact.name.encode()
    # Mark the fact's own bytes first (offsets are into the original text, so the later offset
    # first), then rename everywhere; the marks give the fact's span after the header's path and
    # earlier names changed length (nearest-to-the-old-offset picked another occurrence ~1% of times).
    lo = fact.name_at
    marks = [(lo, lo + len(old_name), b'\x00N\x00')]
    if fact.kind == 'value':
        new_value = random_value(rng, fact.value, words).encode()
        marks.append((fact.value_at, fact.value_at + len(fact.value.encode()), b'\x00V\x00'))
    for a, b, mark in sorted(marks, reverse=True):
        text = text[:a] + mark + text[b:]
    text = re.sub(rb'(?<![A-Za-z0-9_$])' + re.escape(old_name) + rb'(?![A-Za-z0-9_$])', new_name, text)
    m = _HEADER.match(text)
    if m:
        text = m.group(1) + new_path + (m.group(3) or b'') + b'\n' + text[m.end():]
    at = text.find(b'\x00N\x00')
    text = text.replace(b'\x00N\x00', new_name)
    end = at + len(new_name)
    if fact.kind == 'value':
        v = text.find(b'\x00V\x00')
        text = text.replace(b'\x00V\x00', new_value)
        if v < at:  # a value written before its name moved the name
            at, end = at + len(new_value) - 3, end + len(new_value) - 3
        at, end = min(at, v), max(end, v + len(new_value))
        answer = new_value.decode()
    else:
        answer = new_path.decode()
    header_len = text.find(b'\n') + 1
    return text, (at, end), header_len, new_name.decode(), answer


def crop(ids: List[int], n: int, span, head_len: int, rng: random.Random, keep_header: bool,
         short_head: Optional[List[int]] = None):
    """A window of exactly n tokens (or all of them when fewer): the header line's tokens (when it
    fits and keep_header, or it is short), then code around the fact's tokens span [lo, hi).
    short_head (Stage.fact_fits; [] for a value): the header kept at least, when keep_header and
    the whole line does not fit beside the span (a definition's "// file: PATH" without its scope;
    the path is its answer); the span then always fits too.
    Returns (window, the span's [lo, hi) in the window, clipped to it)."""
    if len(ids) <= n:
        return ids, (span[0], span[1])
    room = 8 if short_head is None else fact_room(span)
    fits = head_len <= n - room
    if (head_len < n // 2 and (short_head is None or fits)) or (keep_header and fits):
        head = ids[:head_len]
    elif keep_header and short_head and len(short_head) <= n - room:
        head = short_head
    else:
        head = []
    skip = head_len if head else 0  # the body starts after the header line it replaces
    body = ids[skip:]
    room = n - len(head)
    lo, hi = max(0, span[0] - skip), max(0, span[1] - skip)
    lo_min = max(0, hi - room)
    lo_max = min(lo, len(body) - room)
    start = rng.randint(lo_min, max(lo_min, lo_max))
    at = lambda i: min(n, max(len(head), len(head) + i - start))  # body index → window index
    return head + body[start:start + room], (at(lo), at(hi))


def token_span(offs: List[int], lo: int, hi: int):
    """Token indices [a, b) covering bytes [lo, hi), from each token's starting byte offset."""
    a = max([i for i, o in enumerate(offs) if o <= lo], default=0)
    b = next((i for i, o in enumerate(offs) if o >= hi), len(offs))
    return a, max(b, a + 1)


def padded(ids: List[int], n: int, pad: int) -> List[int]:
    return ids + [pad] * (n - len(ids))


@dataclass
class Stage:
    name: str
    steps: int
    max_ctx: int          # longest injected context (bytes = tokens)
    distractors: tuple    # (min, max) unrelated chunks injected after the fact
    use_ltm: bool         # cache/Θ/retrieval on (stage 3)
    continuation: int = 0  # extra episodes per step: inject code, predict what follows (dense read signal)
    # Where the fact's chunk goes. First (the default) teaches a shortcut: run3 at step 2,670,
    # fed four one-constant files, answered every question with the first file's value. At a
    # random place among the distractors, the name must pick the chunk, not its age.
    fact_anywhere: bool = False
    # Share of distractors that are other facts' chunks (names and values drawn fresh too): the
    # question's name, not the look of "NAME = value", must pick the answer, as in a repository.
    fact_negatives: float = 0.0
    # Rows per layer of earlier steps' distractor memory scored as the retriever's extra negatives
    # (bank.py): Θ at N = 160k holds ~49k candidates, an episode a few hundred.
    bank_negatives: int = 0
    # The retriever's positives: the rows written at the fact's own tokens, not its whole chunk
    # (train.fact_row_tags: measured, and not used by the small curriculum).
    span_positives: bool = False
    # Provenance follows content: a write of n < K tokens keeps K − n rows that re-read θ's newest
    # rows (the previous chunk's) and never saw this chunk; those rows carry the tag of the row they
    # re-read, not this chunk's (model.MPlus.inject, tags_follow_content).
    content_tags: bool = False
    # Up to this many of the other facts an episode's memory holds (its fact_negatives) are asked
    # too, from the same memory. With one question per memory the read can lean on where a fact
    # sits (run18, fed two one-line facts, answered the older 10/16 and the newer 4/16); asking
    # several names of one memory rewards only the name. Not free: a read of θ's 512 rows per
    # question; at 2, a stage-3b step costs ~1.6× (stepcost, 1 thread: 5.3 against 3.3 s).
    ask_others: int = 0
    # Every fact's window holds what its question needs: its whole name, and its answer (the
    # value, or a definition's path in its header line). Windows are as long as the shortest chunk
    # of the injection's 32 (often 16–40 tokens) and a header line runs ~25 tokens (p90 35), so
    # the whole line often did not fit and was cropped off: at 3b without this, 80% of the
    # first-asked definitions and 36% of the other definitions asked (ask_others) had their path
    # in memory, and 96% of the other values asked their whole name. With it, a header line that
    # does not fit is shortened to "// file: PATH" (≤ 21 tokens), and the window grows to hold
    # that and the fact's span (at least 8 tokens): 100% of every kind (BENCHMARKS.md).
    fact_fits: bool = False
    # Share of steps whose facts (the one asked first and the other facts among the distractors)
    # are one-line files, "export const NAME = VALUE;", as `mplus bench retention` and a
    # repository's small constant files feed them; names, values and paths drawn fresh. The
    # corpus's facts sit in longer chunks, and on them the read improved while the product's
    # one-line facts stayed at 2/12 (run23; BENCHMARKS.md). Such a chunk is never cropped.
    one_line_facts: float = 0.0
    # Share of steps whose episodes hold one-line facts only: the fact asked first and
    # DRILL_OTHERS other one-line facts, no plain code, as `bench retention` feeds them at N = 0.
    # Among code (one_line_facts) the read still picked four such facts by their place in the
    # feed (run24: the oldest 12/32, each other 5/32); here only the name tells them apart, and a
    # step costs a fraction of one among 6–16 code chunks.
    one_line_drill: float = 0.0
    # Share of the other steps whose plain code is written as the product writes a repository: each
    # code injection a window of up to LONG_CODE_TOKENS tokens of one file (consecutive chunks, one
    # header), where other steps' windows are the batch's shortest chunk (mostly 16–64 tokens, never
    # compressed: K = 64 rows hold them). Fed 512-token chunks, every state found 77–82% of the
    # facts' rows at 4k yet answered half as often as at N = 0 (BENCHMARKS.md, seventeenth session):
    # the read had never met rows written from long code. Such steps draw LONG_CODE_DISTRACTORS, and
    # which injections are other facts is drawn per injection, not per episode, so a code injection
    # is long in every episode (one window length per injection).
    long_code: float = 0.0
    # In those steps, a corpus fact (not a one-line file) is written with the code that follows it
    # in its file, up to LONG_CODE_TOKENS, as a repository's constants and definitions sit in the
    # product's 512-token chunks (`mplus lookup --all` on this repository: 0/42). Its window is
    # trained through, so such a step's backward grows with it.
    long_facts: bool = False
    # Share of facts whose fresh names, string values and paths are made of the corpus's words
    # (Corpus.words) instead of the 32 syllables: a repository's are ('PARTICIPANT_ID' =
    # 'mplus.participant'), and on them the carry answered every question with a syllable string
    # ('mar.lo.mar.celyren'; `mplus lookup --all` 1/32 on seven folders of this repository) —
    # it had learned to write syllables, not to copy what its memory holds. With it one-line
    # facts hold strings half the time (a repository's constants mostly are).
    real_words: float = 0.0
    # The distractor count (min, max) of long_code steps when set; empty: LONG_CODE_DISTRACTORS.
    # For the diagnostics and the retriever fit at the product's scale (fit_retriever --long-code:
    # 160k tokens of a repository are ~320 such windows), not the curriculum, whose steps would cost
    # ~1 s per window.
    long_code_distractors: tuple = ()
    # Every injection's write trained through, not only the fact's (episode_loss). With ask_others
    # the other facts are asked too, yet their writes, and the later writes that re-read them (a
    # short chunk's first K − n rows re-read θ's newest rows), ran forward only: nothing taught a
    # write to keep the facts before it apart. Costs a backward through every chunk: for drill
    # steps (one-line facts only), a few short ones.
    write_grad_all: bool = False
    # write_grad_all in drill steps only (one_line_drill): there it cut the bench's binding misses
    # at N = 0 from 13 to 5 of 72 (runG against runC, twenty-fifth session), at ~2x a drill step's
    # cost; the other steps' 4–10 windows of up to 512 tokens would each need a backward too.
    write_grad_drill: bool = False
    # Share of drill steps asked after a repository's worth of code (pool.with_pool: a recorded
    # pool of POOL_CHUNKS chunks of fed code in Θ, θ that code's), as `bench retention` asks at
    # N = 160k: the fact's rows reach the read only through retrieval, among ~27k rows a layer.
    # Training's own episodes never get there (θ keeps a quarter of a fact's rows after 10 windows
    # of 512 tokens); the read-only fit on such memories did not help (fit_read), the write has
    # to learn to make rows that are read well alone. Trained end to end: the writes, the
    # retriever's BCE with the pool's rows as its banked negatives, the read (train.py).
    # Measured, not in the curriculum: half the drill steps pooled lost at every N (runP against
    # runH, 921 and 806 steps: 160k 35 against 45 of 72 held out; twenty-sixth session).
    pool_share: float = 0.0


# One-line facts besides the first in a drill step (Stage.one_line_drill).
DRILL_OTHERS = (1, 5)
# Stage.long_code: the product's chunk budget (src/model/chunking.ts MAX_CHUNK_TOKENS), and the
# distractors of such a step (fewer than 3b's 6–16: a step of them costs ~1.6x, stepcost 6.0 s
# against 3.7 s; distractors are not trained through).
LONG_CODE_TOKENS = 512
LONG_CODE_DISTRACTORS = (4, 10)
# Bytes of code read to fill a window of n tokens: code runs ~3-4 bytes a token.
CODE_BYTES_PER_TOKEN = 5


def code_window(corpus: 'Corpus', rng: random.Random, n: int, tries: int = 4) -> List[int]:
    """Up to n tokens of one file as the product's chunker merges it: a random chunk's header line,
    then its code and the code of the chunks after it (their own header lines dropped). The longest
    of `tries` draws, so short files rarely shorten the whole injection."""
    best: List[int] = []
    for _ in range(tries):
        fi, ci = rng.choice(corpus.chunks)
        chunks = corpus.files[fi]['bytes']
        text = chunks[ci] + file_tail(chunks, ci, CODE_BYTES_PER_TOKEN * n - len(chunks[ci]))
        ids = corpus.tok.encode(text)[:n]
        if len(ids) > len(best):
            best = ids
        if len(best) >= n:
            break
    return best


@dataclass
class Batch:
    contexts: List[torch.Tensor]   # per injection [B, n_j]
    tags: List[torch.Tensor]       # per injection [B] (0 = the fact's chunk)
    fact_at: int                   # which injection is the fact's (its write is trained through)
    names: List[List[str]]         # per injection, per episode: the renamed fact name that chunk holds ('' = plain code)
    tokens: torch.Tensor           # [B, m] prompt + answer + eos, right-padded
    q_len: torch.Tensor            # [B] prompt rows
    target: torch.Tensor           # [B, m] next-token targets (−100 = no loss)
    answers: List[str]
    prompts: List[List[int]]
    # [B, 2]: the fact's token span [lo, hi) in its context (the name, through the value for a
    # value fact): the rows written at these tokens are the retriever's positives (train.py).
    span: Optional[torch.Tensor] = None
    kinds: Optional[List[str]] = None  # per question: the fact's kind ('value' or 'def')
    # Under a stage's ask_others the question rows (tokens, q_len, target, answers, prompts, kinds)
    # are B' ≥ B: the B episodes' own facts first, then the other facts asked, each with the
    # episode whose memory it reads [B'] and the tag of the injection that holds its fact [B']
    # (0 for the first B). None: one question per episode.
    q_episode: Optional[torch.Tensor] = None
    q_tag: Optional[torch.Tensor] = None
    drill: bool = False  # a drill step's batch (Stage.one_line_drill): one-line facts only
    pooled: bool = False  # asked after the pool (Stage.pool_share)

    def to(self, dev) -> 'Batch':
        opt = lambda x: None if x is None else x.to(dev)
        return Batch([c.to(dev) for c in self.contexts], [t.to(dev) for t in self.tags], self.fact_at, self.names, self.tokens.to(dev),
                     self.q_len.to(dev), self.target.to(dev), self.answers, self.prompts,
                     opt(self.span), self.kinds, opt(self.q_episode), opt(self.q_tag), self.drill, self.pooled)


def one_line_text(name: str, value: str, path: str) -> str:
    """A one-line constant file's chunk, byte for byte as the product's chunker writes it (header
    line, then the line; extract.js on `export const KALO_RENMI = 123456;\n` in src/kalo/kalo_renmi.ts)."""
    return f'// file: {path} \u2014 const {name}\nexport const {name} = {value};'


def one_line_fact(rng: random.Random, words: Optional[List[str]] = None):
    """A fresh one-line constant file, as randomized() returns a renamed fact: (fact, chunk bytes,
    fact span [lo, hi) in them, header bytes, name, answer). A value, or its definition (the path)
    half the time; names UPPER_SNAKE as the bench's, or camelCase; values mostly numbers (the
    bench's are integers below 1e6; with the corpus's words, strings half the time, as a
    repository's constants are)."""
    kind = 'value' if rng.random() < 0.5 else 'def'
    name = random_name(rng, rng.choice(['A_B', 'A_B', 'aB']), words)
    value = random_value(rng, rng.choice(['0', "'s'"] if words else ['0', '0', '0', "'s'"]), words)
    path = random_path(rng, rng.choice(['.ts', '.js']), words)
    text = one_line_text(name, value, path).encode()
    at = text.find(b'export const ') + len('export const ')
    fact = Fact(-1, -1, kind, name, at, value, text.rfind(value.encode()))  # the value is the last thing before ';'
    end = fact.value_at + len(value.encode()) if kind == 'value' else at + len(name.encode())
    return fact, text, (at, end), text.find(b'\n') + 1, name, value if kind == 'value' else path


def _fact_pick(corpus: Corpus, rng: random.Random, one_line: bool = False, tail: int = 0, real_words: float = 0.0):
    """A fact drawn half from values, half from definitions, renamed (a fresh one-line file under
    one_line, Stage.one_line_facts; followed by ~tail bytes of its file's code otherwise), with the
    corpus's words for a real_words share of them (drawn only when real_words is set):
    (fact, ids, token span, header tokens, name, answer)."""
    words = corpus.words if real_words > 0 and rng.random() < real_words else None
    if one_line:
        fact, text, span, hl, name, answer = one_line_fact(rng, words)
    else:
        fact = rng.choice(corpus.value_facts if rng.random() < 0.5 else corpus.def_facts)
        text, span, hl, name, answer = randomized(corpus, fact, rng, tail, words)
    ids, offs = corpus.tok.encode_offsets(text)
    return fact, ids, token_span(offs, *span), sum(1 for o in offs if o < hl), name, answer


def path_header(corpus: Corpus, stage: Stage, kind: str, answer: str) -> Optional[List[int]]:
    """The header line a definition's window keeps at least under Stage.fact_fits: "// file: PATH";
    [] for a value, whose answer is in its span; None when the stage does not ask for it."""
    if not stage.fact_fits:
        return None
    return corpus.tok.encode(f'// file: {answer}\n') if kind == 'def' else []


def fact_room(span) -> int:
    """Tokens of code a window keeps beside its header: the fact's span, and at least 8."""
    return max(8, span[1] - span[0])


def window_length(n: int, facts, max_ctx: int) -> int:
    """n, grown so that every fact cropped to it keeps its short header and its span (fact_fits).
    facts: (token count, span, short header or None) of each fact chunk in one injection; without
    fact_fits (every header None) n stays."""
    need = max((len(h) + fact_room(sp) for ln, sp, h in facts if h is not None and ln > n), default=0)
    return max(n, min(max_ctx, need))


def whole_length(n: int, fact_ids, one_line: bool, max_ctx: int) -> int:
    """n, grown to the longest fact chunk in one injection when they are one-line files
    (Stage.one_line_facts): the product writes such a file whole, so no crop takes its header or
    its value; shorter ones are padded (a few spaces)."""
    if not one_line or not fact_ids:
        return n
    return max(n, min(max_ctx, max(len(x) for x in fact_ids)))


def sample_batch(corpus: Corpus, B: int, stage: Stage, rng: random.Random) -> Batch:
    t = corpus.tok
    space = t.encode(' ')[0]  # short contexts are padded with spaces, as code is
    # rng draws only where a stage asks for them, so stages without these options sample as before.
    drill = stage.one_line_drill > 0 and rng.random() < stage.one_line_drill
    pooled = drill and stage.pool_share > 0 and rng.random() < stage.pool_share
    if drill:
        stage = dataclasses.replace(stage, distractors=DRILL_OTHERS, fact_negatives=1.0, one_line_facts=1.0)
    long_code = stage.long_code > 0 and rng.random() < stage.long_code
    if long_code:
        stage = dataclasses.replace(stage, distractors=stage.long_code_distractors or LONG_CODE_DISTRACTORS)
    one_line = stage.one_line_facts > 0 and rng.random() < stage.one_line_facts
    tail = CODE_BYTES_PER_TOKEN * LONG_CODE_TOKENS if long_code and stage.long_facts and not one_line else 0
    fact_ctx_max = LONG_CODE_TOKENS if tail else stage.max_ctx
    pick = lambda: _fact_pick(corpus, rng, one_line, tail, stage.real_words)
    items = [pick() for _ in range(B)]
    n0 = min(fact_ctx_max, min(len(x[1]) for x in items))
    n0 = max(n0, 16)  # the authors require chunks of at least 16 tokens
    shorts = [path_header(corpus, stage, x[0].kind, x[5]) for x in items]
    n0 = window_length(n0, [(len(x[1]), x[2], h) for x, h in zip(items, shorts)], fact_ctx_max)
    n0 = whole_length(n0, [x[1] for x in items], one_line, fact_ctx_max)
    cropped = [crop(x[1], n0, x[2], x[3], rng, x[0].kind == 'def', h) for x, h in zip(items, shorts)]
    fact_ctx = torch.tensor([padded(w, n0, space) for w, _ in cropped])
    fact_span = torch.tensor([sp for _, sp in cropped], dtype=torch.long)
    nd = rng.randint(*stage.distractors)
    at = rng.randint(0, nd) if stage.fact_anywhere and nd else 0
    contexts, tags, names = [], [], []
    others = [[] for _ in range(B)]  # per episode: (kind, name, answer, tag) of each other fact in memory
    draw = lambda: stage.fact_negatives > 0 and rng.random() < stage.fact_negatives
    for j in range(nd):
        negative = [draw()] * B if long_code else [draw() for _ in range(B)]
        # (ids, fact span or None, header tokens, keep header) per episode
        picks, held = [], []
        for i, neg in enumerate(negative):
            if neg:
                f, ids, span, hl, name, answer = pick()
                while name == items[i][4]:  # short drawn names can repeat: the question must stay unambiguous
                    f, ids, span, hl, name, answer = pick()
                picks.append((ids, span, hl, f.kind == 'def', path_header(corpus, stage, f.kind, answer)))
                held.append(name)
                others[i].append((f.kind, name, answer, j + 1))
            elif long_code:
                picks.append((code_window(corpus, rng, LONG_CODE_TOKENS), None, 0, False, None))
                held.append('')
            else:
                fi, ci = rng.choice(corpus.chunks)
                picks.append((t.encode(corpus.files[fi]['bytes'][ci]), None, 0, False, None))
                held.append('')
        cap = LONG_CODE_TOKENS if long_code and (tail or not any(negative)) else stage.max_ctx
        n = max(16, min(cap, min(len(p[0]) for p in picks)))
        n = window_length(n, [(len(p[0]), p[1], p[4]) for p in picks if p[1] is not None], cap)
        n = whole_length(n, [p[0] for p in picks if p[1] is not None], one_line, cap)
        rows = []
        for ids, span, hl, keep, short in picks:
            if span is not None:
                rows.append(padded(crop(ids, n, span, hl, rng, keep, short)[0], n, space))
            else:
                s0 = rng.randint(0, max(0, len(ids) - n))
                rows.append(padded(ids[s0:s0 + n], n, space))
        contexts.append(torch.tensor(rows))
        tags.append(torch.full((B,), j + 1, dtype=torch.long))
        names.append(held)
    # The fact's chunk joins at its place (the distractors are drawn first either way: same RNG order).
    contexts.insert(at, fact_ctx)
    tags.insert(at, torch.zeros(B, dtype=torch.long))
    names.insert(at, [x[4] for x in items])
    asked = [(fact.kind, name, answer, i, 0) for i, (fact, _, _, _, name, answer) in enumerate(items)]
    if stage.ask_others:
        asked += asked_others(others, stage.ask_others, rng)
    seqs, qlens, answers, prompts = [], [], [], []
    for kind, name, answer, _, _ in asked:
        pr = t.encode(prompt(question_text(kind, name)))
        seqs.append(pr + t.encode(answer) + [t.eos])
        qlens.append(len(pr))
        answers.append(answer)
        prompts.append(pr)
    m = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), m), t.pad, dtype=torch.long)
    target = torch.full((len(seqs), m), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = torch.tensor(s)
        # Row t predicts token t+1: answer tokens (and the eos) are targets, the prompt is not.
        for k in range(qlens[i] - 1, len(s) - 1):
            target[i, k] = s[k + 1]
    q_episode = q_tag = None
    if stage.ask_others:
        q_episode = torch.tensor([x[3] for x in asked], dtype=torch.long)
        q_tag = torch.tensor([x[4] for x in asked], dtype=torch.long)
    return Batch(contexts, tags, at, names, tokens, torch.tensor(qlens), target, answers, prompts, fact_span,
                 [x[0] for x in asked], q_episode, q_tag, drill, pooled)


def asked_others(others, k: int, rng: random.Random):
    """Up to k of each episode's other facts to ask as well: (kind, name, answer, episode, tag).
    A name held twice in one memory (short drawn names can repeat) is never asked: the answer
    would be ambiguous."""
    out = []
    for i, held in enumerate(others):
        names = [x[1] for x in held]
        unique = [x for x in held if names.count(x[1]) == 1]
        for kind, name, answer, tag in rng.sample(unique, min(k, len(unique))):
            out.append((kind, name, answer, i, tag))
    return out


@dataclass
class Continuation:
    context: torch.Tensor   # [B, n] injected bytes
    tokens: torch.Tensor    # [B, m] the bytes that follow them in the same file
    target: torch.Tensor    # [B, m] next-token targets
    q_len: torch.Tensor     # [B] (1: the first row only scores retrieval; nothing is asked)

    def to(self, dev) -> 'Continuation':
        return Continuation(self.context.to(dev), self.tokens.to(dev), self.target.to(dev), self.q_len.to(dev))


def sample_continuation(corpus: Corpus, B: int, n: int, m: int, rng: random.Random) -> Continuation:
    """The authors' stage-1 signal: write n tokens of a file into memory, then predict the next m
    tokens of the same file through the read path. Code repeats its identifiers, so every
    predicted token rewards reading memory (the fact questions reward it on ~5 tokens each)."""
    rows, conts = [], []
    while len(rows) < B:
        fi, ci = rng.choice(corpus.chunks)
        text = corpus.tok.encode(corpus.files[fi]['bytes'][ci])
        if len(text) < n + m + 1:
            continue
        s = rng.randint(0, len(text) - n - m - 1)
        rows.append(list(text[s:s + n]))
        conts.append(list(text[s + n:s + n + m + 1]))
    tokens = torch.tensor([c[:m] for c in conts])
    target = torch.tensor([c[1:m + 1] for c in conts])
    return Continuation(torch.tensor(rows), tokens, target, torch.ones(B, dtype=torch.long))
