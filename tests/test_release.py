"""The student release: regenerated identically, free of solutions, hidden tests and model answers."""
import random
import shutil
import string

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

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


def test_release_matches_a_fresh_generation(fresh_release):
    fresh, extra = fresh_release
    assert set(extra) <= {p.name for p in fresh.iterdir()}, "the random notebooks were not released"
    differences = [path for path in release_differences(fresh, RELEASE_DIR) if path not in extra]
    assert differences == [], "release/ is stale: run `python -m coursetools release`"


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


# --- Random notebooks through the project's own release path (coursetools.release, i.e. nbgrader
# generate_assignment with the course's nbgrader_config.py). They ride along with the master notebook in the one
# generation test_release_matches_a_fresh_generation needs anyway: starting nbgrader costs far more than a notebook.

RANDOM_NOTEBOOKS = 24
INDENTS = ["", "    ", "        "]


def random_notebook(rng):
    """A notebook with a solution, a hidden test and a model answer (each a fresh secret) and two shown names."""
    def word(prefix, alphabet, low=8, high=20):
        return prefix + "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    secrets = [word("secret_", string.ascii_lowercase + string.digits + "_") for _ in range(3)]
    shown = [word("shown_", string.ascii_lowercase + "_") for _ in range(2)]
    solution, hidden, answer = secrets
    pad = rng.choice(INDENTS)  # the solution at top level, or in a function body indented by 4 or 8 spaces
    code = f"{pad}{shown[0]} = 1\n{pad}### BEGIN SOLUTION\n{pad}{solution} = 2\n{pad}### END SOLUTION"
    nb = new_notebook(cells=[
        new_code_cell(("def f():\n" if pad else "") + code),
        new_code_cell(f"{shown[1]} = 3\n### BEGIN HIDDEN TESTS\n{hidden} = 4\n### END HIDDEN TESTS"),
        new_markdown_cell(f"{answer}"),
    ])
    grades = [("s", True, False), ("t", False, True), ("m", True, True)]
    for cell, (gid, sol, grade) in zip(nb.cells, grades):
        cell.metadata["nbgrader"] = {"grade_id": gid, "solution": sol, "grade": grade, "locked": False,
                                     "schema_version": 3, "task": False, **({"points": 1} if grade else {})}
    return nb, secrets, shown, pad


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """The release generated now from source/ plus RANDOM_NOTEBOOKS random notebooks:
    (folder, {name: (secrets, shown names, indent of the solution)})."""
    tmp = tmp_path_factory.mktemp("release")
    source = tmp / "source"
    shutil.copytree(SOURCE_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    rng = random.Random(25)
    extra = {}
    for index in range(RANDOM_NOTEBOOKS):
        name = f"zz_random_{index:02d}.ipynb"
        assert not (source / name).exists()
        nb, secrets, shown, pad = random_notebook(rng)
        nbformat.write(nb, source / name)
        extra[name] = (secrets, shown, pad)
    return generate_release(source, tmp / "release"), extra


def test_random_notebooks_lose_every_secret_and_keep_the_rest(fresh_release):
    fresh, extra = fresh_release
    assert len(extra) == RANDOM_NOTEBOOKS and {pad for _, _, pad in extra.values()} == set(INDENTS)
    for name, (secrets, shown, pad) in extra.items():
        released = (fresh / name).read_text()
        for secret in secrets:
            assert secret not in released, f"{name}: {secret} survived the release"
        for text in shown:
            assert text in released, f"{name}: {text} was lost"
        cells = nbformat.reads(released, as_version=4).cells
        assert cells[0].source.endswith(f"{shown[0]} = 1\n{pad}# YOUR CODE HERE\n{pad}raise NotImplementedError()")
        assert cells[1].source == f"{shown[1]} = 3"
        assert cells[2].source.strip() == "YOUR ANSWER HERE"
        assert all(not c.get("outputs") for c in cells if c.cell_type == "code")


def test_the_intro_table_answers_every_error_the_helper_package_shows_as_a_sentence():
    """An error the package shows in place of a traceback (``_render_traceback_``) is one a student meets as a bare
    sentence: the first cell's table of "If something goes wrong" must name each one."""
    import importlib
    import inspect
    import pkgutil
    import sys

    intro = "".join(nbformat.read(RELEASE_DIR / "a2-cnn.ipynb", as_version=4).cells[0].source)
    table = intro[intro.index("If something goes wrong"):]
    sys.path.insert(0, str(SOURCE_DIR))
    try:
        import a2cnn

        shown = set()
        for module in pkgutil.iter_modules(a2cnn.__path__):
            loaded = importlib.import_module(f"a2cnn.{module.name}")
            shown |= {name for name, value in vars(loaded).items() if inspect.isclass(value)
                      and issubclass(value, Exception) and "_render_traceback_" in vars(value)}
    finally:
        sys.path.remove(str(SOURCE_DIR))
    assert shown >= {"LayerInputError", "ModelOutputError"}
    assert {name for name in shown if f"`{name}:" not in table} == set()
