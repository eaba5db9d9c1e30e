"""autograder.submission: reading a submitted notebook never raises; cells by grade id; broken contract reported."""
import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autograder.submission import (
    CONTRACT, MASTER, PART_CELLS, PART_TEST_CELLS, Submission, kind_of, load_master, normalise, read_submission,
    release_checksum, setup_code, strip_hidden_tests, visible_test_code,
)
from coursetools import RELEASE_DIR, SOURCE_DIR

RELEASED = RELEASE_DIR / "a2-cnn.ipynb"
PART_IDS = {part: PART_CELLS[part] + [PART_TEST_CELLS[part]] for part in PART_CELLS}


def _joined(source):
    return "".join(source) if isinstance(source, list) else source


def _release_is_current(path):
    """Independent of the code under test: same grade ids as the master, same locked sources (hidden tests cut)."""
    if not path.is_file():
        return False
    master = {c["metadata"]["nbgrader"]["grade_id"]: c for c in json.loads(MASTER.read_text())["cells"] if "nbgrader" in c["metadata"]}
    released = {c["metadata"]["nbgrader"]["grade_id"]: c for c in json.loads(path.read_text())["cells"] if "nbgrader" in c["metadata"]}
    if master.keys() != released.keys():
        return False
    hidden = re.compile(r"^[^\n]*BEGIN HIDDEN TESTS.*?END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
    return all(hidden.sub("", _joined(c["source"])).rstrip() == _joined(released[g]["source"]).rstrip()
               for g, c in master.items() if not c["metadata"]["nbgrader"].get("solution"))


@pytest.fixture(scope="session")
def release_path(tmp_path_factory):
    """The committed release, or (while someone edits the master and release/ is stale) a fresh nbgrader one."""
    if _release_is_current(RELEASED):
        return RELEASED
    from coursetools.release import generate_release
    return generate_release(SOURCE_DIR, tmp_path_factory.mktemp("fresh") / "release") / "a2-cnn.ipynb"


@pytest.fixture
def released(release_path):
    return json.loads(release_path.read_text())


@pytest.fixture(scope="session")
def master():
    return load_master()


def cell(nb, grade_id):
    matches = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(matches) == 1, grade_id
    return matches[0]


def write(tmp_path, nb, name="submission.ipynb"):
    path = tmp_path / name
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def filled(released, master):
    """The release with every answer cell holding the master's solution (as a perfect student would)."""
    nb = copy.deepcopy(released)
    for c in nb["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            c["source"] = master[meta["grade_id"]].source
    return nb


# --- The notebooks as they are -------------------------------------------------------------------------------------

def test_master_satisfies_the_contract_and_the_part_tables(master):
    for grade_id, kind in CONTRACT.items():
        assert kind_of(master[grade_id]["metadata"]["nbgrader"]) == kind, grade_id
    for part, ids in PART_CELLS.items():
        assert all(CONTRACT[g] == "answer" and master[g].cell_type == "code" for g in ids)
        assert CONTRACT[PART_TEST_CELLS[part]] == "tests"
    assert set(PART_CELLS) == set(PART_TEST_CELLS)


def test_the_release_as_is_has_no_problems(release_path, released):
    sub = read_submission(release_path)
    assert (sub.fatal, sub.problems, sub.unknown_ids) == (None, {}, [])
    assert sub.ok and set(CONTRACT) <= set(sub.cells)
    assert sub.source("cnn_model") == _joined(cell(released, "cnn_model")["source"])
    assert "raise NotImplementedError()" in sub.source("unet_model")
    assert all(sub.affected(ids) == [] for ids in PART_IDS.values())


def test_a_perfect_submission_has_no_problems_and_gives_the_solutions(tmp_path, released, master):
    sub = read_submission(write(tmp_path, filled(released, master)))
    assert (sub.fatal, sub.problems) == (None, {})
    for grade_id in ["cnn_model", "unet_model", "finetune_train", "finetune_setup"]:
        assert sub.source(grade_id) == master[grade_id].source


def test_the_master_itself_passes_with_its_hidden_tests_and_no_checksums():
    sub = read_submission(MASTER)
    assert (sub.fatal, sub.problems) == (None, {})


def test_release_checksums_are_nbgraders(released, master):
    from nbformat import from_dict
    from nbgrader.utils import compute_checksum

    checked = 0
    for c in released["cells"]:
        meta = c["metadata"].get("nbgrader")
        if meta and meta.get("locked"):
            node = from_dict({**c, "source": _joined(c["source"])})
            assert meta["checksum"] == compute_checksum(node) == release_checksum(master[meta["grade_id"]])
            checked += 1
    assert checked >= 10


def test_visible_tests_are_the_released_test_cells_and_setup_is_the_masters(released, master):
    for part, grade_id in PART_TEST_CELLS.items():
        visible = visible_test_code(master, part)
        assert "HIDDEN" not in visible
        assert ("assert" in visible) == (part != "learning")  # the training checks have no visible part
        assert visible == _joined(cell(released, grade_id)["source"])
        assert visible != master[grade_id].source  # there are hidden tests to remove
    assert setup_code(master) == master["setup_imports"].source and "import torch" in setup_code(master)
    assert strip_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"
    with pytest.raises(ValueError):
        strip_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb")


# --- Files that cannot be used at all ------------------------------------------------------------------------------

def _text_of(released):
    return json.dumps(released, indent=1)


FATAL = {
    "empty file": (lambda r: b"", "is empty"),
    "white space only": (lambda r: b"  \n\t\n", "is empty"),
    "binary garbage": (lambda r: b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)), "not UTF-8"),
    "latin-1 text": (lambda r: "{\"caf\xe9\": 1}".encode("latin-1"), "not UTF-8"),
    "not JSON": (lambda r: b"print('hello')\n", "not valid JSON (Expecting value at line 1, column 1)"),
    "truncated": (lambda r: _text_of(r).encode()[: len(_text_of(r)) // 2], "not valid JSON"),
    "JSON list": (lambda r: b"[1, 2, 3]", "holds a JSON list"),
    "JSON string": (lambda r: b'"notebook"', "holds a JSON string"),
    "JSON null": (lambda r: b"null", "holds a JSON null"),
    "object without cells": (lambda r: b'{"name": "a2-cnn"}', "not a Jupyter notebook (no 'nbformat' and 'cells')"),
    "nbformat 5": (lambda r: json.dumps({**r, "nbformat": 5}).encode(), "notebook format 5"),
    "nbformat as text": (lambda r: json.dumps({**r, "nbformat": "4"}).encode(), "notebook format '4'"),
    "nbformat true": (lambda r: json.dumps({**r, "nbformat": True}).encode(), "notebook format True"),
    "cell without source": (lambda r: json.dumps({**r, "cells": [{"cell_type": "code", "metadata": {}}]}).encode(), "fails the notebook format check"),
    "source is a number": (lambda r: json.dumps({**r, "cells": [{**r["cells"][1], "source": 5}]}).encode(), "fails the notebook format check"),
    "cell is a number": (lambda r: json.dumps({**r, "cells": [5]}).encode(), "fails the notebook format check"),
    "markdown cell with outputs": (lambda r: json.dumps({**r, "cells": [{**r["cells"][1], "cell_type": "markdown", "outputs": [], "execution_count": None}]}).encode(), "fails the notebook format check"),
    "no metadata": (lambda r: json.dumps({k: v for k, v in r.items() if k != "metadata"}).encode(), "fails the notebook format check"),
}


@pytest.mark.parametrize("case", sorted(FATAL))
def test_unusable_files_give_a_fatal_message_and_no_cells(tmp_path, released, case):
    make, phrase = FATAL[case]
    path = tmp_path / "submission.ipynb"
    path.write_bytes(make(released))
    sub = read_submission(path)
    assert sub.fatal is not None and phrase in sub.fatal, sub.fatal
    assert "submission.ipynb" in sub.fatal and str(tmp_path) not in sub.fatal  # the student's file name, not our path
    _assert_fatal_shape(sub)


def _assert_fatal_shape(sub):
    assert isinstance(sub, Submission)
    assert (sub.cells, sub.problems, sub.ok) == ({}, {}, False)
    assert sub.source("cnn_model") is None
    assert sub.affected(["cnn_model"]) == [sub.fatal]


def test_missing_file_folder_and_oversized_file_are_fatal(tmp_path, release_path):
    sub = read_submission(tmp_path / "nothing.ipynb")
    assert "the file 'nothing.ipynb' does not exist" in sub.fatal
    _assert_fatal_shape(sub)
    sub = read_submission(tmp_path)
    assert "is a folder, not a notebook file" in sub.fatal
    _assert_fatal_shape(sub)
    sub = read_submission(release_path, max_bytes=1000)
    assert "too large to grade" in sub.fatal
    _assert_fatal_shape(sub)


def test_unreadable_file_is_fatal(tmp_path, release_path, monkeypatch):
    """The grader often runs as root, where chmod 0 does not stop reading: the permission error is simulated at
    the open call the reader makes (only for this file)."""
    import builtins

    path = tmp_path / "locked.ipynb"
    path.write_bytes(release_path.read_bytes())
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    sub = read_submission(path)
    monkeypatch.undo()
    assert "permission denied" in sub.fatal and "locked.ipynb" in sub.fatal and str(tmp_path) not in sub.fatal
    _assert_fatal_shape(sub)


def test_old_format_3_notebooks_are_converted(tmp_path):
    nb = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "x = 1", "language": "python", "metadata": {}, "outputs": [], "collapsed": False}],
        "metadata": {}}]}
    sub = read_submission(write(tmp_path, nb))
    assert sub.fatal is None
    assert set(sub.problems) == set(load_master())  # every cell is missing, but the file itself is readable
    assert all("is missing from your notebook" in m for m in sub.problems.values())


# --- Broken contracts ----------------------------------------------------------------------------------------------

def _only(sub, grade_id, *phrases):
    assert sub.fatal is None
    assert set(sub.problems) == {grade_id}, sub.problems
    for phrase in phrases:
        assert phrase in sub.problems[grade_id], sub.problems[grade_id]
    return sub.problems[grade_id]


def test_deleted_answer_cell(tmp_path, released, master):
    nb = filled(released, master)
    nb["cells"].remove(cell(nb, "cnn_model"))
    sub = read_submission(write(tmp_path, nb))
    _only(sub, "cnn_model", "The cell 'cnn_model' is missing from your notebook: it was deleted or its nbgrader id was renamed.")
    assert sub.source("cnn_model") is None
    assert sub.affected(PART_IDS["cnn"]) == [sub.problems["cnn_model"]]
    assert sub.affected(PART_IDS["unet"]) == [] and sub.affected("cnn_model") == [sub.problems["cnn_model"]]


def test_deleted_test_cell_and_deleted_text(tmp_path, released):
    nb = copy.deepcopy(released)
    nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") not in ("test_unet", "intro")]
    sub = read_submission(write(tmp_path, nb))
    assert set(sub.problems) == {"test_unet", "intro"}
    assert sub.affected(PART_IDS["unet"]) == [sub.problems["test_unet"]]


def test_renamed_grade_id(tmp_path, released, master):
    nb = filled(released, master)
    cell(nb, "unet_model")["metadata"]["nbgrader"]["grade_id"] = "unet_model_v2"
    sub = read_submission(write(tmp_path, nb))
    _only(sub, "unet_model", "is missing from your notebook", "unknown ids: 'unet_model_v2'")
    assert sub.unknown_ids == ["unet_model_v2"] and sub.source("unet_model") is None


def test_nbgrader_metadata_that_is_not_a_dict_hides_the_cell(tmp_path, released):
    nb = copy.deepcopy(released)
    cell(nb, "finetune_setup")["metadata"]["nbgrader"] = "finetune_setup"
    _only(read_submission(write(tmp_path, nb)), "finetune_setup", "is missing")


def test_duplicate_grade_id_keeps_the_first(tmp_path, released, master):
    nb = filled(released, master)
    first = cell(nb, "finetune_train")
    second = copy.deepcopy(first)
    second["id"] = "copyofit"
    second["source"] = "def train(*args):\n    return []\n"
    nb["cells"].insert(nb["cells"].index(first) + 1, second)
    sub = read_submission(write(tmp_path, nb))
    _only(sub, "finetune_train", "The cell 'finetune_train' appears 2 times in your notebook", "the copies run as ordinary cells")
    assert sub.source("finetune_train") == master["finetune_train"].source
    assert sub.affected(PART_IDS["finetune"]) == [sub.problems["finetune_train"]]


def test_changed_cell_type(tmp_path, released, master):
    nb = filled(released, master)
    c = cell(nb, "cnn_model")
    c["cell_type"] = "markdown"
    del c["outputs"], c["execution_count"]
    sub = read_submission(write(tmp_path, nb))
    _only(sub, "cnn_model", "The cell 'cnn_model' should be a code cell, but in your notebook it is a markdown cell.")
    assert sub.source("cnn_model") is None and "cnn_model" in sub.cells
    nb = copy.deepcopy(released)
    cell(nb, "answer_b3_compare")["cell_type"] = "raw"
    _only(read_submission(write(tmp_path, nb)), "answer_b3_compare", "should be a markdown cell", "it is a raw cell")


def test_edited_locked_test_cell(tmp_path, released, master):
    nb = filled(released, master)
    c = cell(nb, "test_cnn")
    c["source"] = "".join(line for line in c["source"] if not line.startswith("assert"))  # visible asserts deleted
    sub = read_submission(write(tmp_path, nb))
    message = _only(sub, "test_cnn", "The read-only cell 'test_cnn' was edited (line 4 differs", "the grader ran the original cell")
    assert "checksum" not in message  # the stored checksum was left alone
    assert sub.affected(PART_IDS["cnn"]) == [message] and sub.affected(PART_IDS["unet"]) == []


def test_appended_and_truncated_locked_cells(tmp_path, released):
    nb = copy.deepcopy(released)
    cell(nb, "test_unet")["source"] = _joined(cell(nb, "test_unet")["source"]) + "\nassert True\n"
    _only(read_submission(write(tmp_path, nb)), "test_unet", "line 9 was added")
    cell(nb, "test_unet")["source"] += "assert 1\nassert 2\n"
    _only(read_submission(write(tmp_path, nb)), "test_unet", "lines 9 to 11 were added")
    nb = copy.deepcopy(released)
    cell(nb, "test_unet")["source"] = _joined(cell(nb, "test_unet")["source"]).split("\n")[0]
    _only(read_submission(write(tmp_path, nb)), "test_unet", "lines 2 to 8 were deleted")


def test_edited_setup_cell(tmp_path, released):
    nb = copy.deepcopy(released)
    c = cell(nb, "setup_imports")
    c["source"] = ["import os\n"] + c["source"]
    sub = read_submission(write(tmp_path, nb))
    _only(sub, "setup_imports", "The read-only cell 'setup_imports' was edited (line 1 differs ('import os'))")
    assert sub.affected(["setup_imports"]) == [sub.problems["setup_imports"]]


def test_edited_locked_text_cell(tmp_path, released):
    nb = copy.deepcopy(released)
    cell(nb, "question_a1")["source"] = "I rewrote the question."
    _only(read_submission(write(tmp_path, nb)), "question_a1", "The read-only cell 'question_a1' was edited")


def test_tampered_checksum(tmp_path, released):
    nb = copy.deepcopy(released)
    cell(nb, "test_finetune")["metadata"]["nbgrader"]["checksum"] = "0" * 32
    message = _only(read_submission(write(tmp_path, nb)), "test_finetune",
                    "The nbgrader checksum of the read-only cell 'test_finetune' was altered or removed.")
    assert "edited" not in message
    del cell(nb, "test_finetune")["metadata"]["nbgrader"]["checksum"]
    _only(read_submission(write(tmp_path, nb)), "test_finetune", "checksum")


def test_edit_with_a_recomputed_checksum_is_still_an_edit(tmp_path, released):
    from nbformat import from_dict
    from nbgrader.utils import compute_checksum

    nb = copy.deepcopy(released)
    c = cell(nb, "test_cnn")
    c["source"] = "print('visible CNN checks passed')\n"
    c["metadata"]["nbgrader"]["checksum"] = compute_checksum(from_dict(c))  # "honest" metadata for the forged source
    _only(read_submission(write(tmp_path, nb)), "test_cnn", "was edited", "checksum")


def test_changed_nbgrader_flags_and_points(tmp_path, released):
    nb = copy.deepcopy(released)
    cell(nb, "test_cnn")["metadata"]["nbgrader"]["points"] = 100
    _only(read_submission(write(tmp_path, nb)), "test_cnn", "The nbgrader metadata of the cell 'test_cnn' was changed ('points' is 100, should be 2)")
    nb = copy.deepcopy(released)
    cell(nb, "setup_imports")["metadata"]["nbgrader"]["locked"] = False
    _only(read_submission(write(tmp_path, nb)), "setup_imports", "'locked' is False, should be True")
    nb = copy.deepcopy(released)
    cell(nb, "test_unet")["metadata"]["nbgrader"].update(solution=True, points="lots")
    _only(read_submission(write(tmp_path, nb)), "test_unet", "'solution' is True, should be False", "'points' is 'lots'")


def test_harmless_differences_are_not_problems(tmp_path, released, master):
    nb = filled(released, master)
    test_cell, setup = cell(nb, "test_cnn"), cell(nb, "setup_imports")
    test_cell["source"] = "\r\n".join(line.rstrip("\n") + "   " for line in test_cell["source"]) + "\n\n"  # CRLF, trailing blanks
    setup["source"] = _joined(setup["source"])  # one string instead of a list of lines
    cell(nb, "cnn_model")["metadata"]["nbgrader"]["checksum"] = "anything"  # answer cells are the student's
    cell(nb, "test_unet")["source"] = master["test_unet"].source  # the full master version (hidden tests included)
    nb["cells"].reverse()  # cells are found by grade id, never by position
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "scratch1", "metadata": {}, "outputs": [], "source": "x = 1"})
    sub = read_submission(write(tmp_path, nb))
    assert (sub.fatal, sub.problems) == (None, {})
    assert normalise(sub.cells["test_cnn"].source) == normalise(visible_test_code(master, "cnn"))


def test_several_problems_on_one_cell_are_joined(tmp_path, released):
    nb = copy.deepcopy(released)
    c = cell(nb, "test_cnn")
    c["source"] = "pass"
    c["metadata"]["nbgrader"]["checksum"] = "x"
    nb["cells"].append(copy.deepcopy(c) | {"id": "another1"})
    message = _only(read_submission(write(tmp_path, nb)), "test_cnn", "appears 2 times", "was edited", "checksum")
    assert message.index("appears") < message.index("edited") < message.index("checksum")


# --- Random submissions never raise --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _check_shape(sub):
    assert isinstance(sub, Submission)
    if sub.fatal is not None:
        assert isinstance(sub.fatal, str) and sub.fatal and sub.cells == {} and sub.problems == {}
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in sub.problems.items())
        assert all(isinstance(k, str) for k in sub.cells)
        for grade_id in CONTRACT:
            assert sub.source(grade_id) is None or isinstance(sub.source(grade_id), str)
            assert isinstance(sub.affected([grade_id]), list)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("random") / "submission.ipynb"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(scratch, data):
    scratch.write_bytes(data)
    sub = read_submission(scratch)
    _check_shape(sub)
    assert sub.fatal is not None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=json_values | st.fixed_dictionaries({"nbformat": st.integers(2, 5), "nbformat_minor": st.integers(0, 5), "metadata": json_values, "cells": json_values}))
def test_random_json_never_raises(scratch, value):
    scratch.write_text(json.dumps(value))
    _check_shape(read_submission(scratch))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_damage_to_the_release_never_raises(scratch, released, data):
    nb = copy.deepcopy(released)
    paths = [p for p in _paths(nb) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        target = nb
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced the container
    scratch.write_text(json.dumps(nb))
    _check_shape(read_submission(scratch))
