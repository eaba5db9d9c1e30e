"""The colour palette of Parts A and B: a deterministic k-means over the training horses' pixels.

``python -m a2cnn.palette [--out PATH] [--k 24] [--seed 0] [--n-init 4] [--batches-dir DIR]`` rebuilds
``palette_kmeans24.npy`` (a plain float64 (K, 3) ``.npy``) from all 5000 CIFAR-10 training horses,
pixels divided by 256. Every pixel is used, nothing is subsampled: identical colours are merged and
weighted by their count, which gives the same clustering as the full pixel list, only faster. k-means
is run ``n_init`` times (k-means++ starts from ``seed``) and the run with the lowest mean distance is
kept. It takes a few minutes on a laptop CPU (about 2 CPU-minutes for the default settings).

The shipped ``palette_kmeans24.npy`` was built from the course's horse mirror
(``A2_DATA_DIR`` with ``cifar-10-horse/``: 618 of 6000 images byte-exact, the rest decoded from JPEG).

:func:`load_course_palette` reads the original UofT ``colour_kmeans24_cat7.npy`` (a pickled object
array) for comparison only; :func:`match_palettes` measures how far two palettes are apart.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_PATH = Path(__file__).with_name("palette_kmeans24.npy")
_CHUNK_ROWS = 1 << 13
_SLACK = 1e-9  # margin on distance bounds, far above float64 rounding of distances <= sqrt(3)


def _validate_pixels(pixels):
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[1] != 3:
        raise ValueError(f"pixels must have shape (M, 3), not {pixels.shape}")
    if not np.isfinite(pixels).all():
        raise ValueError("pixels contain NaN or infinity")
    return pixels


def unique_colours(pixels):
    """Distinct rows of ``pixels`` in lexicographic order and how often each occurs.

    Merging duplicates puts the input in a canonical order, so the clustering cannot depend on it.
    """
    pixels = _validate_pixels(pixels)
    scaled = pixels * 256.0
    if len(pixels) and np.array_equal(scaled, np.floor(scaled)) and scaled.min() >= 0 and scaled.max() <= 255:
        codes = scaled.astype(np.int64) @ np.array([65536, 256, 1])  # fast path for x/256 values
        codes, counts = np.unique(codes, return_counts=True)
        colours = np.stack([codes // 65536, codes // 256 % 256, codes % 256], axis=1) / 256.0
        return colours, counts
    return np.unique(pixels, axis=0, return_counts=True)


def _squared_distances(points, centres):
    """(M, K) squared Euclidean distances, by explicit differences (same bits on every machine)."""
    out = np.zeros((len(points), len(centres)))
    for c in range(points.shape[1]):
        diff = points[:, c, None] - centres[None, :, c]
        out += diff * diff
    return out


def _nearest_two(columns, centres):
    """For points given as columns (3, M): nearest centre (lowest index on ties), squared distance to it
    and squared distance to the second nearest (inf when there is one centre)."""
    size = columns.shape[1]
    labels = np.empty(size, dtype=np.int64)
    first = np.empty(size)
    second = np.full(size, np.inf)
    for start in range(0, size, _CHUNK_ROWS):
        block = columns[:, start:start + _CHUNK_ROWS]
        d2 = np.zeros((len(centres), block.shape[1]))
        for c in range(len(columns)):
            diff = block[c][None, :] - centres[:, c, None]
            d2 += diff * diff
        best = d2.argmin(axis=0)
        where = slice(start, start + _CHUNK_ROWS)
        labels[where] = best
        first[where] = d2[best, np.arange(d2.shape[1])]
        if len(centres) > 1:
            d2[best, np.arange(d2.shape[1])] = np.inf
            second[where] = d2.min(axis=0)
    return labels, first, second


def _assign(columns, centres):
    """Nearest centre of every point (columns (3, M)) and the squared distance to it."""
    labels, first, _ = _nearest_two(columns, centres)
    return labels, first


def _kmeans_pp(points, weights, k, rng):
    """k-means++ seeding on weighted points: each new centre is drawn with probability ~ weight * D^2."""
    first = rng.choice(len(points), p=weights / weights.sum())
    centres = [points[first]]
    d2 = _squared_distances(points, points[first][None])[:, 0]
    for _ in range(1, k):
        score = np.cumsum(weights * d2)
        if not score[-1] > 0:
            # distinct points whose squared distances underflow (subnormal coordinates): take the first point
            # that is not a centre yet, which does not depend on the order of the input
            chosen = {tuple(c) for c in centres}
            index = next(i for i, p in enumerate(points) if tuple(p) not in chosen)
        else:
            index = int(np.searchsorted(score, rng.random() * score[-1], side="right"))
            index = min(index, len(points) - 1)
            while index > 0 and weights[index] * d2[index] == 0:  # only reachable by rounding at the very end
                index -= 1
        centres.append(points[index])
        d2 = np.minimum(d2, _squared_distances(points, points[index][None])[:, 0])
    return np.array(centres)


def _update_centres(points, weights, labels, centres):
    """Weighted mean of each cluster; an empty cluster moves to the point worst served by ``centres``."""
    k = len(centres)
    mass = np.bincount(labels, weights=weights, minlength=k)
    new = centres.copy()
    filled = mass > 0
    for c in range(points.shape[1]):
        new[filled, c] = np.bincount(labels, weights=weights * points[:, c], minlength=k)[filled] / mass[filled]
    empty = np.flatnonzero(~filled)
    if len(empty):
        served = weights * ((points - centres[labels]) ** 2).sum(axis=1)
        for j in empty:
            worst = int(np.argmax(served))
            new[j] = points[worst]
            served[worst] = 0.0
    return new


def kmeans(points, weights, k, seed=0, max_iter=1000):
    """Weighted Lloyd k-means from a k-means++ start; stops when no assignment changes.

    Gives the assignments plain Lloyd iterations give, but skips points that provably keep their centre
    (Hamerly's distance bounds, with a safety margin far above rounding error): most of the work of
    the late iterations. Returns ``(centres (k, 3), labels, mean distance, iterations)``, centres unsorted.
    """
    rng = np.random.default_rng(seed)
    weights = np.asarray(weights, dtype=np.float64)
    centres = _kmeans_pp(points, weights, k, rng)
    columns = np.ascontiguousarray(points.T)
    labels, first, second = _nearest_two(columns, centres)
    upper, lower = np.sqrt(first), np.sqrt(second)  # bounds: distance to own centre, to any other centre
    iteration = 1
    while iteration < max_iter:
        new = _update_centres(points, weights, labels, centres)
        shift = np.sqrt(((new - centres) ** 2).sum(axis=1))
        centres = new
        iteration += 1
        upper += shift[labels]
        lower -= shift.max()
        gaps = np.sqrt(_squared_distances(centres, centres))
        np.fill_diagonal(gaps, np.inf)
        bound = np.maximum(lower, 0.5 * gaps.min(axis=1)[labels]) - _SLACK
        check = np.flatnonzero(upper >= bound)
        if len(check):
            upper[check] = np.sqrt(((points[check] - centres[labels[check]]) ** 2).sum(axis=1))
            check = check[upper[check] >= bound[check]]
        changed = 0
        if len(check):
            found, first, second = _nearest_two(columns[:, check], centres)
            changed = np.count_nonzero(found != labels[check])
            labels[check], upper[check], lower[check] = found, np.sqrt(first), np.sqrt(second)
        if changed == 0:
            break
    nearest = np.sqrt(((points - centres[labels]) ** 2).sum(axis=1))
    distortion = float(np.sum(weights * nearest) / weights.sum())
    return centres, labels, distortion, iteration


def sort_palette(centres):
    """Order colours by luminance (0.299 R + 0.587 G + 0.114 B), then R, G, B, on values rounded to 1e-9."""
    centres = np.asarray(centres, dtype=np.float64)
    key = np.round(centres, 9)
    luminance = np.round(key @ np.array([0.299, 0.587, 0.114]), 9)
    return centres[np.lexsort((key[:, 2], key[:, 1], key[:, 0], luminance))]


def compute_palette(pixels, k=24, seed=0, n_init=4, return_info=False):
    """Deterministic k-means palette of ``pixels`` (M, 3) in [0, 1): float64 (k, 3), sorted by luminance.

    Runs k-means ``n_init`` times from k-means++ starts drawn from ``seed`` and keeps the run with the
    lowest mean distance (k-means stops in local optima). The same pixels in any order give the same
    palette. ``return_info`` adds a dict: ``distortion`` (mean pixel-to-colour distance), Lloyd
    ``iterations`` of the kept run, ``distinct_colours``, ``pixels``, ``runs`` (distortion of each run).
    """
    colours, counts = unique_colours(pixels)
    if k < 1 or n_init < 1:
        raise ValueError(f"k and n_init must be at least 1, not {k} and {n_init}")
    if len(colours) < k:
        raise ValueError(f"need at least k={k} distinct colours to cluster, found {len(colours)}")
    best, runs = None, []
    for child in np.random.SeedSequence(seed).spawn(n_init):
        result = kmeans(colours, counts, k, seed=child)
        runs.append(result[2])
        if best is None or result[2] < best[2]:
            best = result
    centres, _, distortion, iterations = best
    palette = sort_palette(centres)
    if return_info:
        info = {"distortion": distortion, "iterations": iterations, "distinct_colours": len(colours),
                "pixels": int(counts.sum()), "runs": runs}
        return palette, info
    return palette


def check_palette(palette, source="palette"):
    """Raise ValueError unless ``palette`` is a finite float (K, 3) array with values in [0, 1]."""
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise ValueError(f"{source}: expected a (K, 3) array, found shape {palette.shape}")
    if not np.issubdtype(palette.dtype, np.floating) or not np.isfinite(palette).all():
        raise ValueError(f"{source}: expected finite floating-point colours, found {palette.dtype}")
    if palette.min() < 0 or palette.max() > 1:
        raise ValueError(f"{source}: colours must lie in [0, 1], found {palette.min()}..{palette.max()}")
    return palette


def load_palette(path=None):
    """The shipped palette (``palette_kmeans24.npy`` beside this module) or the one at ``path``."""
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(f"palette file {path} not found; rebuild it with `python -m a2cnn.palette`")
    return check_palette(np.load(path, allow_pickle=False), str(path)).astype(np.float64)


def load_course_palette(path):
    """The (K, 3) centres of a UofT ``colour_kmeans*_cat7.npy`` (pickled ``(codebook, distortion)``)."""
    from .safe_pickle import safe_load_npy

    array = safe_load_npy(path, encoding="bytes")
    if array.dtype == object:
        if array.shape != (2,):
            raise ValueError(f"{path}: expected the (codebook, distortion) pair, found shape {array.shape}")
        array = array[0]
    return check_palette(np.asarray(array, dtype=np.float64), str(path))


def match_palettes(a, b):
    """Mean Euclidean distance between the colours of ``a`` and ``b`` paired one-to-one optimally."""
    from scipy.optimize import linear_sum_assignment

    a, b = check_palette(a, "first palette"), check_palette(b, "second palette")
    if a.shape != b.shape:
        raise ValueError(f"palettes must have the same shape, not {a.shape} and {b.shape}")
    cost = np.sqrt(_squared_distances(a.astype(np.float64), b.astype(np.float64)))
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def horse_pixels(batches_dir=None):
    """All pixels of the CIFAR-10 training horses as (M, 3) float32 in [0, 1), and the data source."""
    from . import cifar
    from .colour import to_float

    batches_dir = Path(batches_dir) if batches_dir is not None else cifar.find_batches_dir()
    x = np.concatenate([cifar.filter_class(*cifar.read_batch(batches_dir / name), cifar.HORSE)[0]
                        for name in cifar.TRAIN_FILES])
    pixels = to_float(x).transpose(0, 2, 3, 1).reshape(-1, 3)
    return pixels, len(x), cifar.describe_batches_dir(batches_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m a2cnn.palette", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help=f"output .npy (default {DEFAULT_PATH})")
    parser.add_argument("--k", type=int, default=24, help="number of colours (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="k-means++ seed (default 0)")
    parser.add_argument("--n-init", type=int, default=4, help="k-means runs, the best is kept (default 4)")
    parser.add_argument("--batches-dir", type=Path, default=None,
                        help="CIFAR-10 batches folder (default: found as described in a2cnn.cifar)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pixels, images, source = horse_pixels(args.batches_dir)
    palette, info = compute_palette(pixels, k=args.k, seed=args.seed, n_init=args.n_init,
                                    return_info=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, palette.astype(np.float64), allow_pickle=False)
    runs = ", ".join(f"{d:.6f}" for d in info["runs"])
    print(f"{args.k}-colour palette from {images} training horses ({source}): {info['pixels']} pixels, "
          f"{info['distinct_colours']} distinct colours; best of {len(info['runs'])} k-means runs "
          f"(mean distances {runs}): {info['distortion']:.6f} after {info['iterations']} Lloyd iterations; "
          f"{time.perf_counter() - start:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
