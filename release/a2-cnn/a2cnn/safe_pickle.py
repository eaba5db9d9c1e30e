"""Restricted unpickling for the data files this assignment reads.

``pickle.load`` runs whatever a file asks for, so a tampered CIFAR batch could run ``os.system``.
:class:`RestrictedUnpickler` only hands out the few globals that CIFAR-10 python batches and numpy
arrays are built from (listed in :data:`ALLOWED_GLOBALS`) and raises :class:`UnsafePickleError` for
anything else.

- :func:`safe_load` reads a pickle file (CIFAR batches: Python 2, protocol 2, byte-string keys).
- :func:`safe_load_npy` reads a ``.npy`` file, unpickling object arrays with the restricted unpickler
  (plain numeric arrays are read without any pickle).
"""
import io
import os
import pickle

import numpy as np
from numpy.lib import format as npy_format

try:  # numpy >= 2 keeps the implementation in numpy._core; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that is not on the allow-list."""


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    """Stand-in for ``_codecs.encode``: Python 3 pickles bytes at protocol <= 2 as
    ``_codecs.encode(text, "latin1")``; only that use is allowed."""
    if encoding.replace("-", "").replace("_", "").lower() != "latin1" or not isinstance(obj, str):
        raise UnsafePickleError(f"_codecs.encode is only allowed with 'latin1' on text, not {encoding!r}")
    return obj.encode("latin1", errors)


def _build_allowed():
    allowed = {}
    for package in ("numpy.core", "numpy._core"):  # old and new spelling of the same functions
        allowed[(f"{package}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = _multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = _numeric._frombuffer  # arrays at protocol 5
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = _latin1_encode  # bytes pickled by Python 3 at protocol <= 2
    return allowed


#: (module, name) -> the object handed to the unpickler. Nothing else can be loaded.
ALLOWED_GLOBALS = _build_allowed()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals in :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle the global '{module}.{name}': only numpy arrays and plain "
                "Python data are allowed here (a data file should never need it; the file may be "
                "corrupt or tampered with)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing to unpickle a persistent id: not plain data")


def safe_loads(data, encoding="bytes"):
    """Unpickle ``data`` (bytes) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def safe_load(path_or_file, encoding="bytes"):
    """Unpickle a file (path or binary file object) with :class:`RestrictedUnpickler`.

    ``encoding="bytes"`` keeps Python 2 strings as ``bytes`` (the CIFAR batches' keys are ``b"data"``...).
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as handle:
            return RestrictedUnpickler(handle, encoding=encoding).load()
    return RestrictedUnpickler(path_or_file, encoding=encoding).load()


def _read_npy(handle, encoding):
    version = npy_format.read_magic(handle)
    if version == (1, 0):
        shape, fortran_order, dtype = npy_format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran_order, dtype = npy_format.read_array_header_2_0(handle)
    else:
        raise ValueError(f".npy format version {version} is not supported here")
    if not dtype.hasobject:
        handle.seek(0)
        return np.load(handle, allow_pickle=False)
    array = RestrictedUnpickler(handle, encoding=encoding).load()
    if not isinstance(array, np.ndarray):
        raise pickle.UnpicklingError(f".npy payload is a {type(array).__name__}, not an array")
    if array.shape != tuple(shape):
        raise pickle.UnpicklingError(f".npy header says shape {shape}, payload has {array.shape}")
    return array


def safe_load_npy(path_or_file, encoding="bytes"):
    """Load a ``.npy`` file; an object array's pickled payload goes through the restricted unpickler."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as handle:
            return _read_npy(handle, encoding)
    return _read_npy(path_or_file, encoding)
