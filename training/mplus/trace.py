"""The trainer's forward run on an `mplus trace` ops script, writing the same result format
(../shared/golden/README.md), so the trainer can be checked against the official golden cases and
against the product's engine on an exported checkpoint.

  python3 -m training.mplus.trace --model DIR --ops OPS.json --out RESULT.json
"""
import argparse
import json

import torch

from .checkpoint import load


def rows(t):
    return t.detach().double().tolist()


@torch.no_grad()
def run(model, shipped, ops):
    mem = model.fresh_memory(1, shipped)
    results = []
    for op in ops:
        x = torch.tensor([op['tokens']], dtype=torch.long)
        if op['op'] == 'inject':
            drop = [torch.tensor([d]) for d in op['drop']] if op.get('drop') is not None else None
            deltas = model.inject(mem, x, drop=drop, gen=torch.Generator().manual_seed(0))
            results.append({'delta': [rows(dl[0]) for dl in deltas]})
        else:
            m = x.shape[1]
            logits, retrieved, _ = model.generate_logits(mem, x, torch.tensor([m]))
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
            results.append({'retrieved': [r[0].tolist() for r in retrieved], 'logits': [rows(o) for o in out], 'tokens': toks})
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
    with open(a.out, 'w') as f:
        json.dump(res, f)


if __name__ == '__main__':
    main()
