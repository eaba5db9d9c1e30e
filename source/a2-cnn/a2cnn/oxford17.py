"""Oxford-17 flowers for Part C: photos, trimaps -> binary masks, datasplits.mat, synthetic demo masks.

Where the files come from (each part is looked up on its own, first hit wins):

1. ``$A2_DATA_DIR/oxford17/``  -- ``jpg/image_0001.jpg ...``, ``trimaps/image_0001.png ...``, ``datasplits.mat``
2. ``$A2_CACHE_DIR/oxford17/`` -- the same layout, left there by an earlier download
3. the official files are downloaded into the cache (not with ``A2_OFFLINE=1``, and not when a
   dataset is given an explicit ``root``).

Masks: in a trimap, flower pixels are exactly RGB (128, 0, 0) -> label 1; everything else
(background and the uncertain border) -> label 0. Trimaps exist for 848 of the 1360 images.

``A2_OXFORD17_MASKS=synthetic-demo`` is a clearly labelled demo mode for machines without the
trimaps: every photo gets a made-up mask (a centred ellipse, :func:`synthetic_demo_mask`) and the
split is a fixed 80/20 split of the available photos. It exercises the whole pipeline, but the
masks are not labels, so losses, IoUs and figures from it say nothing about flowers.
"""
import re
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image
from torch.utils.data import Dataset

from . import settings
from .download import DataUnavailableError, extract_tar, fetch, remove_tree

BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/"
IMAGES_URL = BASE_URL + "17flowers.tgz"
# MD5 and size of 17flowers.tgz are not known to us (no trustworthy record of them): the download is
# not verified by checksum; instead the extracted folder must hold all 1360 JPEGs.
IMAGES_MD5 = None
IMAGES_SIZE = None
TRIMAPS_URL = BASE_URL + "trimaps.tgz"
# MD5 of trimaps.tgz is not known to us: only its size is verified (plus 848 PNGs after extraction).
TRIMAPS_MD5 = None
TRIMAPS_SIZE = 3_915_787
SPLITS_URL = BASE_URL + "datasplits.mat"
SPLITS_MD5 = "4828cddfd0d803c5abbdebcb1e148a1e"
SPLITS_SIZE = 7_487

NUM_IMAGES = 1360
NUM_TRIMAPS = 848
FLOWER_RGB = (128, 0, 0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPLIT_NAMES = tuple(f"{kind}{n}" for kind in ("trn", "val", "tst") for n in (1, 2, 3))
MASK_SOURCES = ("official", "synthetic-demo")
DEMO_VAL_EVERY = 5          # demo split: every 5th photo (index % 5 == 0) is validation
FAST_LIMITS = {"train": 16, "val": 8, "test": 8}   # images per split in fast mode (A2_FAST=1)

_INDEX = re.compile(r"^image_(\d{4})\.(jpg|png)$")


class MissingOfficialDataError(DataUnavailableError):
    """The official trimaps or datasplits.mat are absent and could not be downloaded."""


# ----------------------------------------------------------------------------------------------- locating
def candidate_roots():
    """Folders searched, in order: ``$A2_DATA_DIR/oxford17`` (if set), then ``$A2_CACHE_DIR/oxford17``."""
    roots = []
    if settings.data_dir() is not None:
        roots.append(settings.data_dir() / "oxford17")
    roots.append(settings.cache_dir() / "oxford17")
    return roots


def indices_in(folder, suffix):
    """Sorted 1-based image indices of the ``image_NNNN.<suffix>`` files in ``folder`` (empty if absent)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _INDEX.match(path.name)
        if match and match.group(2) == suffix:
            found.append(int(match.group(1)))
    return sorted(found)


def _find(roots, part):
    for root in roots:
        path = Path(root) / part
        if part.endswith(".mat"):
            if path.is_file():
                return path
        elif indices_in(path, "jpg" if part == "jpg" else "png"):
            return path
    return None


def _download_archive(url, md5, size, folder_name, expected_count, suffix):
    """Download ``url`` into the cache and extract its ``folder_name``/ there; return that folder."""
    cache = settings.cache_dir() / "oxford17"
    archive = fetch(url, cache / Path(url).name, md5, expected_size=size)
    target = cache / folder_name
    work = cache / f".extract-{folder_name}"
    remove_tree(work)
    try:  # extract beside the target and move it in, so a half-extracted folder is never found
        extract_tar(archive, work)
        extracted = work / folder_name
        count = len(indices_in(extracted, suffix))
        if count != expected_count:
            raise DataUnavailableError(f"{archive} held {count} {suffix} files in {folder_name}/, "
                                       f"not {expected_count}; delete it and try again")
        remove_tree(target)
        extracted.rename(target)
    finally:
        remove_tree(work)
    return target


def _place_hint(part):
    roots = " or ".join(str(r / part) for r in candidate_roots())
    return f"put it at {roots}"


def locate_images(roots=None, download=True):
    """The ``jpg/`` folder with the photos (downloading 17flowers.tgz into the cache if allowed)."""
    search = roots or candidate_roots()
    found = _find(search, "jpg")
    if found is not None:
        return found
    if roots is None and download and not settings.offline():
        return _download_archive(IMAGES_URL, IMAGES_MD5, IMAGES_SIZE, "jpg", NUM_IMAGES, "jpg")
    raise DataUnavailableError(f"Oxford-17 photos (jpg/image_0001.jpg ...) not found in "
                               f"{', '.join(map(str, search))}; get {IMAGES_URL} and extract it so that "
                               f"{Path(search[0]) / 'jpg' / 'image_0001.jpg'} exists")


def trimaps_missing_message(roots, detail=""):
    return (
        "The Oxford-17 trimaps (the segmentation ground truth) are absent: no trimaps/image_NNNN.png in "
        f"{', '.join(map(str, roots))}{detail}. Get them from {TRIMAPS_URL} ({TRIMAPS_SIZE:,} bytes) and "
        f"extract the archive so that {Path(roots[0]) / 'trimaps' / 'image_0001.png'} exists "
        f"(datasplits.mat comes from {SPLITS_URL}). Or set A2_OXFORD17_MASKS=synthetic-demo to run the "
        "pipeline on made-up masks (synthetic demo masks, not real labels: the IoU then means nothing)."
    )


def locate_trimaps(roots=None, download=True):
    """The ``trimaps/`` folder; raises :class:`MissingOfficialDataError` with instructions if absent."""
    search = roots or candidate_roots()
    found = _find(search, "trimaps")
    if found is not None:
        return found
    detail = ""
    if roots is None and download:
        if settings.offline():
            detail = " (A2_OFFLINE=1, so no download was tried)"
        else:
            try:
                return _download_archive(TRIMAPS_URL, TRIMAPS_MD5, TRIMAPS_SIZE, "trimaps", NUM_TRIMAPS, "png")
            except DataUnavailableError as error:
                raise MissingOfficialDataError(trimaps_missing_message(search, f" and the download failed: {error}")) \
                    from error
    raise MissingOfficialDataError(trimaps_missing_message(search, detail))


def locate_splits(roots=None, download=True):
    """The ``datasplits.mat`` file; raises :class:`MissingOfficialDataError` with instructions if absent."""
    search = roots or candidate_roots()
    found = _find(search, "datasplits.mat")
    if found is not None:
        return found
    advice = (f"Get {SPLITS_URL} ({SPLITS_SIZE:,} bytes, md5 {SPLITS_MD5}) and {_place_hint('datasplits.mat')}, "
              "or set A2_OXFORD17_MASKS=synthetic-demo (made-up masks and split, not real labels).")
    if roots is None and download and not settings.offline():
        try:
            return fetch(SPLITS_URL, settings.cache_dir() / "oxford17" / "datasplits.mat", SPLITS_MD5,
                         expected_size=SPLITS_SIZE)
        except DataUnavailableError as error:
            raise MissingOfficialDataError(f"Oxford-17 datasplits.mat is absent and the download failed: {error} "
                                           + advice) from error
    raise MissingOfficialDataError(f"Oxford-17 datasplits.mat is absent from {', '.join(map(str, search))}. " + advice)


# ------------------------------------------------------------------------------------------ masks, splits
def trimap_to_mask(rgb):
    """uint8 (H, W) mask: 1 exactly where the (H, W, 3) trimap pixel is (128, 0, 0), else 0."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB array of shape (H, W, 3), got {rgb.shape}")
    r, g, b = FLOWER_RGB
    return ((rgb[..., 0] == r) & (rgb[..., 1] == g) & (rgb[..., 2] == b)).astype(np.uint8)


def synthetic_demo_mask(height, width, index):
    """A made-up uint8 (H, W) mask for demo mode: a centred ellipse whose semi-axes depend on ``index``.

    Deterministic (same arguments, same mask); the semi-axes are 18%..42% of the height and width.
    It is not a label of anything in the photo.
    """
    ry = (0.18 + 0.04 * (index % 7)) * height
    rx = (0.18 + 0.04 * ((3 * index) % 7)) * width
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    yy, xx = np.ogrid[:height, :width]
    return ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0).astype(np.uint8)


def load_splits(mat_path):
    """``{"trn1": [...], ..., "tst3": [...]}``: the 1-based image indices stored in datasplits.mat."""
    data = scipy.io.loadmat(str(mat_path))
    missing = [name for name in SPLIT_NAMES if name not in data]
    if missing:
        raise KeyError(f"{mat_path} lacks the split(s) {missing}; is it the Oxford-17 datasplits.mat?")
    return {name: [int(round(v)) for v in np.asarray(data[name]).ravel()] for name in SPLIT_NAMES}


def train_val_indices(splits, have_trimap, disjoint=True):
    """``(train, val)`` sorted index lists: union of trn1, trn2, trn3 and val1, only images with a trimap.

    The union is taken as a set (an image in several training splits appears once). Note: trn1..3
    are three different random splits of the same photos, so their union can contain images of
    val1; ``disjoint=True`` (the default) removes those from the training list, so that the validation
    figures are measured on pictures the model never trained on.
    """
    have = set(int(i) for i in have_trimap)
    train = (set(splits["trn1"]) | set(splits["trn2"]) | set(splits["trn3"])) & have
    val = set(splits["val1"]) & have
    if disjoint:
        train -= val
    return sorted(train), sorted(val)


def demo_split_indices(available):
    """``(train, val)`` of the demo mode: every index divisible by 5 is validation, the rest training."""
    available = sorted(int(i) for i in available)
    return ([i for i in available if i % DEMO_VAL_EVERY != 0], [i for i in available if i % DEMO_VAL_EVERY == 0])


def dataset_description(mask_source=None):
    """One plain sentence saying which masks are used (put it on every figure and result)."""
    source = mask_source or settings.oxford17_mask_source()
    if source == "synthetic-demo":
        return ("Oxford-17 photos with synthetic demo masks, not real labels (centred ellipses made up by "
                "A2_OXFORD17_MASKS=synthetic-demo): losses, IoUs and figures show the mechanics only")
    if source == "official":
        return ("Oxford-17 photos with the official trimap masks (flower = trimap pixel (128, 0, 0)); "
                "datasplits.mat trn1+trn2+trn3 / val1")
    raise ValueError(f"mask_source must be one of {MASK_SOURCES}, not {source!r}")


# ----------------------------------------------------------------------------------------- the Dataset
def normalise(image):
    """Float tensor (3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


def denormalise(image):
    """Undo the ImageNet normalisation for plotting: (3, H, W) or (N, 3, H, W) tensor -> float numpy
    array (H, W, 3) or (N, H, W, 3), clipped to [0, 1]."""
    image = torch.as_tensor(image).detach().cpu().float()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    restored = (image * std + mean).clamp(0, 1)
    return restored.movedim(-3, -1).numpy()


class FlowerSegmentation(Dataset):
    """Oxford-17 photos and binary flower masks.

    ``split``: "train" or "val" (and "test" = tst1 with official masks). Items are
    ``(image, mask)``: a float tensor (3, size, size), resized bilinearly and normalised with the
    ImageNet mean/std, and an int64 tensor (size, size) of labels 0 (background) / 1 (flower),
    resized with nearest neighbour so it stays binary.

    ``mask_source``: "official" (trimaps + datasplits.mat) or "synthetic-demo"; default
    ``A2_OXFORD17_MASKS``. ``root``: a folder with ``jpg/``, ``trimaps/``, ``datasplits.mat``
    (nothing else is searched, nothing downloaded); default: see the module docstring.
    ``limit``: keep only the first ``limit`` images (default: all, or ``FAST_LIMITS`` in fast mode).
    """

    def __init__(self, split, size=224, mask_source=None, root=None, limit=None):
        self.mask_source = mask_source or settings.oxford17_mask_source()
        if self.mask_source not in MASK_SOURCES:
            raise ValueError(f"mask_source must be one of {MASK_SOURCES}, not {self.mask_source!r}")
        allowed = ("train", "val", "test") if self.mask_source == "official" else ("train", "val")
        if split not in allowed:
            raise ValueError(f"split must be one of {allowed} for {self.mask_source} masks, not {split!r}")
        self.split = split
        self.size = int(size)
        roots = [Path(root)] if root is not None else None
        self.images_dir = locate_images(roots)
        if self.mask_source == "official":
            self.trimaps_dir = locate_trimaps(roots)
            splits = load_splits(locate_splits(roots))
            have = indices_in(self.trimaps_dir, "png")
            if split == "test":
                indices = sorted(set(splits["tst1"]) & set(have))
            else:
                indices = train_val_indices(splits, have)[0 if split == "train" else 1]
        else:
            self.trimaps_dir = None
            indices = demo_split_indices(indices_in(self.images_dir, "jpg"))[0 if split == "train" else 1]
        if limit is None and settings.fast_mode():
            limit = FAST_LIMITS[split]
        self.indices = indices if limit is None else indices[: int(limit)]
        self.description = dataset_description(self.mask_source)

    def __len__(self):
        return len(self.indices)

    def image_path(self, index):
        return self.images_dir / f"image_{index:04d}.jpg"

    def raw_mask(self, index, height, width):
        """The uint8 mask at the photo's own size, before resizing."""
        if self.mask_source == "official":
            with Image.open(self.trimaps_dir / f"image_{index:04d}.png") as trimap:
                return trimap_to_mask(np.asarray(trimap.convert("RGB")))
        return synthetic_demo_mask(height, width, index)

    def __getitem__(self, item):
        index = self.indices[item]
        with Image.open(self.image_path(index)) as photo:
            photo = photo.convert("RGB")
        mask = self.raw_mask(index, photo.height, photo.width)
        size = (self.size, self.size)
        photo = photo.resize(size, Image.BILINEAR)
        mask = Image.fromarray(mask).resize(size, Image.NEAREST)
        image = torch.from_numpy(np.asarray(photo, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        return normalise(image), torch.from_numpy(np.asarray(mask, dtype=np.int64).copy())


# ------------------------------------------------------------------------------------- for the notebook
def load_flowers(size=224, limits=(None, None), mask_source=None, say=print):
    """``(train, val)`` datasets for Part C, or None when the photos or masks are missing: then ``say`` gets one
    paragraph saying what is missing, where to put it and what the notebook does instead (no traceback)."""
    try:
        return (FlowerSegmentation("train", size=size, mask_source=mask_source, limit=limits[0]),
                FlowerSegmentation("val", size=size, mask_source=mask_source, limit=limits[1]))
    except DataUnavailableError as exc:
        say(f"Part C cannot load its data. {exc}\nThe Part C cells below are skipped until the data is there "
            "(restart the kernel after adding it or setting the variable).")
        return None
