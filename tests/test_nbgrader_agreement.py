"""`nbgrader autograde` (through the master's hidden test cells) and the command-line grader give the same points."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.config import GraderConfig
from autograder.grade import grade_notebook
from tests.corpus import BY_NAME, build

REPO_ROOT = Path(__file__).resolve().parents[1]
PARTS = {"cnn": "test_cnn", "unet": "test_unet", "finetune": "test_finetune"}


def nbgrader(course, *args):
    # nbgrader runs in a course folder outside the repository, so its nbgrader_config.py names the grader as
    # installed; put this checkout first, as pytest's pythonpath does for this process, so that both sides of the
    # comparison are the grader under test (an installed copy may be another checkout's).
    pythonpath = os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p)
    env = dict(os.environ, PYTHONPATH=pythonpath,
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reference", "optimizer_gets_all", "missing_relu"])
def test_nbgrader_autograde_and_cli_agree(name, tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    shutil.copytree(REPO_ROOT / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    nbgrader(course, "generate_assignment", "a2-cnn", "--force")
    submitted = course / "submitted" / "student1" / "a2-cnn"
    submitted.mkdir(parents=True)
    shutil.copytree(course / "release" / "a2-cnn" / "a2cnn", submitted / "a2cnn")
    notebook = build(BY_NAME[name], submitted / "a2-cnn.ipynb")
    nbgrader(course, "autograde", "a2-cnn", "--student", "student1", "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        grades = {g.name: g.score for g in gradebook.find_submission_notebook("a2-cnn", "a2-cnn", "student1").grades}
    report = grade_notebook(notebook, GraderConfig(parts=tuple(PARTS)))
    cli = {part: report.part_score(part) for part in PARTS}
    autograded = {part: grades[cell] for part, cell in PARTS.items()}
    failing = {r.name: r.message for r in report.results if r.status != "passed"}
    assert autograded == cli, {"nbgrader": autograded, "cli": cli, "failing in the cli": failing}
    assert cli == {part: BY_NAME[name].expected[part] for part in PARTS}, failing
