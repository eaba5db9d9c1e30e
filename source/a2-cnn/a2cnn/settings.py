"""Run-time settings read from the environment, in one place.

| variable        | default | meaning                                                            |
|-----------------|---------|--------------------------------------------------------------------|
| A2_DATA_DIR     | unset   | mirror folder holding ``cifar-10-horse/`` or ``cifar-10-batches-py/`` and ``oxford17/``; read before any download |
| A2_CACHE_DIR    | ~/.cache/a2-cnn | where downloads are stored                                  |
| A2_FAST         | 0       | 1 = fast mode: small subsets and one epoch (CI and quick checks)   |
| A2_DEVICE       | auto    | ``cpu``, ``cuda`` or ``auto`` (CUDA when available)                 |
| A2_OFFLINE      | 0       | 1 = never try the network                                          |
| A2_OXFORD17_MASKS | official | ``official`` (real trimaps) or ``synthetic-demo`` (made-up masks) |
| A2_RUN_CACHE    | unset   | folder where finished training runs are kept so that a rerun of the notebook resumes (``a2cnn.run_cache``) |
"""
import os
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def _flag(name):
    return os.environ.get(name, "0").strip().lower() in _TRUE


def fast_mode():
    """True when A2_FAST asks for the reduced CI run."""
    return _flag("A2_FAST")


def offline():
    return _flag("A2_OFFLINE")


def data_dir():
    """The local mirror given by A2_DATA_DIR, or None."""
    value = os.environ.get("A2_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir():
    return Path(os.environ.get("A2_CACHE_DIR", Path.home() / ".cache" / "a2-cnn")).expanduser()


def run_cache_dir():
    """The folder of finished training runs (A2_RUN_CACHE), or None: no run is kept or reused."""
    value = os.environ.get("A2_RUN_CACHE", "").strip()
    return Path(value).expanduser() if value else None


def device():
    """The torch device to run on: A2_DEVICE, else CUDA when present, else CPU."""
    import torch  # imported here so that reading a setting does not pay for importing torch

    choice = os.environ.get("A2_DEVICE", "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.split(":")[0] == "cuda" and not torch.cuda.is_available():  # cuda:1 too
        raise RuntimeError(f"A2_DEVICE={choice} but torch sees no CUDA device")
    return torch.device(choice)


def oxford17_mask_source():
    value = os.environ.get("A2_OXFORD17_MASKS", "official").strip().lower()
    if value not in {"official", "synthetic-demo"}:
        raise ValueError(f"A2_OXFORD17_MASKS must be 'official' or 'synthetic-demo', not {value!r}")
    return value


def skip_long_runs():
    """True while nbgrader autogrades (it sets NBGRADER_EXECUTION): long training cells must not run then."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))
