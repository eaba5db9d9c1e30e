"""Student-visible text: bounded, path-scrubbed, nothing of the grader's files; details go to the instructor log."""
import json
import sys

import pytest

from autograder import feedback
from autograder.cli import main as cli_main
from autograder.report import CheckResult, GradeReport, PartReport
from autograder.gradescope import MAX_RESULTS_BYTES, results_text
from autograder.results import instructor_log_path, write_json
from tests.corpus import BY_NAME, REPO_ROOT, RELEASED, build
from tests.results_schema import assert_valid_results

MASTER = REPO_ROOT / "source" / "a2-cnn" / "a2-cnn.ipynb"


def _code_lines(path):
    cells = json.loads(path.read_text())["cells"]
    return {line.strip() for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()}


def master_only_lines():
    """Lines of the master's code cells that the release does not have (solutions, hidden tests), long enough to
    be unmistakable."""
    return {line for line in _code_lines(MASTER) - _code_lines(RELEASED) if len(line) >= 25}


# ---- the text functions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/root/.pyenv/versions/3.11.7/bin/python", "/tmp/a2-sandbox-x1/work/cell.py",
                                  "C:\\Users\\me\\a2\\grade.py", "~/.cache/torch/hub", "/work/shared/data/"])
def test_paths_are_scrubbed_wherever_they_appear(path):
    text = feedback.scrub(f"cannot open '{path}': no such file ({path})")
    assert path.rstrip("/") not in text and "<path>" in text


def test_ordinary_words_with_slashes_are_kept():
    assert feedback.scrub("loss 1.5 / 2 points, and/or the val/train split") == "loss 1.5 / 2 points, and/or the val/train split"


def test_control_and_direction_characters_are_removed():
    assert feedback.scrub("ok\x1b[31m red\u202e evil\x00") == "ok [31m red  evil "


def test_bound_marks_what_it_cuts():
    assert feedback.bound("x" * 10, 10) == "x" * 10
    cut = feedback.bound("x" * 11, 10)
    assert len(cut) == 10 and cut.endswith("...")


def test_an_error_excerpt_is_its_type_and_first_line_only():
    facts = {"type": "ValueError", "message": "\n  bad input at /srv/grader/secret.json\nsecond line\n" + "z" * 10**6,
             "line": 12}
    assert feedback.error_excerpt(facts, "cell cnn_model") == "ValueError: bad input at <path> (line 12 of cell cnn_model)"
    long = feedback.error_excerpt({"type": "Boom<script>", "message": "y" * 5000})
    assert long.startswith("Boomscript: ") and len(long) <= len("Boomscript: ") + feedback.EXCERPT_CHARS
    assert feedback.error_excerpt("not a dict") == "an error"
    assert feedback.error_excerpt({"type": "E", "message": "m", "line": True}) == "E: m"


def test_notes_are_bounded_in_length_and_number_and_not_repeated():
    notes = feedback.notes(["same"] * 5 + [f"note {i} " + "n" * 2000 for i in range(100)])
    assert notes[0] == "same" and notes.count("same") == 1
    assert len(notes) == feedback.MAX_NOTES and "more note(s)" in notes[-1]
    assert all(len(n) <= feedback.NOTE_CHARS for n in notes)


@pytest.mark.parametrize("expected, defined, words", [
    ("CNN", "\u0421NN", "Cyrillic Capital Letter Es"),    # Cyrillic Es
    ("UNet", "U\u039det", "Greek Capital Letter Nu"),     # Greek Nu
    ("CNN", "Cnn", "case-sensitive"),
    ("CNN", "\uff23\uff2e\uff2e", "another alphabet"),    # full-width letters
])
def test_a_name_that_only_looks_right_is_explained(expected, defined, words):
    sentence = feedback.lookalike(expected, ["torch", "nn", defined])
    assert words in sentence and expected in sentence


def test_unrelated_names_are_not_called_lookalikes():
    assert feedback.lookalike("CNN", ["UNet", "nn", "CNNs", "model"]) == ""


# ---- results.json and the instructor log --------------------------------------------------------------------------
def _report(message, checks=3, notes=()):
    report = GradeReport(submission="/srv/course/submitted/alice/a2-cnn/a2-cnn.ipynb", notes=list(notes))
    part = PartReport("cnn", grader_error="Internal grader error at /srv/grader/autograder/grade.py")
    part.results = [CheckResult(f"c{i}", "cnn", f"check {i}", 0.0, 0.5, "failed", message) for i in range(checks)]
    report.parts.append(part)
    report.log.append("[cnn] stdout:\n" + "printed by the student " * 1000)
    return report


def test_results_json_stays_under_its_bound_whatever_the_messages(tmp_path):
    # ten times the checks the registry has, each with a megabyte of message
    report = _report("m" * 10**6, checks=200, notes=[f"n{i}" * 1000 for i in range(500)])
    text = results_text(report)
    assert len(text.encode()) <= MAX_RESULTS_BYTES
    results = assert_valid_results(text)
    assert len(results["tests"]) == 200 and sum(t["max_score"] for t in results["tests"]) == 100  # only shortened


def test_student_output_and_grader_errors_go_only_to_the_instructor_log(tmp_path):
    out = tmp_path / "results.json"
    write_json(_report("your CNN failed at /srv/grader/checks.py"), out)
    results = out.read_text()
    assert "printed by the student" not in results and "Internal grader error" not in results
    assert "/srv/" not in results and "<path>" in results
    log = instructor_log_path(out).read_text()
    assert instructor_log_path(out).name == "results.instructor.log"
    assert "printed by the student" in log and "/srv/grader/autograder/grade.py" in log and "alice" in log


# ---- submissions that try to leak the grader's files --------------------------------------------------------------
def _student_strings(results):
    yield results["output"]
    for test in results["tests"]:
        yield test["name"]
        yield test["output"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["leaks_files_in_exception", "leaks_files_in_forward"])
def test_a_submission_that_raises_the_grader_files_gets_back_only_a_short_scrubbed_line(name, tmp_path):
    path = build(BY_NAME[name], tmp_path / "submission.ipynb")
    out = tmp_path / "results.json"
    assert cli_main(["grade", str(path), "--parts", "cnn", "--json", str(out)]) == 0
    results = assert_valid_results(out)
    assert results["score"] == 0
    text = "\n".join(_student_strings(results))
    secret_lines = master_only_lines()
    assert secret_lines, "the master must have lines the release lacks"
    leaked = [line for line in secret_lines if line in text]
    assert not leaked, leaked[:3]
    for machine_path in (str(REPO_ROOT), sys.prefix, sys.executable, str(tmp_path)):
        assert machine_path not in text
    assert "<path>" in text  # the paths of the error's first line were there, and were replaced
    for test in results["tests"]:  # the error's first line, never the text below it
        assert len(test["output"]) <= feedback.MESSAGE_CHARS and '"cells"' not in test["output"]
    log = instructor_log_path(out).read_text()
    assert "Error" in log and len(log.encode()) <= 4 * 1024 * 1024 + 100
