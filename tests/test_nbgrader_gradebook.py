"""A class graded through nbgrader with the isolated grader: the gradebook holds the isolated scores next to the
written answers an instructor grades by hand, and `nbgrader export` and `nbgrader generate_feedback` work on them.

A scratch course with three students (the reference, one missing a ReLU, one that lists the CNN's groups in the
wrong order): `nbgrader autograde` (whose `Execute` the course's nbgrader_config.py replaces with the isolated
grader), manual scores for the written answers through nbgrader's Gradebook API, then export and feedback.
"""
import csv
import re
import shutil

import pytest

from tests.corpus import BY_NAME, build
from tests.test_nbgrader_agreement import REPO_ROOT, nbgrader

STUDENTS = {"ada": "reference", "ben": "missing_relu", "cy": "optimizer_gets_all"}
AUTOGRADED = ("test_cnn", "test_unet", "test_finetune")
WRITTEN = {"answer_a2_results": 1.0, "answer_b3_compare": 1.5}  # what the instructor gives each student by hand


@pytest.mark.slow
def test_isolated_scores_and_written_ones_come_out_of_export_and_feedback(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    shutil.copytree(REPO_ROOT / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    config = (REPO_ROOT / "nbgrader_config.py").read_text()
    # the training checks cannot run here (they take most of the time): leave them to the instructor's GPU runner
    (course / "nbgrader_config.py").write_text(config + '\nc.A2Grader.parts = ["cnn", "unet", "finetune"]\n')
    nbgrader(course, "generate_assignment", "a2-cnn", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in STUDENTS:
            gradebook.add_student(student)
    for student, example in STUDENTS.items():
        submitted = course / "submitted" / student / "a2-cnn"
        submitted.mkdir(parents=True)
        shutil.copytree(course / "release" / "a2-cnn" / "a2cnn", submitted / "a2cnn")
        build(BY_NAME[example], submitted / "a2-cnn.ipynb")
    nbgrader(course, "autograde", "a2-cnn", "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        autograded = {}
        for student in STUDENTS:
            notebook = gradebook.find_submission_notebook("a2-cnn", "a2-cnn", student)
            grades = {g.name: g for g in notebook.grades}
            autograded[student] = {name: grades[name].score for name in AUTOGRADED}
            for name, points in WRITTEN.items():
                grades[name].manual_score = points
        gradebook.db.commit()
    for student, example in STUDENTS.items():
        expected = BY_NAME[example].expected
        assert autograded[student] == {f"test_{p}": expected[p] for p in ("cnn", "unet", "finetune")}, student

    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv") as handle:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert exported == {s: sum(autograded[s].values()) + sum(WRITTEN.values()) for s in STUDENTS}

    nbgrader(course, "generate_feedback", "a2-cnn", "--force")
    for student in STUDENTS:
        html = (course / "feedback" / student / "a2-cnn" / "a2-cnn.html").read_text()
        text = re.sub(r"<[^>]+>", "", html)
        assert "[PASS]" in text or "[FAIL]" in text, student      # the isolated grader's feedback
        assert "HIDDEN TESTS" not in text, student                 # and no hidden test
