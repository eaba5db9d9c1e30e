"""Reading the tensors a worker sent, and comparing tensors the way every verification does."""
import safetensors.torch
import torch

RTOL = 1e-4
ATOL = 1e-5


# What a worker records (``worker/recording.py``): float32 inputs, outputs, gradients and states, and BatchNorm's
# int64 ``num_batches_tracked``. A tensor of any other dtype is not something the worker wrote: it is left out
# (as if it had not been sent), so the parent never computes with it.
ACCEPTED_DTYPES = (torch.float32, torch.int64)


def load(blob: bytes) -> dict:
    """The tensors of a safetensors blob (no code is executed to read it); {} for an empty or unreadable blob.
    Tensors of a dtype the worker never sends are left out."""
    if not blob:
        return {}
    try:
        tensors = safetensors.torch.load(bytes(blob))
    except Exception:  # noqa: BLE001 - forged or damaged bytes: nothing can be read from them
        return {}
    return {key: value for key, value in tensors.items()
            if isinstance(key, str) and isinstance(value, torch.Tensor) and value.dtype in ACCEPTED_DTYPES}


def close(got, expected, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Same shape and equal up to float32 noise relative to the expected values' scale; NaN never matches."""
    if not isinstance(got, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return False
    if got.shape != expected.shape:
        return False
    if got.dtype != expected.dtype and not (got.is_floating_point() and expected.is_floating_point()):
        return False
    if not got.is_floating_point():
        return torch.equal(got, expected)
    got, expected = got.double(), expected.double()
    if not (torch.isfinite(got).all() and torch.isfinite(expected).all()):
        return False
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    return bool(torch.allclose(got, expected, rtol=rtol, atol=atol * max(1.0, scale)))
