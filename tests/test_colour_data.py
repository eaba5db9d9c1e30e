"""a2cnn.colour_data: horses only, greyscale inputs, palette labels, fast subset, source description."""
import pickle

import numpy as np
import pytest

from a2cnn import colour_data
from a2cnn.colour_data import ColourData, describe_source, load_colour_data

PALETTE = np.array([[0.1, 0.1, 0.1], [0.5, 0.4, 0.3], [0.9, 0.9, 0.9]])
NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_batches(folder, per_batch, horse_every=2, seed=0):
    """Fake batches; every ``horse_every``-th image is a horse (7), the others are ships (8); no horses
    when ``horse_every`` is None.

    Returns {name: horse images (uint8, n x 3072)} in file order.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    horses = {}
    for name in NAMES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [7 if horse_every and j % horse_every == 0 else 8 for j in range(per_batch)]
        folder.joinpath(name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))
        horses[name] = data[np.array(labels) == 7]
    return horses


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("A2_DATA_DIR", raising=False)
    monkeypatch.delenv("A2_FAST", raising=False)
    monkeypatch.setenv("A2_OFFLINE", "1")
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_horses_greyscale_and_labels(isolated):
    folder = isolated / "cifar-10-batches-py"
    horses = write_batches(folder, per_batch=6)
    data = load_colour_data(palette=PALETTE, fast=False, batches_dir=folder)
    assert isinstance(data, ColourData)
    assert data.x_train.shape == (15, 1, 32, 32) and data.x_train.dtype == np.float32
    assert data.y_train.shape == (15, 32, 32) and data.y_train.dtype == np.int64
    assert data.x_test.shape == (3, 1, 32, 32) and data.y_test.shape == (3, 32, 32)
    assert data.rgb_train.shape == (15, 3, 32, 32) and data.rgb_train.dtype == np.float32
    assert data.num_colours == 3 and set(np.unique(data.y_train)) <= {0, 1, 2}
    first = horses["data_batch_1"][0].reshape(3, 32, 32).astype(np.float64) / 256
    np.testing.assert_allclose(data.rgb_train[0], first)
    np.testing.assert_allclose(data.x_train[0, 0], first.mean(axis=0), rtol=1e-6)
    # label = nearest palette colour, checked pixel by pixel against a direct computation
    direct = ((first[None] - PALETTE[:, :, None, None]) ** 2).sum(axis=1).argmin(axis=0)
    np.testing.assert_array_equal(data.y_train[0], direct)
    last_test = horses["test_batch"][-1].reshape(3, 32, 32) / 256
    np.testing.assert_allclose(data.rgb_test[-1], last_test)
    assert data.source.startswith("official") and "ColourData(train=15" in repr(data)
    assert data.describe() == f"15 training and 3 validation horses, {data.num_colours} colours; data: {data.source}"


def test_fast_mode_takes_the_first_500_and_100(isolated, monkeypatch):
    folder = isolated / "cifar-10-batches-py"
    horses = write_batches(folder, per_batch=130, horse_every=1)  # 650 train, 130 test horses
    monkeypatch.setenv("A2_FAST", "1")
    fast = load_colour_data(palette=PALETTE, batches_dir=folder)  # fast=None reads A2_FAST
    assert len(fast.x_train) == 500 and len(fast.x_test) == 100
    np.testing.assert_allclose(fast.rgb_test[99], horses["test_batch"][99].reshape(3, 32, 32) / 256)
    np.testing.assert_allclose(fast.rgb_train[499], horses["data_batch_4"][499 - 390].reshape(3, 32, 32) / 256)
    full = load_colour_data(palette=PALETTE, fast=False, batches_dir=folder)
    assert len(full.x_train) == 650 and len(full.x_test) == 130
    np.testing.assert_array_equal(full.y_train[:500], fast.y_train)


def test_default_palette_is_the_shipped_one(isolated):
    folder = isolated / "cifar-10-batches-py"
    write_batches(folder, per_batch=2)
    data = load_colour_data(fast=False, batches_dir=folder)
    assert data.palette.shape == (24, 3) and data.y_train.max() < 24


def test_found_through_the_search_path(isolated, monkeypatch):
    folder = isolated / "data" / "cifar-10-horse" / "cifar-10-batches-py"
    write_batches(folder, per_batch=2)
    monkeypatch.setenv("A2_DATA_DIR", str(isolated / "data"))
    data = load_colour_data(palette=PALETTE, fast=False)
    assert len(data.x_train) == 5 and data.source == "horse mirror, 618/6000 images exact"
    assert describe_source() == "horse mirror, 618/6000 images exact"


def test_describe_source_paths(tmp_path):
    assert describe_source(tmp_path / "cifar-10-horse" / "cifar-10-batches-py") == \
        "horse mirror, 618/6000 images exact"
    other = describe_source(tmp_path / "cache" / "cifar-10-batches-py")
    assert "618" not in other and "official" in other


def test_no_horses_is_an_error(isolated):
    folder = isolated / "cifar-10-batches-py"
    write_batches(folder, per_batch=3, horse_every=None)
    with pytest.raises(ValueError, match="no horse images"):
        load_colour_data(palette=PALETTE, fast=False, batches_dir=folder)


def test_bad_palette_is_refused(isolated):
    folder = isolated / "cifar-10-batches-py"
    write_batches(folder, per_batch=2)
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        load_colour_data(palette=np.zeros((4, 2)), fast=False, batches_dir=folder)


@pytest.mark.mirror
def test_mirror_fast(mirror_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("A2_OFFLINE", "1")
    data = load_colour_data(fast=True)
    assert len(data.x_train) == colour_data.FAST_TRAIN == 500 and len(data.x_test) == colour_data.FAST_TEST == 100
    assert data.source == "horse mirror, 618/6000 images exact"
    assert 0 <= data.x_train.min() and data.x_train.max() < 1
    counts = np.bincount(data.y_train.ravel(), minlength=24)
    assert (counts > 0).sum() >= 20  # real horse pictures use most of the palette
