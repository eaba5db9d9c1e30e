"""The reference solution, read from the master notebook: what calibration trains and what tests grade.

The definitions come from the solution cells of ``source/a2-cnn/a2-cnn.ipynb`` found by nbgrader ``grade_id``
(``cnn_model``, ``unet_model``, ``finetune_train``, ``finetune_setup``), so the thresholds are always calibrated on
the code the course actually publishes as its solution. Only definitions (imports, classes, functions) are executed,
against the pristine ``a2cnn`` package of ``source/a2-cnn`` (put first on ``sys.path``).
"""
import sys
from pathlib import Path

from .namespace import add_student_definitions, run_setup
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


def base_namespace(notebook=MASTER_NOTEBOOK):
    """What the master's setup cell provides to the answer cells, built exactly as for a submission."""
    ensure_helper_on_path()
    return run_setup(setup_code(load_master(notebook)))


def load_reference(notebook=MASTER_NOTEBOOK):
    """Namespace holding the reference ``CNN``, ``UNet``, ``train`` and ``freeze_and_replace``.

    Loaded the way the grader loads a submission (``autograder.namespace``), so calibration measures the reference
    in the same namespace a student's code is graded in.
    """
    ns = base_namespace(notebook)
    problems = add_student_definitions(ns, cell_sources(notebook))
    missing = [n for n in REFERENCE_NAMES if n not in ns]
    if problems or missing:
        raise ReferenceError(f"the reference cells of {notebook} do not load: {problems or ''} {missing or ''}")
    return ns
