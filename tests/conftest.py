"""Shared fixtures. The data mirror is A2_DATA_DIR, else ../shared/data beside the checkout."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "source" / "a2-cnn"
RELEASE_DIR = REPO_ROOT / "release" / "a2-cnn"


def find_mirror():
    """The mirror folder (holding cifar-10-horse/, oxford17/, palette/) or None."""
    candidates = [os.environ.get("A2_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mirror_dir():
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("data mirror absent: set A2_DATA_DIR to a folder with cifar-10-horse/, oxford17/, palette/")
    return mirror


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one torch thread than on two (the checks themselves do the same)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
