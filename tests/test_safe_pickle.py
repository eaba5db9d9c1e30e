"""a2cnn.safe_pickle: numpy/CIFAR data loads, anything that could run code is refused."""
import io
import os
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from a2cnn.safe_pickle import ALLOWED_GLOBALS, UnsafePickleError, safe_load, safe_load_npy, safe_loads


class _RunsCommand:
    """Unpickling this runs a shell command (what a tampered data file could do)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


array_dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_])


@settings(max_examples=40, deadline=None)
@given(
    array=hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)),
    protocol=st.integers(2, pickle.HIGHEST_PROTOCOL),
)
def test_numpy_arrays_round_trip_at_every_protocol(array, protocol):
    batch = {b"data": array, b"labels": [1, 2, 3], "name": "x", b"scalar": np.float64(0.5)}
    loaded = safe_loads(pickle.dumps(batch, protocol=protocol))
    assert loaded[b"data"].dtype == array.dtype
    np.testing.assert_array_equal(loaded[b"data"], array)
    assert loaded[b"labels"] == [1, 2, 3] and loaded["name"] == "x" and loaded[b"scalar"] == 0.5


def test_refuses_os_system_and_does_not_run_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _RunsCommand(f"touch {marker}")}, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"os\.system|posix\.system"):
        safe_loads(payload)
    assert not marker.exists()
    # the same payload really does run under plain pickle, so the test above is meaningful
    pickle.loads(payload)
    assert marker.exists()


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'true'\ntR.",                      # protocol 0, hand written
    b"cbuiltins\neval\n(S'1'\ntR.",
    b"csubprocess\nPopen\n(S'true'\ntR.",
    b"ccopyreg\n_reconstructor\n(cbuiltins\nobject\nNNtR.",
])
def test_refuses_other_globals(payload):
    with pytest.raises(UnsafePickleError, match="refusing to unpickle"):
        safe_loads(payload)


def test_refuses_eval_reduce():
    with pytest.raises(UnsafePickleError, match="eval"):
        safe_loads(pickle.dumps(_CallsEval()))


def test_codecs_encode_only_for_latin1():
    ok = pickle.dumps(b"\x00\xffabc", protocol=2)  # Python 3 writes bytes as _codecs.encode(text, 'latin1')
    assert b"_codecs" in ok and safe_loads(ok) == b"\x00\xffabc"
    bad = ok.replace(b"latin1", b"rot13_")
    with pytest.raises(UnsafePickleError, match="latin1"):
        safe_loads(bad)


def test_old_numpy_core_spelling_loads_without_deprecation_warning():
    payload = pickle.dumps(np.arange(4, dtype=np.uint8), protocol=2)
    old = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(safe_loads(old), np.arange(4, dtype=np.uint8))


def test_allow_list_is_small():
    assert all(module.split(".")[0] in {"numpy", "_codecs"} for module, _ in ALLOWED_GLOBALS)


def test_safe_load_path_and_file(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"labels": [7]}, protocol=2))
    assert safe_load(path) == {"labels": [7]}
    assert safe_load(str(path)) == {"labels": [7]}
    with open(path, "rb") as handle:
        assert safe_load(handle) == {"labels": [7]}


def test_python2_strings_stay_bytes():
    py2 = b"\x80\x02}q\x00U\x04dataq\x01U\x03abcq\x02s."  # {'data': 'abc'} as Python 2 writes it
    assert safe_loads(py2) == {b"data": b"abc"}
    assert safe_loads(py2, encoding="latin1") == {"data": "abc"}


def test_npy_plain_and_object(tmp_path):
    plain = tmp_path / "plain.npy"
    np.save(plain, np.eye(3))
    np.testing.assert_array_equal(safe_load_npy(plain), np.eye(3))
    obj = tmp_path / "obj.npy"
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = np.ones((4, 3)), np.float64(0.25)
    np.save(obj, pair, allow_pickle=True)
    loaded = safe_load_npy(obj)
    assert loaded.shape == (2,) and loaded[1] == 0.25
    np.testing.assert_array_equal(loaded[0], np.ones((4, 3)))
    with open(obj, "rb") as handle:
        assert safe_load_npy(handle)[0].shape == (4, 3)


def test_npy_with_malicious_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _RunsCommand(f"touch {marker}")
    path = tmp_path / "evil.npy"
    np.save(path, evil, allow_pickle=True)
    with pytest.raises(UnsafePickleError):
        safe_load_npy(path)
    assert not marker.exists()


@pytest.mark.mirror
def test_mirror_batch_and_course_palette(mirror_dir):
    batch = safe_load(mirror_dir / "cifar-10-horse" / "cifar-10-batches-py" / "data_batch_1")
    assert set(batch) >= {b"data", b"labels", b"batch_label", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (1001, 3072)
    path = mirror_dir / "palette" / "colour_kmeans24_cat7.npy"
    pair = safe_load_npy(path)
    assert pair.dtype == object and pair.shape == (2,)
    reference = np.load(path, allow_pickle=True, encoding="bytes")  # trusted copy: plain loader as oracle
    np.testing.assert_array_equal(pair[0], reference[0])
    assert pair[0].shape == (24, 3) and abs(pair[1] - 0.0728299) < 1e-6


def test_truncated_pickle_raises_pickle_error():
    payload = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2)
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        safe_load(io.BytesIO(payload[: len(payload) // 2]))
