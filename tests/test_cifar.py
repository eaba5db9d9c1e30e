"""a2cnn.cifar: reading batches, refusing bad ones, the search order, the download path, the mirror."""
import hashlib
import os
import pickle
import tarfile

import numpy as np
import pytest

from a2cnn import cifar
from a2cnn.cifar import CorruptBatchError, filter_class, find_batches_dir, load_cifar10, read_batch
from a2cnn.download import DataUnavailableError
from a2cnn.safe_pickle import UnsafePickleError


def fake_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_batch(path, data, labels, str_keys=False):
    """A batch in the official layout (dict, byte-string keys, protocol 2)."""
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    batch = {key("batch_label"): b"fake", key("labels"): list(labels), key("data"): data,
             key("filenames"): [b"f%d.png" % i for i in range(len(data))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return path


def make_batches_dir(folder, per_batch=6, seed=0):
    """Six fake batch files with labels cycling through all ten classes; returns the expected arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(cifar.TRAIN_FILES + (cifar.TEST_FILE,)):
        data = fake_images(per_batch, seed + i)
        labels = [(i + j) % 10 for j in range(per_batch)]
        write_batch(folder / name, data, labels)
        arrays[name] = (data, np.array(labels))
    return folder, arrays


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Isolated settings: no A2_DATA_DIR, a private cache, online."""
    monkeypatch.delenv("A2_DATA_DIR", raising=False)
    monkeypatch.delenv("A2_OFFLINE", raising=False)
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_read_batch_layout(tmp_path):
    row = np.concatenate([np.full(1024, 1), np.full(1024, 2), np.arange(1024) % 256]).astype(np.uint8)
    data = np.stack([row, row[::-1]])
    x, y = read_batch(write_batch(tmp_path / "b", data, [3, 9]))
    assert x.dtype == np.uint8 and x.shape == (2, 3, 32, 32)
    assert y.dtype == np.int64 and y.tolist() == [3, 9]
    assert (x[0, 0] == 1).all() and (x[0, 1] == 2).all()  # 1024 red, then 1024 green, then blue
    assert x[0, 2, 0, 5] == 5 and x[0, 2, 1, 0] == 32  # row-major 32 x 32
    assert x[1, 2, 0, 0] == 1  # second image: reversed row, so it starts with the red plane's value


def test_read_batch_accepts_str_keys(tmp_path):
    data = fake_images(3, 1)
    x, y = read_batch(write_batch(tmp_path / "b", data, [1, 2, 3], str_keys=True))
    np.testing.assert_array_equal(x.reshape(3, -1), data)


def test_truncated_batch(tmp_path):
    good = write_batch(tmp_path / "data_batch_1", fake_images(4, 0), [0, 1, 2, 3])
    good.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CorruptBatchError, match="data_batch_1: not a readable pickle"):
        read_batch(good)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "test_batch"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(CorruptBatchError, match="test_batch"):
        read_batch(path)


def test_empty_file(tmp_path):
    path = tmp_path / "data_batch_2"
    path.write_bytes(b"")
    with pytest.raises(CorruptBatchError, match="data_batch_2"):
        read_batch(path)


class _Shell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_batch_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_3"
    path.write_bytes(pickle.dumps({b"data": _Shell(f"touch {marker}"), b"labels": []}, protocol=2))
    with pytest.raises(CorruptBatchError, match="data_batch_3: refused") as info:
        read_batch(path)
    assert isinstance(info.value.__cause__, UnsafePickleError)
    assert not marker.exists()


@pytest.mark.parametrize("batch, problem", [
    ([1, 2, 3], "not a dict"),
    ({b"labels": [1]}, "no 'data'"),
    ({b"data": np.zeros((1, 3072), np.uint8)}, "no 'labels'"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, r"shape \(2, 100\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "not a uint8 array"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, "1 labels for 2 images"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "outside 0..9"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [b"horse"]}, "not a flat list of integers"),
])
def test_wrong_layout(tmp_path, batch, problem):
    path = tmp_path / "data_batch_4"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(CorruptBatchError, match=problem) as info:
        read_batch(path)
    assert "data_batch_4" in str(info.value)


def test_missing_batch_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_batch(tmp_path / "nope")


def test_load_cifar10_concatenates_in_order(tmp_path):
    folder, arrays = make_batches_dir(tmp_path / "b", per_batch=4)
    x_train, y_train, x_test, y_test = load_cifar10(folder)
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (4, 3, 32, 32)
    expected = np.concatenate([arrays[name][0] for name in cifar.TRAIN_FILES])
    np.testing.assert_array_equal(x_train.reshape(20, -1), expected)
    np.testing.assert_array_equal(y_test, arrays["test_batch"][1])


def test_load_cifar10_names_missing_files(tmp_path):
    folder, _ = make_batches_dir(tmp_path / "b", per_batch=2)
    (folder / "data_batch_5").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_5"):
        load_cifar10(folder)


def test_filter_class_keeps_order():
    x = np.arange(10)[:, None] * np.ones((10, 2), np.uint8)
    y = np.array([7, 1, 7, 7, 2, 0, 7, 9, 9, 7])
    xs, ys = filter_class(x, y, cifar.HORSE)
    assert xs[:, 0].tolist() == [0, 2, 3, 6, 9] and (ys == 7).all()
    with pytest.raises(ValueError):
        filter_class(x, y[:3], 7)


def test_search_order(env, monkeypatch):
    data = env / "data"
    mirror, _ = make_batches_dir(data / "cifar-10-horse" / "cifar-10-batches-py", per_batch=1)
    full, _ = make_batches_dir(data / "cifar-10-batches-py", per_batch=1)
    cached, _ = make_batches_dir(env / "cache" / "cifar-10-batches-py", per_batch=1)
    monkeypatch.setenv("A2_OFFLINE", "1")
    assert find_batches_dir() == cached  # no A2_DATA_DIR: the cache
    monkeypatch.setenv("A2_DATA_DIR", str(data))
    assert find_batches_dir() == mirror
    (mirror / "test_batch").unlink()  # an incomplete folder is skipped
    assert find_batches_dir() == full
    (full / "data_batch_1").unlink()
    assert find_batches_dir() == cached


def test_offline_and_nothing_found(env, monkeypatch):
    monkeypatch.setenv("A2_OFFLINE", "1")
    with pytest.raises(DataUnavailableError) as info:
        find_batches_dir()
    message = str(info.value)
    assert cifar.URL in message and "A2_DATA_DIR" in message and str(env / "cache") in message
    with pytest.raises(DataUnavailableError):
        find_batches_dir(download=False)


def _fake_archive(tmp_path):
    folder, arrays = make_batches_dir(tmp_path / "src" / "cifar-10-batches-py", per_batch=3)
    archive = tmp_path / "src" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive, arrays


def test_download_and_extract(env, monkeypatch):
    archive, arrays = _fake_archive(env)
    monkeypatch.setattr(cifar, "URL", archive.as_uri())
    monkeypatch.setattr(cifar, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(cifar, "ARCHIVE_SIZE", archive.stat().st_size)
    found = find_batches_dir()
    assert found == env / "cache" / "cifar-10-batches-py"
    assert not [p for p in (env / "cache").iterdir() if p.name.startswith(".extract-")]
    x_train, _, _, y_test = load_cifar10()
    np.testing.assert_array_equal(x_train[:3].reshape(3, -1), arrays["data_batch_1"][0])
    np.testing.assert_array_equal(y_test, arrays["test_batch"][1])


def test_download_with_wrong_checksum_leaves_nothing(env, monkeypatch):
    archive, _ = _fake_archive(env)
    monkeypatch.setattr(cifar, "URL", archive.as_uri())
    monkeypatch.setattr(cifar, "ARCHIVE_SIZE", None)
    with pytest.raises(Exception, match="not the expected file"):
        find_batches_dir()
    assert not (env / "cache" / "cifar-10-batches-py").exists()
    assert not (env / "cache" / "cifar-10-python.tar.gz").exists()


def test_describe_batches_dir(tmp_path):
    assert cifar.describe_batches_dir(tmp_path / "cifar-10-horse" / "cifar-10-batches-py") == \
        "horse mirror, 618/6000 images exact"
    assert "official" in cifar.describe_batches_dir(tmp_path / "cifar-10-batches-py")


@pytest.mark.mirror
def test_mirror_matches_sha256sums(mirror_dir):
    root = mirror_dir / "cifar-10-horse"
    lines = [line.split() for line in (root / "SHA256SUMS").read_text().splitlines() if line.strip()]
    assert {name for _, name in lines} >= {f"cifar-10-batches-py/{n}" for n in cifar.TRAIN_FILES + (cifar.TEST_FILE,)}
    for digest, name in lines:
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.mirror
def test_mirror_horses(mirror_dir):
    folder = mirror_dir / "cifar-10-horse" / "cifar-10-batches-py"
    x_train, y_train, x_test, y_test = load_cifar10(folder)
    assert x_train.shape == (5000, 3, 32, 32) and x_test.shape == (1000, 3, 32, 32)
    assert x_train.dtype == np.uint8 and (y_train == cifar.HORSE).all() and (y_test == cifar.HORSE).all()
    assert x_train.std() > 20  # real pictures, not blank
    exact = [line for line in (folder.parent / "EXACT.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert f"{len(exact)}/{len(x_train) + len(x_test)}" in cifar.describe_batches_dir(folder)


@pytest.mark.mirror
def test_mirror_found_through_a2_data_dir(mirror_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("A2_OFFLINE", "1")
    assert find_batches_dir() == mirror_dir / "cifar-10-horse" / "cifar-10-batches-py"
