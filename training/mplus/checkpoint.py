"""Checkpoint folders in mplus-8b's Hugging Face layout: load one into the trainer's model, and
save the trainer's model as one (config.json + model.safetensors; the tokenizer is copied by export).

Θ as shipped (`ltm.{l}`, `ltm_keys.{l}`, `ltm_recall_frequencies.{l}`, `ltm_ages.{l}`) is the
trainer's learned initial Θ rows with keys computed by key_proj, ages 0 and the initial recall
frequency: exactly what `fresh_memory()` starts every training episode with.
"""
import json
import os
from typing import Dict, List, Tuple

import torch

from . import st
from .config import ModelConfig
from .model import MPlus


def load(folder: str) -> Tuple[MPlus, Dict[str, List[torch.Tensor]]]:
    cfg_path = os.path.join(folder, 'config.json')
    with open(cfg_path) as f:
        c = ModelConfig.from_hf(json.load(f))
    model = MPlus(c)
    tensors = st.read(os.path.join(folder, 'model.safetensors'))
    shipped = {k: [] for k in ('ltm', 'ltm_keys', 'ltm_ages', 'ltm_rf')}
    for l in range(c.num_layers):
        shipped['ltm'].append(tensors.pop(f'ltm.{l}'))
        shipped['ltm_keys'].append(tensors.pop(f'ltm_keys.{l}'))
        shipped['ltm_ages'].append(tensors.pop(f'ltm_ages.{l}'))
        shipped['ltm_rf'].append(tensors.pop(f'ltm_recall_frequencies.{l}'))
    own = model.state_dict()
    missing = [k for k in own if k not in tensors and not k.startswith('ltm.')]
    if missing:
        raise ValueError(f'{folder}: missing tensors {missing[:5]}')
    for k, v in tensors.items():
        if k not in own:
            raise ValueError(f'{folder}: unexpected tensor {k}')
        if tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f'{folder}: tensor {k} has shape {list(v.shape)}, config implies {list(own[k].shape)}')
    for l in range(c.num_layers):
        tensors[f'ltm.{l}'] = shipped['ltm'][l] if shipped['ltm'][l].shape == own[f'ltm.{l}'].shape else own[f'ltm.{l}']
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, shipped


@torch.no_grad()
def save(model: MPlus, folder: str, metadata: Dict[str, str] = None) -> None:
    c = model.c
    os.makedirs(folder, exist_ok=True)
    tensors = {k: v.float() for k, v in model.state_dict().items() if not k.startswith('ltm.')}
    for l in range(c.num_layers):
        v = model.ltm[l].detach().float()
        tensors[f'ltm.{l}'] = v
        tensors[f'ltm_keys.{l}'] = model.model.layers[l].keys(v).float()
        tensors[f'ltm_ages.{l}'] = torch.zeros(v.shape[0])
        tensors[f'ltm_recall_frequencies.{l}'] = torch.full((v.shape[0],), float(c.initial_rf))
    st.write(os.path.join(folder, 'model.safetensors'), tensors, metadata)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(c.to_hf(), f, indent=1)
        f.write('\n')
