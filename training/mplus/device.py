"""Where training runs, and loading run states on any device.

`--device auto` takes CUDA when torch sees a GPU (long runs: minutes there instead of days on 2
cores), else the CPU. Batches are drawn on the CPU from the seeded Python RNG and θ drops from a
CPU torch.Generator, so the episodes are the same on every device; on the CPU a resumed run is
bit-identical, on CUDA only up to the GPU's nondeterministic reductions.

Precision: `--precision auto` (default) trains the matmuls in bf16 under autocast where the
hardware has bf16 units (CPUs with AMX or AVX512-BF16, which oneDNN uses; CUDA devices that report
bf16 support), else in f32. Weights, optimizer moments, the residual stream, softmax and the
losses stay f32; only the autocast ops (linear, matmul, bmm) take bf16 inputs. On this machine's
Xeon (AMX) a stage-3 step went from 3.7 s to 1.4 s (1.1 s with the retriever loss trimmed;
BENCHMARKS.md). Evaluation,
export and the agreement checks stay f32: they measure what the product runs.
"""
import contextlib
import os

import torch


def pick(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {name}: torch {torch.__version__} sees no CUDA device; use --device cpu')
    return torch.device(name)


def atomic_save(obj, path: str):
    """torch.save through a temporary file, fsync'd, then renamed: a kill never leaves a torn state
    where a good one was. The folder is made if missing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_state(path: str):
    """A run state (weights, optimizer, RNG states) onto the CPU. Newer torch loads weights only by
    default, which refuses the Python RNG state, so ask for the full pickle: it is our own file."""
    return torch.load(path, map_location='cpu', weights_only=False)


PRECISIONS = ('auto', 'f32', 'bf16')


def cpu_has_bf16() -> bool:
    """AMX-BF16 or AVX512-BF16 (where oneDNN's bf16 matmuls beat f32 BLAS several times)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((l.split(':', 1)[1].split() for l in f if l.startswith('flags')), [])
    except OSError:
        return False
    return 'amx_bf16' in flags or 'avx512_bf16' in flags


def pick_precision(name: str, dev: torch.device) -> str:
    if name not in PRECISIONS:
        raise ValueError(f'--precision {name}: use one of {", ".join(PRECISIONS)}')
    if name != 'auto':
        return name
    if dev.type == 'cuda':
        return 'bf16' if torch.cuda.is_bf16_supported() else 'f32'
    return 'bf16' if cpu_has_bf16() else 'f32'


def autocast(precision: str, dev: torch.device):
    """The context a training step's forward runs in (backward runs outside it, as autocast asks)."""
    if precision == 'bf16':
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
