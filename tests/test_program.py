"""autograder.program: the worker's program runs the notebook's cells in order, read-only cells where the master
has them (restored when missing, put back when moved), and says so to the student."""
import copy
import json

from autograder.config import GraderConfig
from autograder.probes import Secrets
from autograder.program import build_program
from autograder.submission import load_master, read_submission, setup_code
from autograder.tiers import TIERS
from coursetools import RELEASE_DIR

RELEASED = json.loads((RELEASE_DIR / "a2-cnn.ipynb").read_text())


def _id(c):
    return c["metadata"].get("nbgrader", {}).get("grade_id")


def _filled(master):
    nb = copy.deepcopy(RELEASED)
    for c in nb["cells"]:
        if c["metadata"].get("nbgrader", {}).get("solution"):
            c["source"] = master[_id(c)].source
    return nb


def _move(nb, grade_id, to):
    """Move the cell ``grade_id`` to index ``to`` (negative: from the end)."""
    index = next(i for i, c in enumerate(nb["cells"]) if _id(c) == grade_id)
    moved = nb["cells"].pop(index)
    nb["cells"].insert(to if to >= 0 else len(nb["cells"]) + 1 + to, moved)


def _program(tmp_path, nb, parts=("cnn",)):
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(nb))
    master = load_master()
    return build_program(read_submission(path), master, list(parts), Secrets(1), TIERS["cpu"], GraderConfig()), master


def _order(program):
    return [s.get("name") or s["id"] for s in program.steps]


def test_an_untouched_notebook_runs_in_order_without_notes(tmp_path):
    program, master = _program(tmp_path, _filled(load_master()))
    order = _order(program)
    assert order.index("setup_imports") < order.index("cnn_model") < order.index("gate:cnn")
    assert program.notes == []


def test_a_moved_setup_cell_runs_in_its_place_and_the_student_is_told(tmp_path):
    nb = _filled(load_master())
    _move(nb, "setup_imports", -1)  # dragged to the very end of the notebook
    program, master = _program(tmp_path, nb)
    order = _order(program)
    assert order.index("setup_imports") < order.index("cnn_model") < order.index("gate:cnn")
    assert program.steps[order.index("setup_imports")]["source"] == setup_code(master)
    assert program.notes == ["The read-only cell 'setup_imports' was moved in your notebook; the grader ran it in its "
                             "original place and graded the notebook normally."]


def test_a_test_cell_moved_to_the_top_runs_after_its_answer(tmp_path):
    nb = _filled(load_master())
    _move(nb, "test_cnn", 0)  # above the setup cell and the CNN's answer cell
    program, _ = _program(tmp_path, nb)
    order = _order(program)
    assert order.index("cnn_model") < order.index("gate:cnn")
    assert len(program.notes) == 1 and "'test_cnn' was moved" in program.notes[0]


def test_a_moved_answer_cell_stays_where_the_student_put_it(tmp_path):
    """Answer cells are the student's: the grader runs them where they are (as nbgrader would: a UNet cell moved
    below its test cell is not defined when the tests run), and read-only cells are not blamed for it."""
    nb = _filled(load_master())
    _move(nb, "unet_model", -1)
    program, _ = _program(tmp_path, nb, parts=("cnn", "unet"))
    order = _order(program)
    assert "gate:unet" in order and "unet_model" not in order[:order.index("gate:unet")]
    assert order.index("setup_imports") < order.index("cnn_model") < order.index("gate:cnn")
    assert program.notes == []


def test_the_longest_ordered_run_is_kept():
    from autograder.program import _longest_ordered

    assert _longest_ordered([0, 1, 2, 3]) == {0, 1, 2, 3}
    assert _longest_ordered([5, 0, 1, 2]) == {1, 2, 3}       # the first one moved up
    assert _longest_ordered([1, 2, 3, 0]) == {0, 1, 2}       # the last one moved down
    assert _longest_ordered([]) == set()
