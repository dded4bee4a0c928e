"""Export a training state as a checkpoint in mplus-8b's layout, validated with the product.

  /usr/bin/python3 -m training.mplus.export --state RUN/state.pt --out DIR [--ltm-frequency F] [--initial-rf R]
      [--chunk-tokens N]
  /usr/bin/python3 -m training.mplus.export --init smoke --seed 3 --out DIR      (random weights, for tests)

Writes config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json),
question_template.txt (the checkpoint's own question prompt) and chunking.json (the chunk sizes the
product feeds it: --chunk-tokens, 512 by default), both of which the sidecar uses, into
DIR.partial, then checks it: the product loads it (`node bin/mplus.js trace`) and its logits,
retrieved indices and memory agree with this trainer's forward on an ops script with merges and
retrieval (verify.py). Only a checkpoint that passes is renamed to DIR; a failing one is removed
and the command exits 1 naming what differed.

--ltm-frequency / --initial-rf change only how much Θ keeps at inference (merges every F
injections, a merged row survives R merges): the weights are the same.
"""
import argparse
import json
import os
import shutil
import sys

import torch

from . import checkpoint, tokenizer as tok
from .config import ModelConfig, preset
from .data import TEMPLATE
from .device import load_state
from .model import MPlus
from .verify import code_ids, verify


def build(a):
    """(model, tokenizer): a run's state carries its tokenizer (none: byte-level, older runs);
    --init takes --bpe SPEC (a data folder's bpe.json) or byte-level."""
    if a.state:
        s = load_state(a.state)
        t = tok.from_spec(s.get('tokenizer'))
        cfg = ModelConfig.from_hf(s['config'])
        model = MPlus(cfg)
        model.load_state_dict(s['model'])
    else:
        t = tok.ByteTokenizer()
        if a.bpe:
            with open(a.bpe) as f:
                t = tok.from_spec(json.load(f))
        torch.manual_seed(a.seed)
        cfg = preset(a.init, t.vocab_size, t.bos, t.eos)
        model = MPlus(cfg)
        with torch.no_grad():  # nonzero adapters so that using the wrong one shows in the check
            for n, p in model.named_parameters():
                if '.lora_B.' in n:
                    p.normal_(0, 0.05)
                if n == 'new_memory_positional_emb':
                    p.normal_(0, 0.1)
                if 'query_proj' in n or 'key_proj' in n:  # spread retrieval scores (few near-ties)
                    p.normal_(0, p.shape[1] ** -0.5)
    if a.ltm_frequency:
        model.c.update_ltm_frequency = a.ltm_frequency
    if a.initial_rf:
        model.c.initial_rf = a.initial_rf
    return model.eval(), t


# The chunks the product feeds the model (chunking.json, src/model/chunking.ts): N tokens at most,
# neighbouring pieces of a file merged up to N. Every injection writes K rows to memory whatever its
# length, so the chunk size sets how many candidate rows a fed token costs Θ, and retrieval ranks
# among them. Until the seventeenth session the export wrote the corpus's cut (512 UTF-8 bytes,
# merged to 128: ~107 tokens a chunk), the size training's windows are drawn from; measured through
# the product on held-out seeds (BENCHMARKS.md, "Longer chunks"), 512 tokens merged to 512 found
# 82/55/38/29% of the facts' rows at 4k/8k/16k/32k tokens of code, against 52/25/13/10%, and
# answered 29/18/9/5 of 72, against 30/0/0/1; N = 0 unchanged (a one-line fact file is one chunk).
# The most a chunk may be is the product's injection limit (MAX_CHUNK_TOKENS in chunking.ts).
# The least is the product's too (chunking.ts refuses a smaller "max"). The default is the most:
# the longer the chunk, the fewer rows to rank.
MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS = 16, 512
DEFAULT_CHUNK_TOKENS = MAX_CHUNK_TOKENS


def chunking(tokens: int) -> dict:
    """chunking.json for chunks of at most `tokens` tokens, small neighbours merged up to it."""
    return {'unit': 'tokens', 'max': tokens, 'min': tokens}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--state', help='state.pt of a training run')
    src.add_argument('--init', help='a preset with random weights (tests)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--bpe', help='with --init: a bpe.json (training.mplus.bpe) instead of the byte-level tokenizer')
    ap.add_argument('--out', required=True)
    ap.add_argument('--ltm-frequency', type=int, default=0)
    ap.add_argument('--initial-rf', type=float, default=0)
    ap.add_argument('--chunk-tokens', type=int, default=DEFAULT_CHUNK_TOKENS,
                    help=f'the longest chunk the product feeds the model, in its tokens ({MIN_CHUNK_TOKENS}–{MAX_CHUNK_TOKENS}; '
                         'neighbours merged up to it): chunking.json')
    ap.add_argument('--no-verify', action='store_true', help='skip the check against the product (no node)')
    a = ap.parse_args(argv)
    if not MIN_CHUNK_TOKENS <= a.chunk_tokens <= MAX_CHUNK_TOKENS:
        print(f'export: --chunk-tokens {a.chunk_tokens}: give {MIN_CHUNK_TOKENS} to {MAX_CHUNK_TOKENS} (the product\'s bounds); '
              f'nothing written to {a.out}', file=sys.stderr)
        return 2
    model, t = build(a)
    out = os.path.abspath(a.out)
    c = model.c
    if c.retrieve_size > c.ltm_initial_size:
        # MPLUS-SPEC: with fewer merged Θ rows than R, retrieval repeat-fills R from Θ and ignores
        # the dropped cache, so nothing θ drops is read before the first merge (run28: N = 0 1/12).
        print(f'export: {a.state or "--init " + a.init}: R = {c.retrieve_size} retrieved rows per layer but Θ starts with '
              f'{c.ltm_initial_size}: the product would read nothing dropped from θ until Θ\'s first merge '
              f'({c.update_ltm_frequency} injections); nothing written to {out}. Grow Θ\'s initial rows first: '
              f'python3 -m training.mplus.grow --state STATE --num-blocks {c.num_blocks} --num-ltm-blocks {c.num_ltm_blocks} '
              f'--out GROWN.pt', file=sys.stderr)
        return 1
    tmp = out + '.partial'
    shutil.rmtree(tmp, ignore_errors=True)
    checkpoint.save(model, tmp, {'source': a.state or f'init:{a.init}:{a.seed}'})
    tok.write(tmp, t)
    with open(os.path.join(tmp, 'question_template.txt'), 'w') as f:
        f.write(TEMPLATE)
    with open(os.path.join(tmp, 'chunking.json'), 'w') as f:
        json.dump(chunking(a.chunk_tokens), f)
    if not a.no_verify:
        notes = []
        bad = verify(tmp, notes, text_ids=code_ids(t))
        for n in notes:
            print(f'export: {n}')
        if bad:
            shutil.rmtree(tmp, ignore_errors=True)
            print(f'export: the product and the trainer disagree on the exported checkpoint; nothing written to {out}:', file=sys.stderr)
            for b in bad[:20]:
                print(f'  {b}', file=sys.stderr)
            return 1
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f'export: wrote {out} ({os.path.getsize(os.path.join(out, "model.safetensors")) / 2**20:.1f} MiB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
