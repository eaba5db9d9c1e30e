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


def test_the_published_solution_is_a_full_run_of_the_current_master():
    """solutions/ holds the master as it is now, executed without an error at the handout's settings."""
    import json

    from coursetools import SOLUTIONS_DIR

    master = nbformat.read(MASTER_NOTEBOOK, as_version=4)
    published = nbformat.read(SOLUTIONS_DIR / MASTER_NOTEBOOK.name, as_version=4)
    assert [c.source for c in published.cells] == [c.source for c in master.cells], \
        "solutions/ is stale: run `python -m coursetools solve --mode full` and commit its output"
    errors = [o for c in published.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    info = json.loads((SOLUTIONS_DIR / "run-info.json").read_text())
    assert info["mode"] == "full" and info["status"] == "ok" and info["environment"]["A2_FAST"] == "0"
    assert "UNet: 25 epochs" in printed_text(published) and "CNN: 25 epochs" in printed_text(published)
    sections = info["seconds_per_section"]
    assert "setup" in sections and [h[:6] for h in sections if h.startswith("Part ")] == ["Part A", "Part B", "Part C"]


def test_seconds_are_added_up_per_section():
    from coursetools.execute import section_seconds

    def code(start, end):
        cell = nbformat.v4.new_code_cell("pass")
        cell.metadata["execution"] = {"iopub.execute_input": f"2026-01-01T00:00:{start:02d}.000000Z",
                                      "shell.execute_reply": f"2026-01-01T00:00:{end:02d}.500000Z"}
        return cell

    nb = nbformat.v4.new_notebook(cells=[
        code(0, 1), nbformat.v4.new_markdown_cell("intro\n## Part A: one\n### Question A1"), code(2, 4), code(5, 5),
        nbformat.v4.new_markdown_cell("## Part B: two"), nbformat.v4.new_code_cell("never run"), code(10, 20)])
    assert section_seconds(nb) == {"setup": 1.5, "Part A: one": 3.0, "Part B: two": 10.5}
