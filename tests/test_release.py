"""The student release: regenerated identically, free of solutions, hidden tests and model answers."""
import json
import re

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from traitlets.config import Config

from autograder import submission
from coursetools import MASTER_NOTEBOOK, RELEASE_DIR, SOURCE_DIR
from coursetools.release import generate_release, release_differences

RELEASED_NOTEBOOK = RELEASE_DIR / "a2-cnn.ipynb"

CONTRACT = submission.CONTRACT  # the grader's own copy of the notebook contract


def cells_by_id(path):
    nb = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


kind = submission.kind_of


def solution_lines(source):
    """Non-trivial lines between BEGIN/END SOLUTION markers."""
    lines, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
            inside = False
        elif inside and len(line.strip()) > 12:
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("path", [MASTER_NOTEBOOK, RELEASED_NOTEBOOK], ids=["source", "release"])
def test_every_contract_cell_is_present_with_its_kind(path):
    cells = cells_by_id(path)
    for grade_id, expected in CONTRACT.items():
        assert grade_id in cells, f"{path.name} lacks cell {grade_id}"
        assert kind(cells[grade_id].metadata["nbgrader"]) == expected, grade_id


def test_release_matches_a_fresh_generation(tmp_path):
    fresh = generate_release(SOURCE_DIR, tmp_path / "release")
    assert release_differences(fresh, RELEASE_DIR) == [], "release/ is stale: run `python -m coursetools release`"


def test_release_holds_no_solution_hidden_test_or_model_answer():
    source = cells_by_id(MASTER_NOTEBOOK)
    released_text = RELEASED_NOTEBOOK.read_text()
    for marker in ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "Model answer"]:
        assert marker not in released_text
    released = cells_by_id(RELEASED_NOTEBOOK)
    for grade_id, cell in source.items():
        for line in solution_lines(cell.source):
            assert line not in released[grade_id].source, f"solution line of {grade_id} leaked: {line!r}"
        if kind(cell.metadata["nbgrader"]) == "manual":
            assert released[grade_id].source.strip() == "YOUR ANSWER HERE"
    assert all(not c.get("outputs") for c in nbformat.read(RELEASED_NOTEBOOK, as_version=4).cells if c.cell_type == "code")


def test_release_ships_the_helper_package_but_no_caches():
    shipped = {p.relative_to(RELEASE_DIR).as_posix() for p in RELEASE_DIR.rglob("*") if p.is_file()}
    for required in ["a2cnn/layers.py", "a2cnn/training.py", "a2cnn/palette_kmeans24.npy"]:
        assert required in shipped
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")]


# --- Random notebooks through nbgrader's own release preprocessors -------------------------------------------

SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=8, max_size=20).map(lambda s: f"secret_{s}")
VISIBLE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=8, max_size=20).map(lambda s: f"shown_{s}")


def release_preprocess(nb):
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions

    config = Config()
    exec(compile((SOURCE_DIR.parents[1] / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"), {"get_config": lambda: config, "__file__": str(SOURCE_DIR.parents[1] / "nbgrader_config.py")})
    resources = {}
    for pre in (ClearSolutions(config=config), ClearHiddenTests(config=config), ClearMarkScheme(config=config), ClearOutput(config=config)):
        nb, resources = pre.preprocess(nb, resources)
    return nb


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets=st.lists(SECRET, min_size=3, max_size=3, unique=True), shown=st.lists(VISIBLE, min_size=2, max_size=2, unique=True), indent=st.sampled_from(["", "    ", "        "]))
def test_random_notebooks_lose_every_secret_and_keep_the_rest(secrets, shown, indent):
    solution, hidden, answer = secrets
    nb = new_notebook(cells=[
        new_code_cell(f"def f():\n{indent or '    '}{shown[0]} = 1\n{indent or '    '}### BEGIN SOLUTION\n{indent or '    '}{solution} = 2\n{indent or '    '}### END SOLUTION"),
        new_code_cell(f"{shown[1]} = 3\n### BEGIN HIDDEN TESTS\n{hidden} = 4\n### END HIDDEN TESTS"),
        new_markdown_cell(f"{answer}"),
    ])
    grades = [("s", True, False), ("t", False, True), ("m", True, True)]
    for cell, (gid, sol, grade) in zip(nb.cells, grades):
        cell.metadata["nbgrader"] = {"grade_id": gid, "solution": sol, "grade": grade, "locked": False, "schema_version": 3, "task": False, **({"points": 1} if grade else {})}
    released = json.dumps(release_preprocess(nb))
    for secret in secrets:
        assert secret not in released
    for text in shown:
        assert text in released
    assert re.search(r"raise NotImplementedError", released)
