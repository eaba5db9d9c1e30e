"""Splitting a class into shards (one per CI job) and merging their folders gives what one run gives."""
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder import batch, merge
from autograder.cli import main
from autograder.config import GraderConfig
from tests.conftest import REPO_ROOT
from tests.corpus import BY_NAME, build
from tests.test_batch import _class, _table, assert_consistent, counted  # noqa: F401 - a fixture

STUDENTS = {f"s{i:03d}": str(i % 3) for i in range(12)}


def test_a_students_shard_depends_on_the_id_alone():
    before = {s: batch.shard_of(s, 4) for s in STUDENTS}
    assert set(before.values()) == {1, 2, 3, 4}
    more = [f"late{i}" for i in range(50)]
    after = {s: batch.shard_of(s, 4) for s in [*more, *STUDENTS]}
    assert {s: after[s] for s in STUDENTS} == before  # adding students moves nobody
    assert batch.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="shard"):
            batch.parse_shard(bad)


def test_shards_then_merge_give_the_table_of_one_run(tmp_path, counted):  # noqa: F811
    submitted = _class(tmp_path, STUDENTS)
    batch.grade_tree(submitted, tmp_path / "whole", GraderConfig(), progress=False, jobs=1)
    counted.clear()
    shards = []
    for index in (1, 2, 3):
        shards.append(tmp_path / f"shard{index}")
        rows = batch.grade_tree(submitted, shards[-1], GraderConfig(), progress=False, jobs=1, shard=(index, 3))
        assert set(_table(shards[-1])) == {s for s, _ in rows}  # a shard's table has its own students only
    assert sorted(counted) == sorted(STUDENTS)  # every student graded once, in one shard
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 3  # Part C not run for all
    assert (tmp_path / "merged" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()
    assert_consistent(tmp_path / "merged")
    # merging again, or into a shard's own folder, changes nothing
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 3
    assert main(["merge", str(shards[1]), str(shards[2]), "--out", str(shards[0])]) == 3
    assert (shards[0] / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()


def test_merge_refuses_two_results_for_one_student_and_writes_nothing(tmp_path, counted, capsys):  # noqa: F811
    submitted = _class(tmp_path, {"alice": "2", "bob": "1"})
    batch.grade_tree(submitted, tmp_path / "a", GraderConfig(), progress=False, jobs=1)
    (submitted / "bob" / "a2-cnn" / "a2-cnn.ipynb").write_text("2")  # resubmitted between the two runs
    batch.grade_tree(submitted, tmp_path / "b", GraderConfig(), progress=False, jobs=1)
    assert main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "cannot merge" in err and "bob" in err and "alice" not in err and "1/3" in err and "2/3" in err
    assert not (tmp_path / "m").exists()


def test_merge_refuses_folders_graded_with_other_settings(tmp_path, counted):  # noqa: F811
    submitted = _class(tmp_path, {"alice": "2", "bob": "1"})
    batch.grade_tree(submitted, tmp_path / "a", GraderConfig(), progress=False, jobs=1, students=["alice"])
    batch.grade_tree(submitted, tmp_path / "b", GraderConfig(visibility="hidden"), progress=False, jobs=1,
                     students=["bob"])
    with pytest.raises(merge.MergeError, match="different graders or settings"):
        merge.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m")


def test_merge_refuses_a_folder_that_is_not_a_result_folder_or_lacks_a_results_file(tmp_path, counted):  # noqa: F811
    submitted = _class(tmp_path, {"alice": "2"})
    batch.grade_tree(submitted, tmp_path / "a", GraderConfig(), progress=False, jobs=1)
    with pytest.raises(merge.MergeError, match="no graded results"):
        merge.merge([submitted], tmp_path / "m")
    (tmp_path / "a" / "alice.json").unlink()
    with pytest.raises(merge.MergeError, match="alice.json"):
        merge.merge([tmp_path / "a"], tmp_path / "m")


def test_a_student_outside_the_shard_is_a_usage_error(tmp_path, counted, capsys):  # noqa: F811
    submitted = _class(tmp_path, STUDENTS)
    student = next(s for s in STUDENTS if batch.shard_of(s, 2) == 2)
    assert main(["batch", str(submitted), "--out", str(tmp_path / "o"), "--jobs", "1", "--shard", "1/2",
                 "--student", student]) == 2
    assert "not in shard 1/2" in capsys.readouterr().err
    assert main(["batch", str(submitted), "--out", str(tmp_path / "o"), "--shard", "3/2"]) == 2


# --- real grades --------------------------------------------------------------------------------------------------

def _real_class(tmp_path, examples):
    submitted = tmp_path / "submitted"
    for student, example in examples.items():
        folder = submitted / student / "a2-cnn"
        folder.mkdir(parents=True)
        if example is not None:  # None: the student submitted nothing
            build(BY_NAME[example], folder / "a2-cnn.ipynb")
    return submitted


def _cli(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_real_unreadable_submissions_shard_and_merge_like_one_run(tmp_path):
    submitted = _real_class(tmp_path, {"ann": "not_json", "ben": None, "cat": "not_json", "dan": None})
    config = GraderConfig(parts=("cnn",))
    batch.grade_tree(submitted, tmp_path / "whole", config, progress=False, jobs=1)
    for index in (1, 2):
        batch.grade_tree(submitted, tmp_path / f"shard{index}", config, progress=False, jobs=1, shard=(index, 2))
    merge.merge([tmp_path / "shard1", tmp_path / "shard2"], tmp_path / "merged")
    assert (tmp_path / "merged" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()
    records = assert_consistent(tmp_path / "merged")
    assert set(records) == {"ann", "ben", "cat", "dan"} and all(r.fatal for r in records.values())


@pytest.mark.slow
def test_real_grades_through_the_command_line_shard_and_merge_like_one_run(tmp_path):
    submitted = _real_class(tmp_path, {"ann": "reference", "ben": "missing_relu", "cat": "uses_nn_conv2d",
                                       "dan": "not_json"})
    runs = [("--out", tmp_path / "whole", "--jobs", "2")]
    runs += [("--out", tmp_path / f"shard{i}", "--jobs", "1", "--shard", f"{i}/2") for i in (1, 2)]
    for run in runs:
        process = _cli("batch", submitted, "--parts", "cnn", *run)
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    process = _cli("merge", tmp_path / "shard1", tmp_path / "shard2", "--out", tmp_path / "merged")
    assert process.communicate(timeout=120) and process.returncode == 0
    assert (tmp_path / "merged" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()
    scores = {s: float(row["score"]) for s, row in _table(tmp_path / "merged").items()}
    assert scores == {"ann": 2.0, "ben": 1.5, "cat": 0.0, "dan": 0.0}


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_driver_stopped_mid_class_leaves_consistent_files_and_the_rerun_grades_only_the_rest(tmp_path, how):
    examples = {"ann": "reference", "ben": "missing_relu", "dan": "uses_nn_conv2d"}
    submitted = _real_class(tmp_path, examples)
    out = tmp_path / "results"
    process = _cli("batch", submitted, "--parts", "cnn", "--out", out, "--jobs", "2")
    deadline = time.monotonic() + 300
    while not list((out / batch.STATE_DIR).glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(how)
    process.communicate(timeout=120)
    assert process.returncode == (130 if how == signal.SIGTERM else -signal.SIGKILL)
    time.sleep(1)  # after a kill -9 the pool's processes notice their parent is gone and stop
    if how == signal.SIGTERM:
        first = assert_consistent(out)  # the stopped run rewrote the table to match its files
    else:
        first = {p.stem: batch.load_record(out, p.stem) for p in (out / batch.STATE_DIR).glob("*.json")}
    assert first and len(first) < len(examples)
    keys = {student: record.key for student, record in first.items()}
    mtimes = {student: batch.state_path(out, student).stat().st_mtime_ns for student in first}
    process = _cli("batch", submitted, "--parts", "cnn", "--out", out, "--jobs", "2")
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    records = assert_consistent(out)
    assert set(records) == set(examples)
    # what the first run finished was not graded again
    assert {s: batch.state_path(out, s).stat().st_mtime_ns for s in first} == mtimes
    assert {s: records[s].key for s in first} == keys
    assert {s: r.score for s, r in records.items()} == {"ann": 2.0, "ben": 1.5, "dan": 0.0}
