"""`grade --classroom` (GitHub Classroom, plain CI): exit 0 at or above the bar, 1 below it, 3 on a grader error;
stderr empty unless something went wrong; stdout a short summary."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import grade as grade_module
from autograder import settings
from autograder.cli import main
from autograder.report import CheckResult, GradeReport, PartReport
from tests.corpus import BY_NAME, build

REPO_ROOT = Path(__file__).resolve().parents[1]


def classroom(notebook: Path, *args, cwd: Path):
    """The command as a workflow runs it: a fresh process, the real sandboxed grader."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH")] if p))
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--parts", "cnn",
                           "--tier", "cpu", "--classroom", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_a_passing_and_a_failing_submission_through_the_real_grader(tmp_path):
    passing = build(BY_NAME["reference"], tmp_path / "passing.ipynb")
    failing = build(BY_NAME["missing_relu"], tmp_path / "failing.ipynb")  # downconv2 lacks its ReLU: 1.5 of 2

    result = classroom(passing, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith("PASS: 2 / 2 points, which reaches the bar of 2\n")
    assert result.stdout.count("[PASS]") == 4 and str(tmp_path) not in result.stdout

    result = classroom(failing, "--json", str(tmp_path / "results.json"), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, ""), result.stderr
    assert result.stdout.startswith("FAIL: 1.5 / 2 points, which is below the bar of 2\n")
    assert "[FAIL] 0/0.5 cnn: CNN groups have the architecture's layers" in result.stdout
    assert "found MyConv2d(8->8, kernel 5), BatchNorm2d(8)" in result.stdout  # what to fix, for the student
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.instructor.log").is_file()


def _report(scores, status=None, grader_error=""):
    report = GradeReport(submission="a.ipynb")
    report.parts.append(PartReport("cnn", grader_error=grader_error, results=[
        CheckResult(f"check{i}", "cnn", f"check {i}", score, 0.5,
                    (status or {}).get(i, "passed" if score else "failed"), "" if score else "fix it")
        for i, score in enumerate(scores)]))
    return report


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "COURSE_ROOT", tmp_path)  # no course settings file unless a test writes one
    path = tmp_path / "a.ipynb"
    path.write_text("{}")
    return path


def _grading_returns(monkeypatch, report):
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: report)


def test_the_bar_comes_from_the_settings_file_and_the_flag_overrides_it(notebook, monkeypatch, capsys):
    _grading_returns(monkeypatch, _report([0.5, 0.5, 0.5, 0.0]))
    (notebook.parent / "nbgrader_config.py").write_text("c = get_config()\nc.A2Grader.min_score = 1.5\n")
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("PASS: 1.5 / 2 points, which reaches the bar of 1.5") and captured.err == ""
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom", "--min-score", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("FAIL: 1.5 / 2 points, which is below the bar of 2") and captured.err == ""


def test_a_grader_error_is_exit_3_with_one_line_on_stderr_and_no_internals(notebook, monkeypatch, capsys):
    _grading_returns(monkeypatch, _report([0.5, 0.5, 0.5, 0.5], grader_error="OSError: /srv/grader/secret.py"))
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom"]) == 4
    captured = capsys.readouterr()
    assert captured.err.startswith("grader error: part(s) cnn could not be graded") and captured.err.count("\n") == 1
    assert "/srv/grader" not in captured.out + captured.err and "GRADER ERROR in part cnn" in captured.out

    def crash(*_args, **_kwargs):
        raise RuntimeError("bug at /srv/grader/grade.py")

    monkeypatch.setattr(grade_module, "grade_notebook", crash)
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom"]) == 4
    captured = capsys.readouterr()
    assert captured.err.startswith("grader error: the grader failed (RuntimeError)") and "/srv" not in captured.err


def test_what_the_grading_process_prints_on_stderr_goes_to_the_instructor_log(notebook, monkeypatch, capsys):
    def noisy(*_args, **_kwargs):
        import warnings

        warnings.warn("a library warning while grading")
        print("progress line", file=sys.stderr)
        return _report([0.5, 0.5, 0.5, 0.5])

    monkeypatch.setattr(grade_module, "grade_notebook", noisy)
    results = notebook.parent / "results.json"
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom", "--json", str(results)]) == 0
    assert capsys.readouterr().err == ""
    log = (notebook.parent / "results.instructor.log").read_text()
    assert "a library warning while grading" in log and "progress line" in log


def test_checks_that_could_not_run_follow_the_not_run_policy(notebook, monkeypatch, capsys):
    _grading_returns(monkeypatch, _report([0.5, 0.5, 0.5, 0.0], status={3: "not run"}))
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: 1.5 / 2 points") and "0.5 point(s) could not be graded here" in out
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom", "--not-run-policy", "exclude"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: 1.5 / 1.5 points, which reaches the bar of 1.5")


def test_an_unreachable_bar_and_show_output_are_refused_before_grading(notebook, monkeypatch, capsys):
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: pytest.fail("must not grade"))
    assert main(["grade", str(notebook), "--parts", "cnn", "--classroom", "--min-score", "2.5"]) == 2
    assert capsys.readouterr().err == ("settings error: command line: min_score = 2.5 is more than the 2 points the "
                                       "parts graded (cnn) are worth\n")
    assert main(["grade", str(notebook), "--classroom", "--show-output"]) == 2
    assert "--show-output is for instructors" in capsys.readouterr().err


def test_the_readme_workflow_is_valid_yaml_and_runs_the_classroom_command(notebook, monkeypatch, capsys):
    import re
    import shlex

    yaml = pytest.importorskip("yaml")
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## GitHub Classroom and plain CI", 1)[1].split("\n## ", 1)[0]
    workflow = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-command-grader")]
    assert len(graders) == 1 and graders[0]["with"]["max-score"] == 6
    command = graders[0]["with"]["command"].split("&&")[-1]
    argv = shlex.split(command.replace("${{ github.workspace }}/a2-cnn.ipynb", str(notebook)))
    argv = argv[argv.index("autograder") + 1:]
    _grading_returns(monkeypatch, _report([0.5] * 4))
    assert main(argv) == 0 and capsys.readouterr().out.startswith("PASS: ")
