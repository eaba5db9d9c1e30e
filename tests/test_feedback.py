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
    assert out.stat().st_size <= MAX_RESULTS_BYTES  # the exception alone is 10 MB
    calibration = json.loads((REPO_ROOT / "autograder" / "calibration" / "cpu.json").read_text())
    for value in calibration["thresholds"].values():  # the grader's numbers never reach a student
        assert value is None or f"{value:.4f}" not in text
    for source in ("grade.py", "checks/colouriser.py", "verify/colouriser.py"):  # nor its source
        lines = [l.strip() for l in (REPO_ROOT / "autograder" / source).read_text().splitlines() if len(l.strip()) > 40]
        assert not [l for l in lines if l in text][:1]
    for test in results["tests"]:  # the error's first line, never the text below it
        assert len(test["output"]) <= feedback.MESSAGE_CHARS and '"cells"' not in test["output"]
    log = instructor_log_path(out).read_text()
    assert "Error" in log and len(log.encode()) <= 4 * 1024 * 1024 + 100


# ---- messages a student can act on: a stopped step names the limit it hit -----------------------------------------
def _stopped_cell(outcome, config):
    """The student notes of a notebook whose one cell was stopped with ``outcome`` (a synthetic StepResult)."""
    from autograder.execution import Execution, StepResult, _limits
    from autograder.grade import _cell_notes
    from autograder.program import Program

    step = {"id": "c1", "kind": "cell", "name": "cnn_model", "source": "", "limit": 60.0}
    program = Program(steps=[step], labels={"c1": "the cell 'cnn_model'"}, memory_bytes=config.memory_bytes)
    execution = Execution(steps={"c1": StepResult(id="c1", outcome=outcome, detail="/srv/grader/sandbox/x.log")},
                          limits=_limits(config, [step]))
    return " ".join(_cell_notes(program, execution))


@pytest.mark.parametrize("outcome, words", [
    ("processes", ["process limit", "at most 64 processes"]),
    ("file size", ["file-size limit", "at most 256 MiB"]),
    ("timeout", ["time limit of 60 s"]),
    ("memory", ["ran out of memory", "8 GiB"]),
])
def test_a_stopped_cell_names_the_limit_it_hit_and_its_number(outcome, words):
    from autograder.config import GraderConfig

    text = _stopped_cell(outcome, GraderConfig())
    for word in words:
        assert word in text, text
    assert "ended the process" not in text and "/srv" not in text and feedback.scrub(text) == text


def test_the_limits_named_are_those_the_worker_ran_under():
    from autograder.config import GraderConfig
    from autograder.checks.evidence import stop_words

    text = _stopped_cell("processes", GraderConfig(processes=20))
    assert "at most 20 processes" in text
    assert "at most 3 MiB" in _stopped_cell("file size", GraderConfig(file_bytes=3 * 2**20))
    assert stop_words("file size") == "wrote a file larger than the file-size limit"  # no limits known: still named


def test_a_file_past_the_size_limit_is_named_in_the_students_notes(tmp_path):
    """Through the real sandbox: one cell writes past the limit (Python raises EFBIG), another dies of SIGXFSZ."""
    from autograder.config import GraderConfig
    from autograder.execution import execute
    from autograder.grade import _cell_notes
    from autograder.program import Program

    write = "open('/tmp/big', 'wb').write(b'x' * (3 * 2**20))\n"
    steps = [{"id": "c1", "kind": "cell", "name": "raises", "source": write, "limit": 30.0},
             {"id": "c2", "kind": "cell", "name": "killed",
              "source": "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" + write, "limit": 30.0}]
    config = GraderConfig(file_bytes=2**20, max_restarts=1)
    execution = execute(steps, config)
    assert execution.result("c1").outcome == "done" and execution.result("c2").outcome == "file size"
    program = Program(steps=steps, labels={"c1": "cell 1", "c2": "cell 2"}, memory_bytes=config.memory_bytes)
    notes = _cell_notes(program, execution)
    assert "cell 1 raised OSError: [Errno 27] File too large" in notes[0], notes
    assert "file-size limit: a worker may write files of at most 1 MiB" in notes[0], notes
    assert notes[1].startswith("cell 2 wrote a file larger than the file-size limit and was stopped"), notes
    assert "at most 1 MiB" in notes[1]
    assert "file_size" in " ".join(execution.log)
