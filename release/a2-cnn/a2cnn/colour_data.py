"""Data of Parts A and B: greyscale CIFAR-10 horses as inputs, nearest-palette-colour indices as targets.

``load_colour_data()`` finds the batches (see :mod:`a2cnn.cifar`), keeps the horses (class 7), scales
pixels to [0, 1) (``/ 256``), and labels every pixel with the index of its nearest palette colour.
In fast mode (``A2_FAST=1``) only the first 500 training and 100 test horses are kept.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cifar, settings
from .colour import nearest_colour_labels, to_float, to_greyscale
from .palette import check_palette, load_palette

FAST_TRAIN = 500
FAST_TEST = 100


@dataclass
class ColourData:
    """Inputs, targets and the original colours, train and test.

    ``x_*``: greyscale float32 (N, 1, 32, 32); ``y_*``: int64 (N, 32, 32) palette indices;
    ``rgb_*``: float32 (N, 3, 32, 32) in [0, 1) for plotting; ``source``: where the images came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    palette: np.ndarray
    rgb_train: np.ndarray = field(repr=False)
    rgb_test: np.ndarray = field(repr=False)
    source: str = ""

    @property
    def num_colours(self):
        return len(self.palette)

    def describe(self):
        """One line for printing beside results: how much data, and where it came from."""
        return (f"{len(self.x_train)} training and {len(self.x_test)} validation horses, "
                f"{self.num_colours} colours; data: {self.source or 'unknown source'}")

    def __repr__(self):
        return (f"ColourData(train={len(self.x_train)}, test={len(self.x_test)}, "
                f"colours={self.num_colours}, source={self.source!r})")


def describe_source(batches_dir=None):
    """Where the CIFAR images come from, for figure captions.

    ``"horse mirror, 618/6000 images exact"`` for the course mirror's ``cifar-10-horse`` folder,
    otherwise the official batches and their folder. ``batches_dir`` defaults to the folder
    :func:`a2cnn.cifar.find_batches_dir` finds (without downloading).
    """
    if batches_dir is None:
        batches_dir = cifar.find_batches_dir(download=False)
    return cifar.describe_batches_dir(batches_dir)


def _prepare(x_uint8, palette):
    rgb = to_float(x_uint8)
    return to_greyscale(rgb), nearest_colour_labels(rgb, palette), rgb


def load_colour_data(palette=None, fast=None, batches_dir=None):
    """Load the horses as a :class:`ColourData`.

    ``palette`` defaults to the shipped 24-colour palette; ``fast`` to ``settings.fast_mode()``;
    ``batches_dir`` to the folder :func:`a2cnn.cifar.find_batches_dir` finds (downloading if needed).
    """
    palette = load_palette() if palette is None else check_palette(np.asarray(palette, dtype=np.float64))
    fast = settings.fast_mode() if fast is None else bool(fast)
    batches_dir = Path(batches_dir) if batches_dir is not None else cifar.find_batches_dir()
    x_train, y_train, x_test, y_test = cifar.load_cifar10(batches_dir)
    x_train, _ = cifar.filter_class(x_train, y_train, cifar.HORSE)
    x_test, _ = cifar.filter_class(x_test, y_test, cifar.HORSE)
    if fast:
        x_train, x_test = x_train[:FAST_TRAIN], x_test[:FAST_TEST]
    if len(x_train) == 0 or len(x_test) == 0:
        raise ValueError(f"no horse images in {batches_dir} (train {len(x_train)}, test {len(x_test)})")
    grey_train, labels_train, rgb_train = _prepare(x_train, palette)
    grey_test, labels_test, rgb_test = _prepare(x_test, palette)
    return ColourData(grey_train, labels_train, grey_test, labels_test, palette, rgb_train, rgb_test,
                      source=cifar.describe_batches_dir(batches_dir))
