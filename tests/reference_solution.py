"""The master notebook's reference solution as a grading namespace (setup imports + the solution cells).

Cells are found by nbgrader grade_id, as the grader finds them. ``build_namespace`` mirrors what the sandbox
child hands to the checks: the master's setup imports, the pristine a2cnn modules, then the (student's, here the
reference's) definitions executed into the same dict, so their functions' globals are that dict.
"""
from pathlib import Path

from autograder import reference
from autograder.submission import load_master

REPO_ROOT = Path(__file__).resolve().parents[1]
MASTER_NOTEBOOK = REPO_ROOT / "source" / "a2-cnn" / "a2-cnn.ipynb"
SOLUTION_CELLS = ("cnn_model", "unet_model", "finetune_train", "finetune_setup")


def master_cells():
    """grade_id -> source of every nbgrader cell of the master notebook."""
    return {grade_id: cell.source for grade_id, cell in load_master(MASTER_NOTEBOOK).items()}


def reference_source(grade_id):
    return master_cells()[grade_id]


def base_namespace(with_loop=True):
    """What the master's setup cell puts in the notebook's namespace, built as the grader builds it."""
    ns = reference.base_namespace(MASTER_NOTEBOOK)
    if not with_loop:
        ns.pop("run_finetune_epochs", None)
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
