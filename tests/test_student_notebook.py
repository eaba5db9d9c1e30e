"""The release notebook run as a student runs it: fast mode, offline, the data mirror without the Oxford-17 trimaps.

Each test fills the release's answer cells with the master's solutions (``tests.corpus.build``), changes one of them
the way a student might get it wrong, runs every cell in a fresh kernel (errors do not stop the run, as for a student
who runs each cell in turn) and reads what each cell shows. Every cell that fails must say what is wrong in a
sentence, with no long traceback; the cells that should not fail must not.

One run per test, so that ``pytest -n`` runs them side by side; Part C costs nothing here because the mirror has
no trimaps (its data cell says so and the cells after it skip).
"""
import re
import shutil

import nbformat
import pytest

from coursetools import RELEASE_DIR
from coursetools.execute import execute_notebook
from tests.corpus import Example, _with, build

pytestmark = [pytest.mark.slow, pytest.mark.mirror]

# A rendered error is at most this many lines. For an error raised by a cell's own line (a visible test's assert),
# IPython shows a rule, the exception's name, "Cell In[n], line m", at most seven lines of the cell around the
# failing line, a blank line and the message: 12 lines for a one-line message. Every frame from outside the cell
# adds at least four more (a blank line, "File ..., in ...", two lines of code or more), so 15 leaves room for a
# longer message but not for a single frame of torch or a2cnn: a student cannot act on those, and a helper that
# raises there must say what is wrong in a sentence instead (ModelOutputError, a2cnn.layers.LayerInputError: shown
# as the sentence and the notebook lines that led to it). An error from deeper inside the student's own forward()
# (a torch.cat of pictures of different sizes, say) would still show torch's module-call frames (30 lines and more);
# none of the cases below meets one, and this bound is not to be raised for them without a reason written here.
MAX_TRACEBACK_LINES = 15
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# The printed sentences a student reads when the data or a model is wrong (from a2cnn and the notebook's cells).
NO_PART_C_DATA = "Part C cannot load its data"
FINETUNE_SKIPPED = "fine-tuning skipped: the flower data is missing"
VISUALISATION_SKIPPED = "visualisation skipped: the flower data is missing"

# A CNN whose second up-sampling group does not up-sample: its pictures come out 16x16 instead of 32x32.
CNN_WITHOUT_SECOND_UPSAMPLING = _with("cnn_model", "nn.Upsample(scale_factor=2), nn.BatchNorm2d(nc)",
                                      "nn.BatchNorm2d(nc)")
# A UNet whose forward forgets to concatenate downconv2's output before upconv1 (built for 4NF channels, given 2NF).
UNET_FORWARD_WITHOUT_SKIP = _with("unet_model", "self.upconv1(torch.cat([rf, down2], dim=1))", "self.upconv1(rf)")


def run_as_student(tmp_path, monkeypatch, mirror_dir, name, edits):
    """Execute the release, answer cells filled (``edits`` instead of the master's where given), as a student's
    Jupyter would in a copy of the release folder; return the executed notebook (the seconds are printed)."""
    folder = tmp_path / "a2-cnn"
    shutil.copytree(RELEASE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    notebook = build(Example(name, f"the student notebook: {name}", edits=edits), folder / "a2-cnn.ipynb")
    for variable in ("A2_OXFORD17_MASKS", "NBGRADER_EXECUTION", "TORCH_HOME"):
        monkeypatch.delenv(variable, raising=False)  # the trimaps stay missing; training cells run
    env = {"A2_FAST": "1", "A2_OFFLINE": "1", "A2_DATA_DIR": str(mirror_dir), "A2_DEVICE": "cpu",
           "A2_CACHE_DIR": str(tmp_path / "cache"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    out = tmp_path / "executed.ipynb"
    seconds = execute_notebook(notebook, out, cwd=folder, env_overrides=env, timeout=600, allow_errors=True)
    print(f"{name}: the release notebook ran in {seconds:.0f} s")
    return nbformat.read(out, as_version=4)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def cell(nb, grade_id=None, containing=None):
    """The code cell with that nbgrader grade_id, or the only one whose source contains ``containing``."""
    found = [c for c in code_cells(nb)
             if (grade_id and c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
             or (containing and containing in c.source)]
    assert len(found) == 1, (grade_id, containing, len(found))
    return found[0]


def printed(cell_):
    return "".join(o.get("text", "") for o in cell_.get("outputs", []) if o.output_type == "stream")


def error_of(cell_):
    """(exception name, message, rendered traceback without colour codes) of the cell's error, or None."""
    errors = [o for o in cell_.get("outputs", []) if o.output_type == "error"]
    if not errors:
        return None
    assert len(errors) == 1
    rendered = ANSI.sub("", "\n".join(errors[0].traceback))
    return errors[0].ename, errors[0].evalue, rendered


def failing_cells(nb):
    return {index: error_of(c) for index, c in enumerate(code_cells(nb)) if error_of(c)}


def assert_short_and_worded(nb):
    """Every error is at most MAX_TRACEBACK_LINES lines and its text is a sentence, not only a name or a number."""
    for index, (name, message, rendered) in failing_cells(nb).items():
        lines = rendered.splitlines()
        assert len(lines) <= MAX_TRACEBACK_LINES, f"code cell {index}: a {len(lines)}-line traceback:\n{rendered}"
        assert len(re.findall(r"[A-Za-z]{3,}", message)) >= 5, f"code cell {index}: {name}: {message!r} says too little"
        assert message in rendered, f"code cell {index}: the message is not shown:\n{rendered}"


def assert_part_c_skipped(nb):
    assert NO_PART_C_DATA in printed(cell(nb, grade_id="load_flowers"))
    assert "trimaps" in printed(cell(nb, grade_id="load_flowers"))
    assert FINETUNE_SKIPPED in printed(cell(nb, containing="seg_model, seg_info = load_deeplabv3()"))
    assert VISUALISATION_SKIPPED in printed(cell(nb, containing="predict_masks(seg_model"))


def test_a_correct_solution_runs_without_an_error_and_part_c_says_its_trimaps_are_missing(tmp_path, monkeypatch,
                                                                                          mirror_dir):
    nb = run_as_student(tmp_path, monkeypatch, mirror_dir, "correct", {})
    assert failing_cells(nb) == {}
    text = "".join(printed(c) for c in code_cells(nb))
    for expected in ["visible CNN checks passed", "visible UNet checks passed", "visible fine-tuning checks passed",
                     "CNN: 1 epochs", "UNet: 1 epochs", "batch size 200:"]:
        assert expected in text
    assert_part_c_skipped(nb)


def test_a_cnn_with_the_wrong_output_size_is_told_so_by_its_test_and_its_training_cell(tmp_path, monkeypatch,
                                                                                      mirror_dir):
    nb = run_as_student(tmp_path, monkeypatch, mirror_dir, "cnn_16x16", CNN_WITHOUT_SECOND_UPSAMPLING)
    failing = failing_cells(nb)
    test_cell = code_cells(nb).index(cell(nb, grade_id="test_cnn"))
    training_cell = code_cells(nb).index(cell(nb, containing="cnn_history = train_colourizer("))
    assert sorted(failing) == [test_cell, training_cell]
    name, message, _ = failing[test_cell]
    assert name == "AssertionError" and message == "CNN output has shape (2, 24, 16, 16), expected (2, 24, 32, 32)"
    name, message, rendered = failing[training_cell]
    assert name == "ModelOutputError"
    assert "(2, 24, 16, 16)" in message and "(2, 24, 32, 32)" in message and "upconv" in message
    assert "Traceback" not in rendered  # one sentence, no stack
    assert_short_and_worded(nb)
    assert_part_c_skipped(nb)


def test_a_unet_that_forgets_a_skip_in_forward_is_told_which_layer_gets_too_few_channels(tmp_path, monkeypatch,
                                                                                         mirror_dir):
    nb = run_as_student(tmp_path, monkeypatch, mirror_dir, "unet_missing_skip", UNET_FORWARD_WITHOUT_SKIP)
    failing = failing_cells(nb)
    cells = code_cells(nb)
    expected = [cells.index(cell(nb, grade_id="test_unet")),
                cells.index(cell(nb, containing="unet_history = train_colourizer(")),
                cells.index(cell(nb, containing="batch_histories[batch_size] = train_colourizer("))]
    assert sorted(failing) == expected
    for index in expected:
        name, message, rendered = failing[index]
        assert name == "LayerInputError", (index, name, message)
        assert message.startswith("upconv1[0], a MyConv2d built for") and "torch.cat" in message, message
        assert "Traceback" not in rendered and "in UNet.forward: up1 = self.upconv1(rf)" in rendered, rendered
    assert_short_and_worded(nb)
    assert_part_c_skipped(nb)
