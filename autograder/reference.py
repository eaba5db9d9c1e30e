"""The reference solution, read from the master notebook: what calibration trains and what tests grade.

The definitions come from the solution cells of ``source/a2-cnn/a2-cnn.ipynb`` found by nbgrader ``grade_id``
(``cnn_model``, ``unet_model``, ``finetune_train``, ``finetune_setup``), so the thresholds are always calibrated on
the code the course actually publishes as its solution. Only definitions (imports, classes, functions) are executed,
against the pristine ``a2cnn`` package of ``source/a2-cnn`` (put first on ``sys.path``).
"""
import ast
import sys
from pathlib import Path

import nbformat

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
    nb = nbformat.read(str(notebook), as_version=4)
    found = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in grade_ids:
            found[grade_id] = cell.source
    missing = [g for g in grade_ids if g not in found]
    if missing:
        raise ReferenceError(f"{notebook} has no cell with grade_id {', '.join(missing)}")
    return found


def _definitions(source, name):
    """Only the imports, classes and functions of a cell (no top-level statements with effects)."""
    tree = ast.parse(source, filename=name)
    keep = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    tree.body = [node for node in tree.body if isinstance(node, keep)]
    return compile(tree, name, "exec")


def base_namespace():
    """What the notebook's setup and Part C loading cells provide to the answer cells."""
    ensure_helper_on_path()
    import numpy as np
    import torch
    import torch.nn as nn
    from a2cnn.finetune import run_finetune_epochs
    from a2cnn.layers import MyConv2d

    return {"__name__": "a2cnn_reference", "np": np, "torch": torch, "nn": nn, "MyConv2d": MyConv2d,
            "run_finetune_epochs": run_finetune_epochs}


def load_reference(notebook=MASTER_NOTEBOOK):
    """Namespace holding the reference ``CNN``, ``UNet``, ``train`` and ``freeze_and_replace``."""
    ns = base_namespace()
    for grade_id, source in cell_sources(notebook).items():
        exec(_definitions(source, f"<reference {grade_id}>"), ns)
    missing = [n for n in REFERENCE_NAMES if n not in ns]
    if missing:
        raise ReferenceError(f"the reference cells of {notebook} do not define {', '.join(missing)}")
    return ns
