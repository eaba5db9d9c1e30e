"""Inputs drawn from a seed, identically in the worker and in the parent (which keeps the seed secret until the
run and regenerates the same tensors to check what the worker reports)."""
import torch


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2**63))


def normal(seed: int, shape, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """float32 tensor of ``shape``: ``shift + scale * N(0, 1)`` from ``seed``."""
    return torch.randn(tuple(int(s) for s in shape), generator=generator(seed)) * scale + shift


def labels(seed: int, shape, classes: int) -> torch.Tensor:
    return torch.randint(0, int(classes), tuple(int(s) for s in shape), generator=generator(seed), dtype=torch.int64)
