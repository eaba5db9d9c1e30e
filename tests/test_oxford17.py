"""Oxford-17 masks, splits and the FlowerSegmentation dataset, on tiny fake data (plus the mirror's JPEGs)."""
import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from a2cnn import oxford17
from a2cnn.download import DataUnavailableError

FLOWER = (128, 0, 0)
NEAR_MISSES = [(127, 0, 0), (129, 0, 0), (128, 1, 0), (128, 0, 1), (0, 0, 0), (255, 255, 255), (0, 0, 128)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("A2_DATA_DIR", "A2_FAST", "A2_OXFORD17_MASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("A2_OFFLINE", "1")
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "cache"))


def raw_trimap(index, height=32, width=32):
    """A trimap whose flower pixels are a random (seeded) pattern; other pixels are near misses."""
    rng = np.random.default_rng(index)
    flower = rng.random((height, width)) < 0.4
    rgb = np.array(NEAR_MISSES, dtype=np.uint8)[rng.integers(0, len(NEAR_MISSES), (height, width))]
    rgb[flower] = FLOWER
    return rgb, flower.astype(np.uint8)


def make_root(root, n_images=10, with_trimaps=range(1, 9), with_splits=True, size=(32, 32)):
    """jpg/image_0001..n, trimaps/ for ``with_trimaps``, and a datasplits.mat like the official one."""
    (root / "jpg").mkdir(parents=True)
    height, width = size
    for i in range(1, n_images + 1):
        colour = (10 * i, 200 - 10 * i, 120)
        Image.new("RGB", (width, height), colour).save(root / "jpg" / f"image_{i:04d}.jpg", quality=95)
    if with_trimaps:
        (root / "trimaps").mkdir()
        for i in with_trimaps:
            Image.fromarray(raw_trimap(i, height, width)[0]).save(root / "trimaps" / f"image_{i:04d}.png")
    if with_splits:
        # stored as 1xN doubles, as in the official file; trn2/trn3 overlap trn1 and val1 on purpose
        splits = {"trn1": [1, 2, 3, 9], "trn2": [2, 3, 4], "trn3": [4, 5, 7], "val1": [6, 7, 10],
                  "val2": [1], "val3": [2], "tst1": [8, 9], "tst2": [3], "tst3": [4]}
        scipy.io.savemat(root / "datasplits.mat", {k: np.array([v], dtype=np.float64) for k, v in splits.items()})
    return root


# ------------------------------------------------------------------------------------------------- masks
@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 8), st.integers(1, 8), st.just(3))),
       st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=10),
       st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.sampled_from(NEAR_MISSES)), max_size=10))
def test_trimap_to_mask_is_one_exactly_at_128_0_0(rgb, flowers, misses):
    rgb = rgb.copy()
    h, w, _ = rgb.shape
    for y, x in flowers:
        rgb[y % h, x % w] = FLOWER
    for y, x, colour in misses:
        rgb[y % h, x % w] = colour
    mask = oxford17.trimap_to_mask(rgb)
    assert mask.dtype == np.uint8 and mask.shape == (h, w)
    for y in range(h):
        for x in range(w):
            assert mask[y, x] == (1 if tuple(int(v) for v in rgb[y, x]) == FLOWER else 0)


def test_trimap_to_mask_rejects_non_rgb():
    with pytest.raises(ValueError):
        oxford17.trimap_to_mask(np.zeros((4, 4), dtype=np.uint8))


def test_synthetic_demo_mask_is_deterministic_binary_and_varies():
    a = oxford17.synthetic_demo_mask(50, 60, 3)
    assert a.shape == (50, 60) and a.dtype == np.uint8 and set(np.unique(a)) == {0, 1}
    assert np.array_equal(a, oxford17.synthetic_demo_mask(50, 60, 3))
    assert not np.array_equal(a, oxford17.synthetic_demo_mask(50, 60, 4))
    assert a[25, 30] == 1 and a[0, 0] == 0  # centred, corners background


# ------------------------------------------------------------------------------------------------ splits
def test_load_splits_and_train_val_indices(tmp_path):
    root = make_root(tmp_path / "ox")
    splits = oxford17.load_splits(root / "datasplits.mat")
    assert set(splits) == set(oxford17.SPLIT_NAMES)
    assert splits["trn1"] == [1, 2, 3, 9] and all(isinstance(v, int) for v in splits["trn1"])
    train, val = oxford17.train_val_indices(splits, have_trimap=range(1, 9), disjoint=False)
    assert train == [1, 2, 3, 4, 5, 7]          # union of trn1..3, deduplicated, 9 has no trimap
    assert val == [6, 7]                        # val1 minus 10 (no trimap)
    train_d, val_d = oxford17.train_val_indices(splits, have_trimap=range(1, 9))
    assert train_d == [1, 2, 3, 4, 5] and val_d == [6, 7]  # by default validation pictures never train


def test_load_splits_rejects_other_mat_files(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"trn1": np.array([[1.0]])})
    with pytest.raises(KeyError, match="datasplits"):
        oxford17.load_splits(tmp_path / "other.mat")


def test_demo_split_is_deterministic_and_disjoint():
    train, val = oxford17.demo_split_indices(range(1, 1361))
    assert len(val) == 272 and len(train) == 1088
    assert not set(train) & set(val) and set(train) | set(val) == set(range(1, 1361))
    assert oxford17.demo_split_indices(reversed(range(1, 1361))) == (train, val)


# ----------------------------------------------------------------------------------------------- dataset
def test_official_dataset_items(tmp_path):
    root = make_root(tmp_path / "ox")
    train = oxford17.FlowerSegmentation("train", size=16, mask_source="official", root=root)
    val = oxford17.FlowerSegmentation("val", size=16, mask_source="official", root=root)
    test = oxford17.FlowerSegmentation("test", size=16, mask_source="official", root=root)
    assert train.indices == [1, 2, 3, 4, 5] and val.indices == [6, 7] and test.indices == [8]  # 7 is validation
    assert len(train) == 5
    image, mask = train[2]                           # image_0003
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert mask.shape == (16, 16) and mask.dtype == torch.int64
    # nearest-neighbour 32 -> 16 samples the centre pixel of each 2x2 block (PIL): exact, still binary
    expected = raw_trimap(3)[1][1::2, 1::2]
    assert np.array_equal(mask.numpy(), expected)
    # ImageNet normalisation: undoing it gives back the photo's solid colour (JPEG tolerance)
    colour = np.array((30, 170, 120)) / 255.0
    assert np.allclose(oxford17.denormalise(image), colour, atol=0.03)
    assert "official" in train.description and "synthetic" not in train.description


def test_limit_and_fast_mode(tmp_path, monkeypatch):
    root = make_root(tmp_path / "ox")
    assert len(oxford17.FlowerSegmentation("train", size=8, mask_source="official", root=root, limit=2)) == 2
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setattr(oxford17, "FAST_LIMITS", {"train": 3, "val": 1, "test": 1})
    assert len(oxford17.FlowerSegmentation("train", size=8, mask_source="official", root=root)) == 3


def test_demo_dataset_uses_made_up_masks(tmp_path, monkeypatch):
    root = make_root(tmp_path / "ox", with_trimaps=None, with_splits=False)
    monkeypatch.setenv("A2_OXFORD17_MASKS", "synthetic-demo")
    train = oxford17.FlowerSegmentation("train", size=32, root=root)
    val = oxford17.FlowerSegmentation("val", size=32, root=root)
    assert train.mask_source == "synthetic-demo"
    assert val.indices == [5, 10] and train.indices == [1, 2, 3, 4, 6, 7, 8, 9]
    _, mask = val[0]
    assert np.array_equal(mask.numpy(), oxford17.synthetic_demo_mask(32, 32, 5))
    assert "synthetic demo masks, not real labels" in train.description
    assert "synthetic demo masks, not real labels" in oxford17.dataset_description()
    with pytest.raises(ValueError):
        oxford17.FlowerSegmentation("test", root=root)


def test_missing_trimaps_error_says_what_to_do(tmp_path):
    root = make_root(tmp_path / "ox", with_trimaps=None)
    with pytest.raises(oxford17.MissingOfficialDataError) as info:
        oxford17.FlowerSegmentation("train", mask_source="official", root=root)
    message = str(info.value)
    assert "trimaps" in message and "absent" in message
    assert oxford17.TRIMAPS_URL in message
    assert "A2_OXFORD17_MASKS=synthetic-demo" in message
    assert isinstance(info.value, DataUnavailableError)


def test_missing_splits_error(tmp_path):
    root = make_root(tmp_path / "ox", with_splits=False)
    with pytest.raises(oxford17.MissingOfficialDataError, match="datasplits.mat"):
        oxford17.FlowerSegmentation("train", mask_source="official", root=root)


def test_lookup_order_mirror_then_cache(tmp_path, monkeypatch):
    mirror = make_root(tmp_path / "mirror" / "oxford17", with_trimaps=None, with_splits=False)
    cache = make_root(tmp_path / "cache" / "oxford17", n_images=2)
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "mirror"))
    assert oxford17.candidate_roots() == [mirror, cache]
    assert oxford17.locate_images() == mirror / "jpg"            # mirror first
    assert oxford17.locate_trimaps() == cache / "trimaps"        # mirror lacks them: cache
    assert oxford17.locate_splits() == cache / "datasplits.mat"


def test_offline_without_trimaps_says_offline(tmp_path, monkeypatch):
    make_root(tmp_path / "mirror" / "oxford17", with_trimaps=None)
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "mirror"))
    with pytest.raises(oxford17.MissingOfficialDataError, match="A2_OFFLINE=1") as info:
        oxford17.FlowerSegmentation("train", mask_source="official")
    assert "A2_OXFORD17_MASKS=synthetic-demo" in str(info.value)


def test_failed_download_of_trimaps_is_explained(tmp_path, monkeypatch):
    make_root(tmp_path / "mirror" / "oxford17", with_trimaps=None)
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("A2_OFFLINE", "0")
    calls = []

    def unreachable(url, dest, md5, expected_size=None, **kwargs):
        calls.append((url, expected_size))
        raise DataUnavailableError(f"Could not download {url}: no network")

    monkeypatch.setattr(oxford17, "fetch", unreachable)
    with pytest.raises(oxford17.MissingOfficialDataError, match="download failed") as info:
        oxford17.locate_trimaps()
    assert calls == [(oxford17.TRIMAPS_URL, 3_915_787)]
    assert "A2_OXFORD17_MASKS=synthetic-demo" in str(info.value)


def test_normalise_round_trip():
    image = torch.rand(3, 5, 7)
    restored = oxford17.denormalise(oxford17.normalise(image))
    assert restored.shape == (5, 7, 3)
    assert np.allclose(restored, image.permute(1, 2, 0).numpy(), atol=1e-6)
    assert oxford17.denormalise(torch.stack([image, image])).shape == (2, 5, 7, 3)


# ------------------------------------------------------------------------------------------------ mirror
@pytest.mark.mirror
def test_demo_mode_on_the_mirror_jpegs(mirror_dir):
    root = mirror_dir / "oxford17"
    dataset = oxford17.FlowerSegmentation("train", mask_source="synthetic-demo", root=root, limit=2)
    image, mask = dataset[0]
    assert image.shape == (3, 224, 224) and mask.shape == (224, 224)
    assert set(mask.unique().tolist()) == {0, 1}
    assert "synthetic" in dataset.description
    assert len(oxford17.indices_in(root / "jpg", "jpg")) == oxford17.NUM_IMAGES


@pytest.mark.mirror
def test_official_mode_on_the_mirror_explains_missing_trimaps(mirror_dir):
    root = mirror_dir / "oxford17"
    if oxford17.indices_in(root / "trimaps", "png"):
        pytest.skip("this mirror has the trimaps")
    with pytest.raises(oxford17.MissingOfficialDataError, match="trimaps"):
        oxford17.FlowerSegmentation("val", mask_source="official", root=root)


# ------------------------------------------------------------------------------------ the notebook's loader
def test_load_flowers_says_what_is_missing_instead_of_raising(tmp_path, monkeypatch):
    """Photos without trimaps (the usual laptop): one message naming the trimaps, where they go and the demo
    switch; no exception reaches the notebook."""
    make_root(tmp_path / "data" / "oxford17", with_trimaps=None, with_splits=False)
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "data"))
    said = []
    assert oxford17.load_flowers(size=8, say=said.append) is None
    assert len(said) == 1
    message = said[0]
    assert "trimaps" in message and oxford17.TRIMAPS_URL in message and "A2_OXFORD17_MASKS=synthetic-demo" in message
    assert str(tmp_path / "data" / "oxford17" / "trimaps" / "image_0001.png") in message
    assert "cells below are skipped" in message


def test_load_flowers_without_photos_names_the_photos(tmp_path, monkeypatch):
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "empty"))
    said = []
    assert oxford17.load_flowers(size=8, say=said.append) is None
    assert "Oxford-17 photos" in said[0] and oxford17.IMAGES_URL in said[0]


def test_load_flowers_gives_both_splits_when_the_data_is_there(tmp_path, monkeypatch):
    make_root(tmp_path / "data" / "oxford17")
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "data"))
    said = []
    train, val = oxford17.load_flowers(size=8, limits=(2, None), say=said.append)
    assert said == [] and len(train) == 2 and train.split == "train" and val.split == "val"
    monkeypatch.setenv("A2_OXFORD17_MASKS", "synthetic-demo")
    train, _ = oxford17.load_flowers(size=8, say=said.append)
    assert train.mask_source == "synthetic-demo"
