"""The trainer's forward run on an `mplus trace` ops script, writing the same result format
(../shared/golden/README.md), so the trainer can be checked against the official golden cases and
against the product's engine on an exported checkpoint.

  python3 -m training.mplus.trace --model DIR --ops OPS.json --out RESULT.json
"""
import argparse
import base64
import json

import numpy as np
import torch

from .checkpoint import load
from .model import Memory, retrieval_scores


def rows(t):
    return t.detach().double().tolist()


def scores_of(terms):
    """Per layer, the retrieval score of every candidate (mean sigmoid over question rows), or None
    where the layer retrieved without scoring (Θ smaller than R: the repeat-fill path)."""
    out = []
    for lg, w in terms:
        out.append(None if lg is None else retrieval_scores(lg, w)[0].tolist())
    return out


def floats(x):
    """A float table of a trace state as a numpy float32 array: decimal row lists, or rows packed by
    `mplus trace --every-state` ({"f32": base64 of little-endian float32, "shape": [rows, width]})."""
    if isinstance(x, dict):
        return np.frombuffer(base64.b64decode(x['f32']), dtype='<f4').reshape(x['shape'])
    return np.asarray(x, dtype=np.float32)


def memory_of(model, state):
    """A trace `state` (one episode, golden format, packed or not) as the trainer's Memory: what
    another implementation held, to run the next op from it. Rows carry no provenance (tag −1)."""
    c = model.c

    def rows_(x, w):
        return torch.from_numpy(floats(x).reshape(-1, w).copy()).unsqueeze(0)  # a copy: packed rows are a read-only buffer

    def ints(x):
        return torch.tensor([[int(v) for v in x]], dtype=torch.long).reshape(1, -1)

    L = state['layers']
    mem = Memory(
        stm=[rows_(l['stm'], c.hidden_size) for l in L], stm_ages=[ints(l['stm_ages']) for l in L],
        ltm=[rows_(l['ltm'], c.hidden_size) for l in L], ltm_keys=[rows_(l['ltm_keys'], c.selector_hidden_dim) for l in L],
        ltm_ages=[ints(l['ltm_ages']) for l in L],
        ltm_rf=[torch.tensor([list(l['ltm_rf'])], dtype=torch.float32).reshape(1, -1) for l in L],
        cache=[rows_(l['cache'], c.hidden_size) for l in L], cache_keys=[rows_(l['cache_keys'], c.selector_hidden_dim) for l in L],
        cache_ages=[ints(l['cache_ages']) for l in L],
        update_step=int(state['update_step']))
    mem.stm_tag = [torch.full_like(a, -1) for a in mem.stm_ages]
    mem.ltm_tag = [torch.full_like(a, -1) for a in mem.ltm_ages]
    mem.cache_tag = [torch.full_like(a, -1) for a in mem.cache_ages]
    return mem


@torch.no_grad()
def run(model, shipped, ops, forced=None, start=None):
    """forced: {op index: retrieved indices per layer} — a generate op reads those rows instead of
    its own top-R (still scoring the candidates, in the result's `_scores`), to check the rest of
    an implementation whose retrieval broke a near-tie the other way. start: a trace state to run
    from instead of the checkpoint's fresh memory (memory_of)."""
    mem = model.fresh_memory(1, shipped) if start is None else memory_of(model, start)
    results = []
    for i, op in enumerate(ops):
        x = torch.tensor([op['tokens']], dtype=torch.long)
        if op['op'] == 'inject':
            drop = [torch.tensor([d]) for d in op['drop']] if op.get('drop') is not None else None
            deltas = model.inject(mem, x, drop=drop, gen=torch.Generator().manual_seed(0))
            results.append({'delta': [rows(dl[0]) for dl in deltas]})
        else:
            m = x.shape[1]
            if forced and i in forced:
                fixed = [torch.tensor([r]) for r in forced[i]]
                logits, retrieved, terms = model.generate_logits(mem, x, torch.tensor([m]), fixed=fixed, score_fixed=True)
            else:
                logits, retrieved, terms = model.generate_logits(mem, x, torch.tensor([m]))
            out = [logits[0, -1]]
            toks = []
            seq = x
            # Decoding = the same forward over the longer sequence with the prefill's retrieval.
            for _ in range(op['steps']):
                t = int(out[-1].argmax())
                toks.append(t)
                seq = torch.cat([seq, torch.tensor([[t]])], dim=1)
                lg, _, _ = model.generate_logits(mem, seq, torch.tensor([m]), fixed=retrieved)
                out.append(lg[0, -1])
            results.append({'retrieved': [r[0].tolist() for r in retrieved], 'logits': [rows(o) for o in out], 'tokens': toks,
                            '_scores': scores_of(terms)})
    layers = []
    for l in range(model.c.num_layers):
        layers.append({
            'stm': rows(mem.stm[l][0]), 'stm_ages': mem.stm_ages[l][0].tolist(),
            'ltm': rows(mem.ltm[l][0]), 'ltm_keys': rows(mem.ltm_keys[l][0]),
            'ltm_ages': mem.ltm_ages[l][0].tolist(), 'ltm_rf': mem.ltm_rf[l][0].tolist(),
            'cache': rows(mem.cache[l][0]), 'cache_keys': rows(mem.cache_keys[l][0]),
            'cache_ages': mem.cache_ages[l][0].tolist(),
        })
    return {'results': results, 'state': {'layers': layers, 'update_step': mem.update_step}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--model', required=True)
    ap.add_argument('--ops', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args(argv)
    model, shipped = load(a.model)
    with open(a.ops) as f:
        ops = json.load(f)['ops']
    res = run(model, shipped, ops)
    for r in res['results']:
        r.pop('_scores', None)  # not part of the golden format
    with open(a.out, 'w') as f:
        json.dump(res, f)


if __name__ == '__main__':
    main()
