"""safetensors read/write (Debian has no python3-safetensors; the format is 8 bytes of header
length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data)."""
import json
import struct
from typing import Dict

import numpy as np
import torch

_NP = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32}


def read(path: str) -> Dict[str, torch.Tensor]:
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f'{path}: not a safetensors file (shorter than its 8-byte header length)')
    (n,) = struct.unpack('<Q', raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f'{path}: truncated (header says {n} bytes, file has {len(raw) - 8})')
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        if base + b > len(raw):
            raise ValueError(f'{path}: tensor {name} runs past the end of the file (truncated)')
        dt = info['dtype']
        if dt == 'BF16':
            u = np.frombuffer(raw[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt in _NP:
            arr = np.frombuffer(raw[base + a:base + b], dtype=_NP[dt])
        else:
            raise ValueError(f'{path}: tensor {name} has unsupported dtype {dt}')
        out[name] = torch.from_numpy(arr.copy().reshape(info['shape']))
    return out


def write(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str] = None) -> None:
    """Float tensors as F32 (the exported checkpoint is float32 end to end)."""
    header = {'__metadata__': {'format': 'pt', **(metadata or {})}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.is_floating_point():
            arr, dt = t.float().numpy(), 'F32'
        else:
            arr, dt = t.long().numpy(), 'I64'
        b = arr.tobytes()
        header[name] = {'dtype': dt, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header, separators=(',', ':'))
    js += ' ' * ((8 - (8 + len(js.encode())) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(js.encode())))
        f.write(js.encode())
        for b in blobs:
            f.write(b)
