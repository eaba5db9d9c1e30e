"""Colour conversions for Parts A and B: greyscale inputs and nearest-palette-colour labels.

Images are (N, C, H, W). Functions take numpy arrays; torch tensors are accepted too and come back
as tensors (they are converted through numpy, so this is for data preparation, not inside a model).
"""
import numpy as np

try:
    import torch
except ImportError:  # the helpers work without torch
    torch = None

_CHUNK_ELEMENTS = 1 << 18  # distances computed per chunk: 2 MiB of float64 (cache friendly)


def _is_tensor(x):
    return torch is not None and isinstance(x, torch.Tensor)


def _as_numpy(x):
    return x.detach().cpu().numpy() if _is_tensor(x) else np.asarray(x)


def _like(result, template):
    return torch.from_numpy(np.ascontiguousarray(result)) if _is_tensor(template) else result


def _check_images(x, channels, what):
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} must have shape (N, {channels}, H, W), not {tuple(x.shape)}")


def _check_palette(palette):
    palette = np.asarray(_as_numpy(palette), dtype=np.float64)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise ValueError(f"palette must have shape (K, 3) with K >= 1, not {palette.shape}")
    return palette


def to_float(x):
    """uint8 images -> float32 in [0, 1): ``x / 256`` (exact, as the palettes were made)."""
    if _is_tensor(x):
        if x.dtype != torch.uint8:
            raise TypeError(f"to_float expects uint8 pixel values, got {x.dtype}")
        return x.to(torch.float32) / 256.0
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 pixel values, got {x.dtype} (already converted?)")
    return x.astype(np.float32) / np.float32(256.0)


def to_greyscale(x):
    """RGB images (N, 3, H, W) -> greyscale (N, 1, H, W): the mean of the three channels.

    The mean is taken in float64 and cast back, so a grey pixel keeps its exact value.
    """
    _check_images(x, 3, "to_greyscale's input")
    if _is_tensor(x):
        return x.to(torch.float64).mean(dim=1, keepdim=True).to(x.dtype)
    return x.mean(axis=1, keepdims=True, dtype=np.float64).astype(x.dtype)


def nearest_colour_labels(rgb, palette):
    """Index of the nearest palette colour for every pixel: int64 (N, H, W).

    Squared Euclidean distance in RGB, computed in float64; ties go to the lowest index.
    """
    template = rgb
    rgb = _as_numpy(rgb)
    _check_images(rgb, 3, "nearest_colour_labels' image")
    palette = _check_palette(palette)
    n, _, h, w = rgb.shape
    labels = np.empty((n, h, w), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(palette) * h * w))
    for start in range(0, n, step):
        chunk = rgb[start:start + step].astype(np.float64)
        dist = np.zeros((len(chunk), len(palette), h, w))
        for c in range(3):
            diff = chunk[:, None, c] - palette[None, :, c, None, None]
            dist += diff * diff
        labels[start:start + step] = dist.argmin(axis=1)  # argmin keeps the first of equal minima
    return _like(labels, template)


def labels_to_rgb(labels, palette):
    """Palette indices (N, H, W) -> RGB images (N, 3, H, W) in the palette's colours."""
    template = labels
    labels = _as_numpy(labels)
    palette = _check_palette(palette)
    if labels.ndim != 3:
        raise ValueError(f"labels must have shape (N, H, W), not {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(palette)):
        raise ValueError(f"labels must lie in 0..{len(palette) - 1}, found {labels.min()}..{labels.max()}")
    return _like(palette[labels].transpose(0, 3, 1, 2), template)
