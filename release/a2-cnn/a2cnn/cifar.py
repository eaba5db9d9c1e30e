"""CIFAR-10 python batches: find them (mirror first, else the official download), read them safely.

Search order of :func:`find_batches_dir` (a folder counts only when it holds all six batch files):

1. ``$A2_DATA_DIR/cifar-10-horse/cifar-10-batches-py`` (the course's horse-only mirror)
2. ``$A2_DATA_DIR/cifar-10-batches-py`` (a full copy of the official batches)
3. ``$A2_CACHE_DIR/cifar-10-batches-py`` (an earlier download)
4. otherwise the official archive is downloaded into the cache and extracted (not when ``A2_OFFLINE=1``).

The mirror holds only horses; the official batches hold all ten classes, so always use :func:`filter_class`.
"""
import tempfile
from pathlib import Path

import numpy as np

from . import settings
from .download import DataUnavailableError, extract_tar, fetch, remove_tree
from .safe_pickle import UnsafePickleError, safe_load

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_SIZE = 170498071
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIRNAME = "cifar-10-batches-py"
MIRROR_DIRNAME = "cifar-10-horse"

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
HORSE = 7
IMAGE_SHAPE = (3, 32, 32)


class CorruptBatchError(ValueError):
    """A batch file is not a readable CIFAR-10 python batch (truncated, not a pickle, wrong layout)."""


def candidate_dirs():
    """The folders searched, in order (existing or not)."""
    found = []
    data = settings.data_dir()
    if data is not None:
        found += [data / MIRROR_DIRNAME / BATCHES_DIRNAME, data / BATCHES_DIRNAME]
    found.append(settings.cache_dir() / BATCHES_DIRNAME)
    return found


def missing_files(batches_dir):
    """Names of the six batch files absent from ``batches_dir``."""
    return [name for name in TRAIN_FILES + (TEST_FILE,) if not (Path(batches_dir) / name).is_file()]


def find_batches_dir(download=True):
    """The first complete batches folder of :func:`candidate_dirs`, else download into the cache."""
    candidates = candidate_dirs()
    for candidate in candidates:
        if candidate.is_dir() and not missing_files(candidate):
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    hint = (
        f"then extract it so that {settings.cache_dir() / BATCHES_DIRNAME} holds data_batch_1..5 and "
        f"test_batch, or set A2_DATA_DIR to a folder holding {BATCHES_DIRNAME}/ or "
        f"{MIRROR_DIRNAME}/{BATCHES_DIRNAME}/ (searched: {searched})"
    )
    if not download:
        raise DataUnavailableError(f"no CIFAR-10 batches found; searched {searched}")
    return download_cifar10(hint=hint)


def download_cifar10(cache=None, hint=None):
    """Download and extract the official archive into ``cache`` (default: the cache dir)."""
    cache = Path(cache) if cache is not None else settings.cache_dir()
    archive = fetch(URL, cache / ARCHIVE_NAME, MD5, expected_size=ARCHIVE_SIZE, hint=hint)
    target = cache / BATCHES_DIRNAME
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:  # extract beside the target, then move it in, so a half-extracted folder is never found
        extract_tar(archive, work)
        extracted = work / BATCHES_DIRNAME
        if not extracted.is_dir() or missing_files(extracted):
            raise DataUnavailableError(f"{archive} does not contain a complete {BATCHES_DIRNAME}/ folder")
        remove_tree(target)
        extracted.rename(target)
    finally:
        remove_tree(work)
    return target


def _field(batch, key):
    for spelling in (key.encode("ascii"), key):
        if spelling in batch:
            return batch[spelling]
    raise KeyError(key)


def read_batch(path):
    """Read one batch file: ``(data uint8 (N, 3, 32, 32), labels int64 (N,))``.

    Raises :class:`CorruptBatchError` naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} does not exist")
    try:
        batch = safe_load(path, encoding="bytes")
    except UnsafePickleError as error:
        raise CorruptBatchError(f"{path.name}: refused to load: {error}") from error
    except Exception as error:  # a damaged pickle can fail in many ways (EOFError, UnpicklingError, ...)
        raise CorruptBatchError(
            f"{path.name}: not a readable pickle (truncated or not a CIFAR batch file): "
            f"{type(error).__name__}: {error}"
        ) from error

    def bad(problem):
        return CorruptBatchError(f"{path.name}: {problem}; expected a CIFAR-10 python batch ({path})")

    if not isinstance(batch, dict):
        raise bad(f"holds a {type(batch).__name__}, not a dict")
    try:
        data, labels = _field(batch, "data"), _field(batch, "labels")
    except KeyError as error:
        raise bad(f"has no {error.args[0]!r} entry (keys: {sorted(map(repr, batch))})") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise bad(f"'data' is {type(data).__name__} {getattr(data, 'dtype', '')}, not a uint8 array")
    if data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise bad(f"'data' has shape {data.shape}, not N x 3072")
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as error:
        raise bad(f"'labels' is not a list of integers ({error})") from None
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise bad(f"'labels' is not a flat list of integers (shape {labels.shape}, dtype {labels.dtype})")
    if len(labels) != len(data):
        raise bad(f"{len(labels)} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise bad(f"labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return data.reshape((-1,) + IMAGE_SHAPE), labels.astype(np.int64)


def load_cifar10(batches_dir=None):
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 3, 32, 32) and int64 labels.

    ``batches_dir`` defaults to :func:`find_batches_dir`.
    """
    batches_dir = Path(batches_dir) if batches_dir is not None else find_batches_dir()
    missing = missing_files(batches_dir)
    if missing:
        raise FileNotFoundError(f"{batches_dir} lacks the CIFAR-10 batch files {', '.join(missing)}")
    parts = [read_batch(batches_dir / name) for name in TRAIN_FILES]
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    x_test, y_test = read_batch(batches_dir / TEST_FILE)
    return x_train, y_train, x_test, y_test


def filter_class(x, y, label):
    """The images of ``x`` (and their labels) whose label is ``label``, in their original order."""
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    keep = y == label
    return x[keep], y[keep]


MIRROR_DESCRIPTION = "horse mirror, 618/6000 images exact"


def is_mirror(batches_dir):
    """True when ``batches_dir`` is the course's horse mirror (``.../cifar-10-horse/cifar-10-batches-py``)."""
    return Path(batches_dir).resolve().parent.name == MIRROR_DIRNAME


def describe_batches_dir(batches_dir):
    """One line for figure captions saying where the images came from."""
    if is_mirror(batches_dir):
        return MIRROR_DESCRIPTION
    return f"official CIFAR-10 batches ({Path(batches_dir)})"
