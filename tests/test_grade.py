"""grade_notebook's own guarantees, independent of the checks: unknown failures stay contained."""
from autograder import grade
from autograder.config import GraderConfig
from autograder.sandbox.runner import SandboxResult
from tests.corpus import BY_NAME, build


def test_a_grader_bug_in_one_part_is_reported_and_the_other_parts_are_still_graded(tmp_path, monkeypatch):
    path = build(BY_NAME["reference"], tmp_path / "reference.ipynb")
    real = grade.grade_part

    def broken_for_unet(report, submission, master, part, config):
        if part == "unet":
            raise KeyError("simulated grader bug")
        return real(report, submission, master, part, config)

    monkeypatch.setattr(grade, "grade_part", broken_for_unet)
    report = grade.grade_notebook(path, GraderConfig(parts=("cnn", "unet")))
    assert report.part_score("cnn") == 2
    assert report.part_score("unet") == 0 and {r.status for r in report.results if r.part == "unet"} == {"not run"}
    assert report.grader_errors == ["unet: KeyError: 'simulated grader bug'"]


def test_sandbox_internal_errors_are_not_the_students_fault(tmp_path, monkeypatch):
    path = build(BY_NAME["reference"], tmp_path / "reference.ipynb")
    monkeypatch.setattr(grade, "run_isolated", lambda *args, **kwargs: SandboxResult(status="internal", message="task import failed"))
    report = grade.grade_notebook(path, GraderConfig(parts=("cnn",)))
    assert report.grader_errors == ["cnn: task import failed"]
    assert all(r.status == "not run" and "not your fault" in r.message for r in report.results)
