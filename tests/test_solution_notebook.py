"""The master notebook, solutions included, runs end to end headless in fast mode."""
import os

import nbformat
import pytest

from coursetools import MASTER_NOTEBOOK, SOURCE_DIR
from coursetools.execute import execute_notebook
from coursetools.run_env import solution_env


def printed_text(nb):
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.slow
def test_source_notebook_runs_in_fast_mode(tmp_path, mirror_dir, monkeypatch):
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("A2_OFFLINE", "1")
    env, notes = solution_env("fast")
    out = tmp_path / "executed.ipynb"
    seconds = execute_notebook(MASTER_NOTEBOOK, out, cwd=SOURCE_DIR, env_overrides=env, timeout=900)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = printed_text(nb)
    for expected in ["visible CNN checks passed", "visible UNet checks passed", "visible fine-tuning checks passed", "CNN: 1 epochs", "UNet: 1 epochs"]:
        assert expected in text
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 6, f"only {images} figures were drawn"
    print(f"fast-mode run: {seconds:.0f} s; notes: {notes}")


def test_long_cells_do_not_train_under_nbgrader(tmp_path, monkeypatch):
    """Every cell that calls a training function checks skip_long_runs() first."""
    nb = nbformat.read(MASTER_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or "nbgrader" in cell.metadata and cell.metadata["nbgrader"].get("grade"):
            continue
        body = cell.source
        calls_training = any(call in body for call in ["train_colourizer(", "train(seg_model", "predict_masks(seg_model"])
        if calls_training and "def " not in body:
            assert body.lstrip().startswith("if settings.skip_long_runs():"), body[:80]
