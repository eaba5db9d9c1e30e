"""The reference solution, read from the master notebook: what calibration trains and what tests grade.

The definitions come from the solution cells of ``source/a2-cnn/a2-cnn.ipynb`` found by nbgrader ``grade_id``
(``cnn_model``, ``unet_model``, ``finetune_train``, ``finetune_setup``), so the thresholds are always calibrated on
the code the course actually publishes as its solution. Only definitions (imports, classes, functions) are executed,
against the pristine ``a2cnn`` package of ``source/a2-cnn`` (put first on ``sys.path``). This is the course's own
trusted code, run in the grader's process; a submission's code only ever runs in sandboxed workers.
"""
import contextlib
import io
import sys
from pathlib import Path

from .submission import load_master, setup_code

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "source" / "a2-cnn"
MASTER_NOTEBOOK = SOURCE_DIR / "a2-cnn.ipynb"
REFERENCE_CELLS = ("cnn_model", "unet_model", "finetune_train", "finetune_setup")
REFERENCE_NAMES = ("CNN", "UNet", "train", "freeze_and_replace")


class ReferenceError(RuntimeError):
    """The master notebook lacks a reference cell or definition."""


def ensure_helper_on_path():
    """Put the pristine ``source/a2-cnn`` (holding ``a2cnn/``) first on ``sys.path``."""
    path = str(SOURCE_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)


def cell_sources(notebook=MASTER_NOTEBOOK, grade_ids=REFERENCE_CELLS):
    """``{grade_id: source}`` of the cells with these nbgrader grade ids; raises if one is missing."""
    cells = load_master(notebook)
    missing = [g for g in grade_ids if g not in cells]
    if missing:
        raise ReferenceError(f"{notebook} has no cell with grade_id {', '.join(missing)}")
    return {g: cells[g].source for g in grade_ids}


def _run(ns, source, name):
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    exec(compile(code, f"<{name}>", "exec"), ns)


def base_namespace(notebook=MASTER_NOTEBOOK):
    """What the master's setup cell provides to the answer cells (its imports, IPython magics left out)."""
    ensure_helper_on_path()
    ns = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        _run(ns, setup_code(load_master(notebook)), "setup_imports")
    return ns


def load_reference(notebook=MASTER_NOTEBOOK):
    """Namespace holding the reference ``CNN``, ``UNet``, ``train`` and ``freeze_and_replace``.

    The setup cell and then the solution cells run as the notebook runs them.
    """
    ns = base_namespace(notebook)
    for grade_id, source in cell_sources(notebook).items():
        _run(ns, source, grade_id)
    missing = [n for n in REFERENCE_NAMES if n not in ns]
    if missing:
        raise ReferenceError(f"the reference cells of {notebook} do not define {', '.join(missing)}")
    return ns
