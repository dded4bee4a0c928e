"""A byte-level tokenizer of our own, written as a Hugging Face `tokenizer.json`.

Why bytes: the task is copying names, values and paths out of memory exactly; with one token per
byte there is no tokenization ambiguity to learn, the vocabulary is 260 (embeddings and lm_head
cost nothing, so the checkpoint stays a few MB), and any source text encodes. The price is longer
sequences, which the chunk budget (tokens) absorbs.

Ids: 0..255 = the bytes (as byte-level BPE's printable stand-ins, with no merges, so the product's
@huggingface/tokenizers encodes byte b as id b), then the specials below.
"""
import json

SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|pad|>', '<|reserved_0|>']
BOS, EOS, PAD = 256, 257, 258
VOCAB_SIZE = 256 + len(SPECIALS)


def bytes_to_unicode():
    """GPT-2's reversible byte → printable character map (what ByteLevel pre-tokenization uses)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def encode(text: str):
    return list(text.encode('utf-8'))


def decode(ids) -> str:
    return bytes(i for i in ids if i < 256).decode('utf-8', errors='replace')


def special_tokens() -> list:
    return [{'id': 256 + i, 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
             'normalized': False, 'special': True} for i, s in enumerate(SPECIALS)]


def tokenizer_json() -> dict:
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    added = special_tokens()
    for t in added:
        vocab[t['content']] = t['id']
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': added,
        'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False},
        'post_processor': None,
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': vocab, 'merges': []},
    }


def tokenizer_config() -> dict:
    return {'bos_token': SPECIALS[0], 'eos_token': SPECIALS[1], 'pad_token': SPECIALS[2],
            'model_max_length': 1 << 20, 'tokenizer_class': 'PreTrainedTokenizerFast'}


class ByteTokenizer:
    """The byte-level tokenizer behind the same interface as bpe.BpeTokenizer."""
    kind = 'byte'
    vocab_size, bos, eos, pad = VOCAB_SIZE, BOS, EOS, PAD

    def encode(self, text) -> list:
        return list(text) if isinstance(text, bytes) else encode(text)

    def encode_offsets(self, data: bytes):
        return list(data), list(range(len(data)))

    def decode(self, ids) -> str:
        return decode(ids)

    def tokenizer_json(self) -> dict:
        return tokenizer_json()

    def to_spec(self) -> dict:
        return {'kind': 'byte'}

    def fingerprint(self) -> str:
        return 'byte'


def from_spec(spec) -> 'ByteTokenizer':
    """The tokenizer a run state or data folder names (None: byte-level, as runs before BPE)."""
    if not spec or spec.get('kind') == 'byte':
        return ByteTokenizer()
    if spec.get('kind') == 'bpe':
        from .bpe import BpeTokenizer
        return BpeTokenizer(spec['merges'])
    raise ValueError(f'unknown tokenizer kind {spec.get("kind")!r}')


def write(folder: str, t=None) -> None:
    import os
    with open(os.path.join(folder, 'tokenizer.json'), 'w') as f:
        json.dump((t or ByteTokenizer()).tokenizer_json(), f, ensure_ascii=False)
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(tokenizer_config(), f, indent=1)
