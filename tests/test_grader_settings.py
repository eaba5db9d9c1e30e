"""The grader's settings: defaults, then the course's settings file (nbgrader_config.py or --config), then the
command line; `config` says where each value came from; a wrong value is one clear line and exit 2."""
import os
from pathlib import Path

import pytest

from autograder import batch, settings
from autograder import grade as grade_module
from autograder.cli import main
from autograder.config import GraderConfig
from autograder.report import CheckResult, GradeReport, PartReport
from autograder.settings import SettingError, from_section, resolve

REPO_ROOT = Path(__file__).resolve().parents[1]


def _report():
    report = GradeReport(submission="a.ipynb")
    report.parts.append(PartReport("cnn", results=[CheckResult("cnn_layers", "cnn", "layers", 0.5, 0.5, "passed",
                                                               "fine")]))
    return report


@pytest.fixture
def graded(tmp_path, monkeypatch):
    """A notebook to grade and the GraderConfig each grade received (grading itself is replaced)."""
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    seen = []

    def record(path, config=None, **_kwargs):
        seen.append(config)
        return _report()

    monkeypatch.setattr(grade_module, "grade_notebook", record)
    return notebook, seen


def _course(folder: Path, *lines) -> Path:
    path = folder / "nbgrader_config.py"
    path.write_text("c = get_config()\n" + "".join(line + "\n" for line in lines))
    return path


def test_the_course_file_sets_values_that_grade_uses_and_config_shows_with_their_source(tmp_path, monkeypatch,
                                                                                        graded, capsys):
    notebook, seen = graded
    course = tmp_path / "course"
    course.mkdir()
    path = _course(course, "c.A2Grader.cell_seconds = 90", "c.A2Grader.tier = 'cpu'",
                   "c.A2Grader.check_visibility = {'cnn_learns': 'after_due_date'}")
    monkeypatch.setattr(settings, "COURSE_ROOT", course)  # the course's file, beside the grader
    assert main(["grade", str(notebook)]) == 0
    assert seen[-1].cell_seconds == 90.0 and seen[-1].tier == "cpu"
    assert seen[-1].check_visibility == (("cnn_learns", "after_due_date"),)
    assert seen[-1].worker_seconds == GraderConfig().worker_seconds
    capsys.readouterr()
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"settings file: {path}" in out
    assert f"cell_seconds = 90.0  ({path})" in out and f"tier = 'cpu'  ({path})" in out
    assert "worker_seconds = 900.0  (default)" in out


def test_a_flag_overrides_the_file(tmp_path, graded, capsys):
    notebook, seen = graded
    path = _course(tmp_path, "c.A2Grader.cell_seconds = 90", "c.A2Grader.tier = 'cpu'", "c.A2Grader.threads = 2")
    assert main(["grade", str(notebook), "--config", str(path), "--set", "cell_seconds=30", "--tier", "auto"]) == 0
    assert (seen[-1].cell_seconds, seen[-1].tier, seen[-1].threads) == (30.0, "auto", 2)
    assert main(["config", "--config", str(path), "--set", "cell_seconds=30"]) == 0
    out = capsys.readouterr().out
    assert "cell_seconds = 30.0  (command line)" in out and f"threads = 2  ({path})" in out


def test_a_json_settings_file_works_too(tmp_path, graded):
    notebook, seen = graded
    path = tmp_path / "grader.json"
    path.write_text('{"A2Grader": {"parts": ["cnn", "unet"], "not_run_policy": "exclude"}}')
    assert main(["grade", str(notebook), "--config", str(path)]) == 0
    assert seen[-1].parts == ("cnn", "unet") and seen[-1].not_run_policy == "exclude"


@pytest.mark.parametrize("line, words", [
    ("c.A2Grader.cell_seconds = 'soon'", "A2Grader.cell_seconds = 'soon': expected a number"),
    ("c.A2Grader.cell_seconds = -5", "A2Grader.cell_seconds = -5: must be at least 1"),
    ("c.A2Grader.threads = 1.5", "A2Grader.threads = 1.5: expected a whole number"),
    ("c.A2Grader.tier = 'tpu'", "A2Grader.tier = 'tpu': 'tpu' is not one of cpu, gpu, auto"),
    ("c.A2Grader.parts = ['cnn', 'gan']", "'gan' is not one of cnn, unet, finetune, learning"),
    ("c.A2Grader.check_visibility = {'cnn_lerns': 'hidden'}", "unknown check 'cnn_lerns'"),
    ("c.A2Grader.cel_seconds = 90", "A2Grader.cel_seconds: no such setting (did you mean cell_seconds?)"),
    ("c.A2Grader.cell_seconds = (", "cannot be read: SyntaxError"),
])
def test_a_bad_value_is_one_line_naming_the_setting_and_the_file_and_exit_2(tmp_path, graded, capsys, line, words):
    notebook, seen = graded
    path = _course(tmp_path, line)
    for argv in (["grade", str(notebook), "--config", str(path)], ["config", "--config", str(path)]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(f"settings error: {path}: ") and words in captured.err, captured.err
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert seen == []  # nothing was graded


def test_bad_command_line_values_and_a_missing_file_are_clear_too(tmp_path, graded, capsys):
    notebook, seen = graded
    assert main(["grade", str(notebook), "--set", "memory_bytes=lots"]) == 2
    assert capsys.readouterr().err == "settings error: command line: memory_bytes = 'lots': expected a whole number\n"
    assert main(["grade", str(notebook), "--set", "cell_seconds"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "--jobs", "many"]) == 2
    assert "jobs = 'many'" in capsys.readouterr().err
    assert main(["grade", str(notebook), "--config", str(tmp_path / "nowhere.py")]) == 2
    assert capsys.readouterr().err == f"settings error: {tmp_path / 'nowhere.py'}: no such settings file\n"
    assert seen == []


def test_the_courses_own_nbgrader_config_loads_with_default_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # wherever the command runs
    resolved = resolve()
    assert resolved.file == REPO_ROOT / "nbgrader_config.py"
    assert resolved.config == GraderConfig() and set(resolved.sources.values()) == {"default"}


def test_a_settings_file_in_the_current_folder_is_never_run(tmp_path, monkeypatch, capsys):
    """Grading from a student's folder must not run that student's nbgrader_config.py in the grading process."""
    marker = tmp_path / "ran"
    _course(tmp_path, f"open({str(marker)!r}, 'w').close()", "c.A2Grader.min_score = 0", "c.A2Grader.threads = 9")
    monkeypatch.chdir(tmp_path)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"settings file: {REPO_ROOT / 'nbgrader_config.py'}" in out and "threads = 1  (default)" in out
    assert not marker.exists()


def test_a_settings_file_the_workers_could_read_is_refused(tmp_path):
    helper = tmp_path / "helper"
    (helper / "a2cnn").mkdir(parents=True)
    inside = _course(helper / "a2cnn", "c.A2Grader.helper_dir = " + repr(str(helper)))
    with pytest.raises(SettingError, match="inside a folder the sandboxed workers can read"):
        resolve(inside)
    outside = _course(tmp_path, "c.A2Grader.helper_dir = " + repr(str(helper)))
    assert resolve(outside).config.helper_dir == helper


def test_batch_takes_jobs_from_the_settings_and_they_do_not_change_what_is_current(tmp_path, monkeypatch):
    path = _course(tmp_path, "c.A2Grader.jobs = 3")
    used = {}
    monkeypatch.setattr(batch, "grade_tree", lambda submitted, out, config, **kw: used.update(jobs=config.jobs) or [])
    (tmp_path / "submitted").mkdir()
    assert main(["batch", str(tmp_path / "submitted"), "--out", str(tmp_path / "out"), "--config", str(path)]) == 0
    assert used == {"jobs": 3}
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("{}")
    key = batch.submission_key(notebook, GraderConfig())
    assert batch.submission_key(notebook, GraderConfig(jobs=3)) == key
    assert batch.submission_key(notebook, GraderConfig(cell_seconds=90)) != key


def test_nbgrader_autograde_takes_the_same_section_from_its_configuration():
    from traitlets.config import Config

    from autograder.nbgrader_grading import IsolatedGrading

    config = Config()
    config.A2Grader.tier = "cpu"
    config.A2Grader.cell_seconds = 90
    assert IsolatedGrading(config=config).grader_config() == GraderConfig(tier="cpu", cell_seconds=90.0)
    assert IsolatedGrading().grader_config() == GraderConfig()
    with pytest.raises(SettingError, match="nbgrader configuration: A2Grader.tier = 'tpu'"):
        from_section({"tier": "tpu"}, "nbgrader configuration")
