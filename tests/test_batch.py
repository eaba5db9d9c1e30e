"""Grading a class: resumable (nothing lost, nothing graded twice), consistent tables, a parallel pool that gives
the scores each submission gets alone."""
import csv
import dataclasses
import json
import types

import pytest

from autograder import batch
from autograder import grade as grade_module
from autograder.config import GraderConfig
from autograder.grade import grade_notebook
from autograder.report import CheckResult, GradeReport, PartReport
from tests.corpus import BY_NAME, build


def _class(tmp_path, students):
    submitted = tmp_path / "submitted"
    for student, text in students.items():
        folder = submitted / student / "a2-cnn"
        folder.mkdir(parents=True)
        (folder / "a2-cnn.ipynb").write_text(text)
    return submitted


@pytest.fixture
def counted(monkeypatch):
    """grade_notebook replaced by one that scores the notebook's text (a number) and counts its calls."""
    calls = []

    def fake(path, config=None, **_kwargs):
        calls.append(path.parent.parent.name)
        text = path.read_text() if path.is_file() else ""
        if text == "grader bug":
            report = GradeReport(submission=str(path))
            report.parts.append(PartReport("cnn", grader_error="boom", results=[
                CheckResult("cnn_layers", "cnn", "layers", 0.0, 2.0, "not run", "regrade")]))
            return report
        score = float(text) if text else 0.0
        report = GradeReport(submission=str(path), parts=[PartReport("cnn", results=[
            CheckResult("cnn_layers", "cnn", "layers", score, 2.0, "passed" if score > 0 else "failed", "m"),
            CheckResult("finetune_learns", "learning", "Part C", 0.0, 1.0, "not run", "no weights")])])
        return report

    monkeypatch.setattr(grade_module, "grade_notebook", fake)
    return calls


def _table(out):
    with open(out / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def assert_consistent(out):
    """grades.csv lists exactly the students with a record, with the record's score and status, and every record
    without a grader error has its results file with the same score."""
    records = {path.stem: batch.load_record(out, path.stem) for path in (out / batch.STATE_DIR).glob("*.json")}
    table = _table(out) if (out / "grades.csv").exists() else {}
    assert set(table) == set(records)
    for student, record in records.items():
        assert float(table[student]["score"]) == record.score, student
        assert table[student]["status"] == ("grader error" if record.grader_errors else
                                            "not run" if record.not_run else "graded"), student
        if not record.grader_errors:
            assert json.loads((out / f"{student}.json").read_text())["score"] == record.score, student
    assert not list(out.rglob("*.tmp-*"))
    return records


def test_a_rerun_grades_only_what_changed_and_the_table_always_has_everyone(tmp_path, counted):
    submitted = _class(tmp_path, {"alice": "2", "bob": "1", "carol": "0"})
    out = tmp_path / "results"
    rows = dict(batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1))
    assert sorted(counted) == ["alice", "bob", "carol"] and rows["bob"].score == 1.0
    counted.clear()
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    assert counted == []  # nothing graded twice
    (submitted / "bob" / "a2-cnn" / "a2-cnn.ipynb").write_text("2")  # a resubmission
    rows = dict(batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1))
    assert counted == ["bob"] and rows["bob"].score == 2.0
    table = _table(out)
    assert {s: float(r["score"]) for s, r in table.items()} == {"alice": 2.0, "bob": 2.0, "carol": 0.0}
    assert table["alice"]["status"] == "not run" and table["alice"]["not_run"] == "finetune_learns"
    # other settings are another grade
    counted.clear()
    batch.grade_tree(submitted, out, GraderConfig(visibility="hidden"), progress=False, jobs=1)
    assert sorted(counted) == ["alice", "bob", "carol"]
    assert not list(out.rglob("*.tmp-*"))


def test_regrade_and_student_selection(tmp_path, counted):
    submitted = _class(tmp_path, {"alice": "2", "bob": "1"})
    out = tmp_path / "results"
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    counted.clear()
    rows = batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1, regrade=True, students=["bob"])
    assert counted == ["bob"] and [s for s, _ in rows] == ["bob"]
    assert set(_table(out)) == {"alice", "bob"}  # the table still lists the students not selected
    with pytest.raises(ValueError, match="dave"):
        batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1, students=["dave"])


def test_a_grader_error_is_never_recorded_as_a_grade_so_the_next_run_retries_it(tmp_path, counted):
    submitted = _class(tmp_path, {"alice": "grader bug"})
    out = tmp_path / "results"
    rows = dict(batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1))
    assert rows["alice"].grader_errors and _table(out)["alice"]["status"] == "grader error"
    assert batch.load_record(out, "alice").grader_errors  # on record, so a merge or the table can say so
    counted.clear()
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    assert counted == ["alice"]


def test_a_killed_run_loses_only_the_grade_in_flight(tmp_path, counted, monkeypatch):
    submitted = _class(tmp_path, {"alice": "2", "bob": "1", "carol": "0"})
    out = tmp_path / "results"
    real = grade_module.grade_notebook

    def dies_on_bob(path, config=None, **kwargs):
        if path.parent.parent.name == "bob":
            raise KeyboardInterrupt  # the driver killed mid-grade
        return real(path, config, **kwargs)

    monkeypatch.setattr(grade_module, "grade_notebook", dies_on_bob)
    with pytest.raises(KeyboardInterrupt):
        batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    assert batch.load_record(out, "alice") is not None and batch.load_record(out, "bob") is None
    assert set(assert_consistent(out)) == {"alice"}  # the interrupted run left a table that matches its files
    monkeypatch.setattr(grade_module, "grade_notebook", real)
    counted.clear()
    rows = dict(batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1))
    assert sorted(counted) == ["bob", "carol"] and rows["bob"].score == 1.0
    results = json.loads((out / "bob.json").read_text())
    assert results["score"] == 1.0


def test_an_interrupted_regrade_drops_the_old_grade_rather_than_keep_it_beside_new_files(tmp_path, counted,
                                                                                        monkeypatch):
    submitted = _class(tmp_path, {"alice": "2", "bob": "1"})
    out = tmp_path / "results"
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    real = grade_module.grade_notebook

    def dies_on_bob(path, config=None, **kwargs):
        if path.parent.parent.name == "bob":
            raise KeyboardInterrupt
        return real(path, config, **kwargs)

    monkeypatch.setattr(grade_module, "grade_notebook", dies_on_bob)
    with pytest.raises(KeyboardInterrupt):
        batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1, regrade=True)
    assert set(assert_consistent(out)) == {"alice"}  # bob's regrade did not finish: he is to be graded again
    monkeypatch.setattr(grade_module, "grade_notebook", real)
    counted.clear()
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    assert counted == ["bob"] and set(assert_consistent(out)) == {"alice", "bob"}


def test_the_table_is_rewritten_after_every_grade(tmp_path, counted, monkeypatch):
    submitted = _class(tmp_path, {"alice": "2", "bob": "1", "carol": "0"})
    out = tmp_path / "results"
    real = grade_module.grade_notebook
    seen = []

    def watching(path, config=None, **kwargs):  # what a reader of grades.csv sees while the class is graded
        seen.append(sorted(_table(out)) if (out / "grades.csv").exists() else [])
        return real(path, config, **kwargs)

    monkeypatch.setattr(grade_module, "grade_notebook", watching)
    batch.grade_tree(submitted, out, GraderConfig(), progress=False, jobs=1)
    assert seen == [[], ["alice"], ["alice", "bob"]]


def test_the_key_follows_the_notebook_and_the_settings(tmp_path):
    notebook = tmp_path / "a.ipynb"
    notebook.write_text("1")
    key = batch.submission_key(notebook, GraderConfig())
    assert key == batch.submission_key(notebook, GraderConfig())
    assert key != batch.submission_key(notebook, GraderConfig(tier="gpu"))
    notebook.write_text("2")
    assert key != batch.submission_key(notebook, GraderConfig())
    assert batch.submission_key(tmp_path / "missing.ipynb", GraderConfig())


def test_the_default_pool_uses_the_cores_each_grade_leaves():
    cores = batch.default_jobs(GraderConfig(threads=1))
    assert cores >= 1
    assert batch.default_jobs(GraderConfig(threads=10**6)) == 1


@pytest.mark.slow
def test_the_pool_gives_every_submission_the_score_it_gets_alone(tmp_path):
    submitted = tmp_path / "submitted"
    examples = {"alice": "missing_relu", "bob": "reference", "carol": "uses_nn_conv2d", "dave": "not_json"}
    for student, example in examples.items():
        folder = submitted / student / "a2-cnn"
        folder.mkdir(parents=True)
        build(BY_NAME[example], folder / "a2-cnn.ipynb")
    config = GraderConfig(parts=("cnn",))
    rows = dict(batch.grade_tree(submitted, tmp_path / "results", config, progress=False, jobs=2))
    for student in examples:
        alone = grade_notebook(submitted / student / "a2-cnn" / "a2-cnn.ipynb", config)
        assert rows[student].checks == {r.name: r.score for r in alone.results}, student
    assert {s: r.score for s, r in rows.items()} == {"alice": 1.5, "bob": 2.0, "carol": 0.0, "dave": 0.0}


# --- "not run" as an outcome of its own -----------------------------------------------------------------------------

@pytest.fixture
def runs_here(monkeypatch):
    """A grader whose notebook text says what happens: "ok" (every check runs), "weights" (Part C's check, which
    runs only where ``machine.weights`` is set), "bug" (a grader error). ``machine.calls``: the students graded."""
    machine = types.SimpleNamespace(calls=[], weights=False)

    def fake(path, config=None, **_kwargs):
        machine.calls.append(path.parent.parent.name)
        text = path.read_text()
        part = PartReport("cnn", results=[CheckResult("cnn_layers", "cnn", "layers", 2.0, 2.0, "passed", "m")])
        if text == "weights":
            part.results.append(CheckResult("finetune_learns", "learning", "Part C", 1.0, 1.0, "passed", "m")
                                if machine.weights else
                                CheckResult("finetune_learns", "learning", "Part C", 0.0, 1.0, "not run",
                                            "not run: no pretrained weights here"))
        if text == "bug":
            part.grader_error = "boom"
        return GradeReport(submission=str(path), parts=[part])

    monkeypatch.setattr(grade_module, "grade_notebook", fake)
    return machine


def _batch(submitted, out, *extra):
    from autograder.cli import main

    return main(["batch", str(submitted), "--out", str(out), "--jobs", "1", *extra])


def test_not_run_has_its_own_exit_code_status_and_summary(tmp_path, runs_here, capsys):
    submitted = _class(tmp_path, {"alice": "ok", "bob": "weights", "carol": "weights"})
    out = tmp_path / "results"
    assert _batch(submitted, out) == 3
    stdout = capsys.readouterr().out
    assert "2 checks could not run here, on 2 submissions: finetune_learns on 2 (no pretrained weights here)" in stdout
    assert {s: r["status"] for s, r in _table(out).items()} == {"alice": "graded", "bob": "not run",
                                                                "carol": "not run"}
    assert _batch(submitted, out, "--student", "alice") == 0  # the students selected decide the code
    (submitted / "alice" / "a2-cnn" / "a2-cnn.ipynb").write_text("bug")
    assert _batch(submitted, out) == 1  # a grader error outranks checks not run


def test_regrade_not_run_grades_again_only_the_students_with_checks_not_run(tmp_path, runs_here, capsys):
    submitted = _class(tmp_path, {"alice": "ok", "bob": "weights", "carol": "weights"})
    out = tmp_path / "results"
    _batch(submitted, out)
    runs_here.calls.clear()
    assert _batch(submitted, out) == 3 and runs_here.calls == []  # current: a plain rerun grades nobody
    runs_here.weights = True  # now on a machine where Part C's check can run
    assert _batch(submitted, out, "--regrade-not-run", "--student", "alice,bob") == 0
    assert runs_here.calls == ["bob"]
    assert _batch(submitted, out, "--regrade-not-run") == 0 and runs_here.calls == ["bob", "carol"]
    assert {s: float(r["score"]) for s, r in _table(out).items()} == {"alice": 2.0, "bob": 3.0, "carol": 3.0}
    assert {r["status"] for r in _table(out).values()} == {"graded"}


def test_progress_goes_to_stderr_and_ends_with_the_grader_errors(tmp_path, runs_here, capsys):
    submitted = _class(tmp_path, {"alice": "ok", "bob": "weights", "carol": "bug"})
    out = tmp_path / "results"
    assert _batch(submitted, out) == 1
    captured = capsys.readouterr()
    assert "grading 3 submissions, 1 at a time" in captured.err
    assert "3/3 [" in captured.err and "checks: 3 passed, 0 failed, 1 not run | 1 grader error" in captured.err
    errors = captured.err[captured.err.index("grader errors (regrade these):"):].splitlines()
    assert errors[2].split() == ["carol", "cnn:", "boom"]
    assert "3/3 [" not in captured.out  # stdout keeps the per-student lines and the summary only
    assert _batch(submitted, out, "--student", "alice,bob") == 3
    assert "grading 0 submissions (2 already graded and current)" in capsys.readouterr().err

@pytest.mark.slow
def test_a_real_check_that_cannot_run_here_is_not_run_in_the_table_the_summary_and_the_exit_code(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    submitted = tmp_path / "submitted"
    folder = submitted / "ann" / "a2-cnn"
    folder.mkdir(parents=True)
    build(BY_NAME["reference"], folder / "a2-cnn.ipynb")
    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "-m", "autograder", "batch", str(submitted), "--out", str(out),
                             "--parts", "learning", "--tier", "cpu", "--jobs", "1"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 3, result.stderr  # Part C's training check needs weights this machine lacks
    row = _table(out)["ann"]
    assert row["status"] == "not run" and row["not_run"] == "finetune_learns"
    assert "1 check could not run here, on 1 submission: finetune_learns on 1 (Part C" in result.stdout
    assert float(row["cnn_learns"]) > 0  # the checks that could run did



def test_grades_train_the_unet_beside_the_cnn_only_when_the_class_runs_one_at_a_time(tmp_path, monkeypatch):
    """With several grades at a time every core is taken: a second training process would only add its start-up."""
    seen = []
    real_grade_one = batch.grade_one

    def grade_one(student, notebook, out_dir, config, key):
        seen.append(config.training_processes)
        return real_grade_one(student, notebook, out_dir, dataclasses.replace(config, parts=("cnn",)), key)

    monkeypatch.setattr(batch, "grade_one", grade_one)
    def in_pool(todo, out_dir, config, jobs, done):
        seen.append(("pool", config.training_processes))
        for student, (notebook, key) in todo.items():
            done(real_grade_one(student, notebook, out_dir, config, key))

    monkeypatch.setattr(batch, "_grade_in_pool", in_pool)
    submitted = _class(tmp_path, {"ann": "not a notebook"})
    batch.grade_tree(submitted, tmp_path / "one", GraderConfig(), progress=False, jobs=1)
    batch.grade_tree(submitted, tmp_path / "two", GraderConfig(), progress=False, jobs=2)
    assert seen == [2, ("pool", 1)]
