"""The master notebook's reference solution as a grading namespace (setup imports + the solution cells).

Cells are found by nbgrader grade_id, as the grader finds them. ``build_namespace`` mirrors what the sandbox
child hands to the checks: the master's setup imports, the pristine a2cnn modules, then the (student's, here the
reference's) definitions executed into the same dict, so their functions' globals are that dict.
"""
import functools
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
MASTER_NOTEBOOK = REPO_ROOT / "source" / "a2-cnn" / "a2-cnn.ipynb"
SOLUTION_CELLS = ("cnn_model", "unet_model", "finetune_train", "finetune_setup")


@functools.lru_cache(maxsize=None)
def master_cells():
    """grade_id -> source of every nbgrader cell of the master notebook."""
    notebook = nbformat.read(str(MASTER_NOTEBOOK), as_version=4)
    cells = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            cells[grade_id] = cell.source
    return cells


def reference_source(grade_id):
    return master_cells()[grade_id]


def base_namespace(with_loop=True):
    """What the master's setup imports (and the Part C imports) put in the notebook's namespace."""
    import numpy as np
    import torch
    import torch.nn as nn

    from a2cnn import finetune, settings
    from a2cnn.layers import MyConv2d

    ns = {"__name__": "__submission__", "np": np, "torch": torch, "nn": nn, "settings": settings,
          "MyConv2d": MyConv2d, "evaluate": finetune.evaluate, "predict_masks": finetune.predict}
    if with_loop:
        ns["run_finetune_epochs"] = finetune.run_finetune_epochs
    return ns


def build_namespace(overrides=None, omit=(), with_loop=True):
    """Namespace with the reference definitions, ``overrides`` (grade_id -> source) executed instead of theirs.

    ``omit``: grade_ids whose definitions are left out (as if the student deleted them).
    """
    overrides = dict(overrides or {})
    ns = base_namespace(with_loop=with_loop)
    for grade_id in SOLUTION_CELLS:
        if grade_id in omit:
            continue
        source = overrides.pop(grade_id, None)
        if source is None:
            source = reference_source(grade_id)
        exec(compile(source, f"<{grade_id}>", "exec"), ns)
    if overrides:
        raise KeyError(f"unknown grade_ids {sorted(overrides)}; solution cells are {SOLUTION_CELLS}")
    return ns
