"""a2cnn.settings: every environment variable it reads, with its default, its accepted spellings and bad values."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from a2cnn import settings

PACKAGE_PARENT = Path(settings.__file__).resolve().parents[1]  # the folder holding the a2cnn under test

VARIABLES = ["A2_DATA_DIR", "A2_CACHE_DIR", "A2_FAST", "A2_DEVICE", "A2_OFFLINE", "A2_OXFORD17_MASKS",
             "NBGRADER_EXECUTION"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Each test starts with none of the variables set and a HOME of its own."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# --- A2_DATA_DIR ---------------------------------------------------------------------------------------------------

def test_data_dir_is_none_when_unset_or_empty(monkeypatch):
    assert settings.data_dir() is None
    monkeypatch.setenv("A2_DATA_DIR", "")
    assert settings.data_dir() is None


def test_data_dir_is_the_given_path_with_home_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("A2_DATA_DIR", str(tmp_path / "mirror"))
    assert settings.data_dir() == tmp_path / "mirror"
    monkeypatch.setenv("A2_DATA_DIR", "~/mirror")
    assert settings.data_dir() == tmp_path / "home" / "mirror"


# --- A2_CACHE_DIR --------------------------------------------------------------------------------------------------

def test_cache_dir_defaults_to_dot_cache_under_home(tmp_path):
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "a2-cnn"


def test_cache_dir_is_the_given_path_with_home_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("A2_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert settings.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("A2_CACHE_DIR", "~/c")
    assert settings.cache_dir() == tmp_path / "home" / "c"
    assert isinstance(settings.cache_dir(), Path)


# --- A2_FAST and A2_OFFLINE (the same boolean flag reader) ---------------------------------------------------------

FLAGS = [("A2_FAST", settings.fast_mode), ("A2_OFFLINE", settings.offline)]
TRUE_SPELLINGS = ["1", "true", "TRUE", "Yes", "on", " 1 ", "On\n"]
FALSE_SPELLINGS = ["0", "", "false", "no", "off", "2", "y", "enabled", "maybe", "-1"]


@pytest.mark.parametrize("name, reader", FLAGS, ids=[name for name, _ in FLAGS])
def test_flag_is_off_by_default(name, reader):
    assert reader() is False


@pytest.mark.parametrize("value", TRUE_SPELLINGS)
@pytest.mark.parametrize("name, reader", FLAGS, ids=[name for name, _ in FLAGS])
def test_flag_is_on_for_each_true_spelling(monkeypatch, name, reader, value):
    monkeypatch.setenv(name, value)
    assert reader() is True


@pytest.mark.parametrize("value", FALSE_SPELLINGS)
@pytest.mark.parametrize("name, reader", FLAGS, ids=[name for name, _ in FLAGS])
def test_flag_is_off_for_anything_else(monkeypatch, name, reader, value):
    monkeypatch.setenv(name, value)
    assert reader() is False


def test_the_two_flags_are_independent(monkeypatch):
    monkeypatch.setenv("A2_FAST", "1")
    assert settings.fast_mode() and not settings.offline()
    monkeypatch.delenv("A2_FAST")
    monkeypatch.setenv("A2_OFFLINE", "1")
    assert settings.offline() and not settings.fast_mode()


# --- A2_DEVICE -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cuda_present, expected", [(False, "cpu"), (True, "cuda")])
@pytest.mark.parametrize("value", [None, "auto", " AUTO "])
def test_auto_device_follows_cuda_availability(monkeypatch, value, cuda_present, expected):
    if value is not None:
        monkeypatch.setenv("A2_DEVICE", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_present)
    assert settings.device() == torch.device(expected)


@pytest.mark.parametrize("cuda_present", [False, True])
@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu\n"])
def test_cpu_is_cpu_even_with_cuda(monkeypatch, value, cuda_present):
    monkeypatch.setenv("A2_DEVICE", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_present)
    assert settings.device() == torch.device("cpu")


def test_cuda_is_cuda_when_present(monkeypatch):
    monkeypatch.setenv("A2_DEVICE", "Cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert settings.device() == torch.device("cuda")


@pytest.mark.parametrize("value", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_cuda_device_is_an_error(monkeypatch, value):
    monkeypatch.setenv("A2_DEVICE", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=f"A2_DEVICE={value.lower()} but torch sees no CUDA device"):
        settings.device()


@pytest.mark.parametrize("value", ["gpu", "banana", "cpu0"])
def test_an_unknown_device_is_refused(monkeypatch, value):
    monkeypatch.setenv("A2_DEVICE", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError):
        settings.device()


def test_reading_the_settings_does_not_import_torch():
    """device() imports torch lazily so that a notebook reading A2_FAST does not pay for torch."""
    code = "import sys, a2cnn.settings as s; s.fast_mode(); s.data_dir(); s.cache_dir(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_PARENT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- A2_OXFORD17_MASKS ---------------------------------------------------------------------------------------------

def test_masks_default_to_official():
    assert settings.oxford17_mask_source() == "official"


@pytest.mark.parametrize("value, expected", [
    ("official", "official"), (" OFFICIAL ", "official"),
    ("synthetic-demo", "synthetic-demo"), ("Synthetic-Demo\n", "synthetic-demo"),
])
def test_masks_accept_both_sources_in_any_case(monkeypatch, value, expected):
    monkeypatch.setenv("A2_OXFORD17_MASKS", value)
    assert settings.oxford17_mask_source() == expected


@pytest.mark.parametrize("value", ["", "synthetic", "demo", "synthetic_demo", "real", "trimaps"])
def test_masks_refuse_any_other_value(monkeypatch, value):
    monkeypatch.setenv("A2_OXFORD17_MASKS", value)
    with pytest.raises(ValueError, match="A2_OXFORD17_MASKS must be 'official' or 'synthetic-demo'"):
        settings.oxford17_mask_source()


# --- NBGRADER_EXECUTION --------------------------------------------------------------------------------------------

def test_long_runs_go_ahead_outside_nbgrader(monkeypatch):
    assert settings.skip_long_runs() is False
    monkeypatch.setenv("NBGRADER_EXECUTION", "")
    assert settings.skip_long_runs() is False


@pytest.mark.parametrize("value", ["autograde", "validate", "1"])
def test_long_runs_are_skipped_while_nbgrader_executes(monkeypatch, value):
    monkeypatch.setenv("NBGRADER_EXECUTION", value)
    assert settings.skip_long_runs() is True


def test_other_variables_do_not_skip_long_runs(monkeypatch):
    monkeypatch.setenv("A2_FAST", "1")
    monkeypatch.setenv("A2_OFFLINE", "1")
    assert settings.skip_long_runs() is False
