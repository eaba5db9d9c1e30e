"""The command line: its verbs and exit codes (0 finished, 1 grader error, 2 usage error)."""
import pytest

from autograder import grade as grade_module
from autograder.cli import main
from autograder.config import GraderConfig
from autograder.report import CheckResult, GradeReport, PartReport


def test_config_lists_every_setting_and_says_whether_isolation_works(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for name in GraderConfig.__dataclass_fields__:
        assert f"{name} = " in out
    assert "isolation:" in out


@pytest.mark.parametrize("argv, words", [
    (["grade", "no-such-file.ipynb"], "no such file"),
    (["batch", "no-such-folder"], "no such folder"),
])
def test_a_missing_input_is_a_usage_error(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_unknown_settings_are_usage_errors_before_any_grading(tmp_path, capsys, monkeypatch):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: pytest.fail("must not grade"))
    assert main(["grade", str(notebook), "--check-visibility", "no_such_check=hidden"]) == 2
    assert "unknown check" in capsys.readouterr().err
    assert main(["grade", str(notebook), "--check-visibility", "cnn_layers"]) == 2
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal
        main(["grade", str(notebook), "--visibility", "sometimes"])
    assert exit_info.value.code == 2


def _report(grader_error=""):
    report = GradeReport(submission="a.ipynb")
    report.parts.append(PartReport("cnn", grader_error=grader_error, results=[
        CheckResult("cnn_layers", "cnn", "layers", 0.5, 0.5, "passed", "fine")]))
    return report


def test_a_grader_error_exits_1_and_a_finished_grade_0(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: _report())
    assert main(["grade", str(notebook), "--json", str(tmp_path / "r.json")]) == 0
    assert "0.5 / 0.5" in capsys.readouterr().out and (tmp_path / "r.instructor.log").is_file()
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: _report("boom"))
    assert main(["grade", str(notebook)]) == 1
    assert "GRADER ERROR" in capsys.readouterr().out


def test_batch_refuses_an_unknown_student(tmp_path, capsys):
    (tmp_path / "submitted" / "alice" / "a2-cnn").mkdir(parents=True)
    assert main(["batch", str(tmp_path / "submitted"), "--out", str(tmp_path / "out"), "--student", "bob"]) == 2
    assert "bob" in capsys.readouterr().err


def test_grade_passes_parts_and_tier_to_the_grader(tmp_path, monkeypatch):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    seen = {}

    def record(path, config=None, **_kwargs):
        seen.update(parts=config.parts, tier=config.tier)
        return _report()

    monkeypatch.setattr(grade_module, "grade_notebook", record)
    assert main(["grade", str(notebook), "--parts", "cnn, unet", "--tier", "cpu"]) == 0
    assert seen == {"parts": ("cnn", "unet"), "tier": "cpu"}
