"""Where training runs, and loading run states on any device.

`--device auto` takes CUDA when torch sees a GPU (long runs: minutes there instead of days on 2
cores), else the CPU. Batches are drawn on the CPU from the seeded Python RNG and θ drops from a
CPU torch.Generator, so the episodes are the same on every device; on the CPU a resumed run is
bit-identical, on CUDA only up to the GPU's nondeterministic reductions.
"""
import torch


def pick(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {name}: torch {torch.__version__} sees no CUDA device; use --device cpu')
    return torch.device(name)


def load_state(path: str):
    """A run state (weights, optimizer, RNG states) onto the CPU. Newer torch loads weights only by
    default, which refuses the Python RNG state, so ask for the full pickle: it is our own file."""
    return torch.load(path, map_location='cpu', weights_only=False)
