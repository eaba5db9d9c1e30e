"""results.json follows Gradescope's specification: passed/failed only, per-check visibility, the not-run policy."""
import csv
import json

import pytest

from autograder import gradescope
from autograder.batch import grade_tree
from autograder.cli import main as cli_main
from autograder.config import GraderConfig
from autograder.report import CheckResult, GradeReport, PartReport
from tests.corpus import BY_NAME, build
from tests.results_schema import assert_valid_results


def _report():
    report = GradeReport(submission="s.ipynb", seconds=12.34)
    structure = PartReport("cnn", results=[
        CheckResult("cnn_layers", "cnn", "layers", 0.5, 0.5, "passed", "all six groups verified"),
        CheckResult("cnn_only_myconv", "cnn", "MyConv2d only", 0.0, 0.5, "failed", "use MyConv2d, not nn.Conv2d"),
    ])
    learning = PartReport("learning", results=[
        CheckResult("cnn_learns", "learning", "CNN learns", 1.0, 1.0, "passed", "validation loss 2.01"),
        CheckResult("finetune_learns", "learning", "Part C learns", 0.0, 1.0, "not run", "no pretrained weights"),
    ])
    report.parts += [structure, learning]
    return report


def _tests(results):
    return {t["tags"][1]: t for t in results["tests"]}


def test_by_default_a_check_that_could_not_run_is_failed_with_zero_and_tagged_for_regrade():
    results = assert_valid_results(gradescope.results_text(_report()))
    tests = _tests(results)
    assert results["score"] == 1.5 and results["stdout_visibility"] == "hidden" and results["execution_time"] == 12.3
    assert [t["number"] for t in results["tests"]] == ["1", "2", "3", "4"]
    assert {name: t["status"] for name, t in tests.items()} == {
        "cnn_layers": "passed", "cnn_only_myconv": "failed", "cnn_learns": "passed", "finetune_learns": "failed"}
    not_run = tests["finetune_learns"]
    assert not_run["score"] == 0 and not_run["max_score"] == 1.0
    assert not_run["output"].startswith("NOT RUN") and "no pretrained weights" in not_run["output"]
    assert {"not-run", "regrade"} <= set(not_run["tags"]) and "not-run" not in tests["cnn_only_myconv"]["tags"]
    assert "count 0 until regraded" in results["output"]


def test_the_exclude_policy_leaves_the_check_out_of_the_total():
    results = assert_valid_results(gradescope.results_text(_report(), not_run_policy="exclude"))
    not_run = _tests(results)["finetune_learns"]
    assert not_run["max_score"] == 0 and not_run["score"] == 0 and not_run["status"] == "failed"
    assert sum(t["max_score"] for t in results["tests"]) == 2.0 and "left out of this total" in results["output"]


def test_visibility_is_set_per_check():
    results = gradescope.to_results(_report(), visibility="after_due_date",
                                    check_visibility={"cnn_only_myconv": "hidden", "cnn_learns": "visible"})
    assert {name: t["visibility"] for name, t in _tests(results).items()} == {
        "cnn_layers": "after_due_date", "cnn_only_myconv": "hidden", "cnn_learns": "visible",
        "finetune_learns": "after_due_date"}


@pytest.mark.parametrize("settings, words", [
    ({"visibility": "public"}, "unknown visibility"),
    ({"check_visibility": {"cnn_layers": "soon"}}, "unknown visibility"),
    ({"check_visibility": {"no_such_check": "hidden"}}, "unknown check"),
    ({"not_run_policy": "full"}, "unknown not-run policy"),
])
def test_unknown_settings_are_refused(settings, words):
    with pytest.raises(gradescope.ResultsSettingError, match=words):
        gradescope.check_settings(**settings)


@pytest.mark.parametrize("argv", [["--check-visibility", "cnn_layers"], ["--check-visibility", "nope=hidden"]])
def test_the_command_line_refuses_bad_visibility_before_grading(argv, tmp_path, capsys):
    path = build(BY_NAME["not_json"], tmp_path / "submission.ipynb")
    assert cli_main(["grade", str(path), *argv]) == 2
    assert capsys.readouterr().err.startswith("settings error: command line: check_visibility = ")


def test_a_schema_violation_is_caught():
    """The schema test can fail: a 'not run' status, a missing field or an unknown visibility are rejected."""
    import jsonschema

    good = gradescope.to_results(_report())
    for broken in ({**good, "tests": [{**good["tests"][0], "status": "not run"}]},
                   {**good, "tests": [{k: v for k, v in good["tests"][0].items() if k != "number"}]},
                   {**good, "tests": [{**good["tests"][0], "visibility": "public"}]}):
        with pytest.raises(jsonschema.ValidationError):
            assert_valid_results(json.dumps(broken))


@pytest.mark.slow
def test_batch_writes_valid_results_for_every_student(tmp_path):
    submitted = tmp_path / "submitted"
    for student, example in (("alice", "missing_relu"), ("bob", "not_json")):
        folder = submitted / student / "a2-cnn"
        folder.mkdir(parents=True)
        build(BY_NAME[example], folder / "a2-cnn.ipynb")
    (submitted / "carol").mkdir()  # a student folder without the notebook
    config = GraderConfig(parts=("cnn",), check_visibility=(("cnn_layers", "hidden"),))
    rows = dict(grade_tree(submitted, tmp_path / "results", config, progress=False))
    assert {s: r.score for s, r in rows.items()} == {"alice": 1.5, "bob": 0.0, "carol": 0.0}
    for student in rows:
        results = assert_valid_results(tmp_path / "results" / f"{student}.json")
        assert _tests(results)["cnn_layers"]["visibility"] == "hidden"
        assert (tmp_path / "results" / f"{student}.instructor.log").is_file()
    with open(tmp_path / "results" / "grades.csv", newline="") as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    assert float(table["alice"]["score"]) == 1.5 and float(table["alice"]["cnn_layers"]) == 0.0
