"""The command line: its verbs and exit codes (0 finished, 1 grader error, 2 usage error, 3 checks not run)."""
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import calibrate, calibration_table, tiers
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


def test_a_check_that_could_not_run_exits_3_and_a_grader_error_still_1(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    report = _report()
    report.parts[0].results.append(CheckResult("finetune_learns", "learning", "Part C", 0.0, 1.0, "not run",
                                               "not run: no weights"))
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: report)
    assert main(["grade", str(notebook)]) == 3
    assert "[SKIP]" in capsys.readouterr().out
    report.parts[0].grader_error = "boom"
    assert main(["grade", str(notebook)]) == 1


def test_the_help_lists_every_exit_code(capsys):
    from autograder.class_report import EXIT_CODES

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}"[:40] in " ".join(out.split()), code


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


def test_grade_shows_the_instructor_log_only_with_show_output(tmp_path, monkeypatch, capsys):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    report = _report()
    report.log = ["student printed: hello from cell 3", "second line"]
    monkeypatch.setattr(grade_module, "grade_notebook", lambda *a, **k: report)
    assert main(["grade", str(notebook)]) == 0
    assert "hello from cell 3" not in capsys.readouterr().out
    assert main(["grade", str(notebook), "--show-output"]) == 0
    out = capsys.readouterr().out
    assert "  log: student printed: hello from cell 3\n  log: second line" in out


# --- calibrate: only the paths that stop before any training ---------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    """Calibrating must not get as far as loading the reference: fail the test (not the command) if it does."""
    def refuse(*_args, **_kwargs):
        pytest.fail("calibrate went on to train the reference")

    monkeypatch.setattr(calibrate, "load_reference", refuse)
    monkeypatch.setattr(calibrate, "verify", refuse)


def test_calibrate_table_prints_the_calibration_table_and_exits_0():
    root = Path(calibrate.__file__).resolve().parents[1]  # the folder holding the autograder under test
    result = subprocess.run([sys.executable, "-m", "autograder", "calibrate", "--table"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == calibration_table.table() + "\n"
    assert result.stdout.startswith("| tier | settings |") and len(result.stdout.splitlines()) >= 3


def test_calibrate_table_in_process_trains_nothing(no_training, capsys):
    assert main(["calibrate", "--table"]) == 0
    assert capsys.readouterr().out == calibration_table.table() + "\n"


def test_calibrate_refuses_an_unknown_tier(no_training, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal
        main(["calibrate", "--tier", "tpu"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_calibrate_refuses_the_gpu_tier_without_cuda(no_training, monkeypatch, capsys):
    monkeypatch.setattr(tiers, "cuda_available", lambda: False)
    assert main(["calibrate", "--tier", "gpu", "--seeds", "0,1,2,3,4"]) == 2
    assert capsys.readouterr().err.startswith("calibrate: tier 'gpu' needs a CUDA device")


@pytest.mark.parametrize("seeds, words", [
    ("0,1", "calibration needs at least 5 different seeds, got [0, 1]"),
    ("3,3,3,3,3", "calibration needs at least 5 different seeds, got [3, 3, 3, 3, 3]"),
    ("0,1,2,three,4", "calibrate: invalid literal for int()"),
])
def test_calibrate_refuses_too_few_seeds(no_training, monkeypatch, capsys, seeds, words, tmp_path):
    monkeypatch.setattr(tiers, "cuda_available", lambda: False)
    out = tmp_path / "cpu.json"
    assert main(["calibrate", "--tier", "cpu", "--seeds", seeds, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("calibrate: ") and words in captured.err
    assert captured.out == "" and not out.exists()


def test_the_help_gives_the_classroom_modes_own_grader_error_code(capsys):
    from autograder import classroom

    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    grade = " ".join(capsys.readouterr().out.split())
    assert f"{classroom.GRADER_ERROR} grader error" in top
    assert f"{classroom.GRADER_ERROR} on a grader error" in grade
