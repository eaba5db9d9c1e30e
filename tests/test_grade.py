"""grade_notebook's own guarantees, independent of the checks: unknown failures stay contained."""
import dataclasses

from autograder import grade
from autograder.config import GraderConfig
from autograder.execution import Execution
from tests.corpus import BY_NAME, build


def test_a_grader_bug_in_one_part_is_reported_and_the_other_parts_are_still_graded(tmp_path, monkeypatch):
    path = build(BY_NAME["reference"], tmp_path / "reference.ipynb")
    real = grade.checks_for

    def broken(_evidence):
        raise KeyError("simulated grader bug")

    def checks_with_a_bug_in_unet(part):
        checks = real(part)
        return [dataclasses.replace(c, decide=broken) for c in checks] if part == "unet" else checks

    monkeypatch.setattr(grade, "checks_for", checks_with_a_bug_in_unet)
    report = grade.grade_notebook(path, GraderConfig(parts=("cnn", "unet")))
    assert report.part_score("cnn") == 2
    assert report.part_score("unet") == 0 and {r.status for r in report.results if r.part == "unet"} == {"not run"}
    assert report.grader_errors == ["unet: KeyError: 'simulated grader bug'"]
    assert all("not your fault" in r.message for r in report.results if r.part == "unet")


def test_a_sandbox_that_cannot_start_is_not_the_students_fault(tmp_path, monkeypatch):
    path = build(BY_NAME["reference"], tmp_path / "reference.ipynb")
    monkeypatch.setattr(grade, "execute", lambda steps, config, **_: Execution(steps={}, internal="bwrap: cannot start"))
    report = grade.grade_notebook(path, GraderConfig(parts=("cnn",)))
    assert report.grader_errors == ["cnn: bwrap: cannot start"]
    assert report.results and all(r.status == "not run" and "not your fault" in r.message for r in report.results)
    assert "bwrap" not in " ".join(r.message for r in report.results)  # the reason is the instructor's
