"""Grade every submission of an nbgrader ``submitted/`` tree: one results file per student and a CSV."""
from pathlib import Path

from tqdm.auto import tqdm

from .grade import grade_notebook
from .config import GraderConfig
from .results import settings_of, write_csv, write_json

NOTEBOOK = "a2-cnn.ipynb"


def find_submissions(submitted_dir, assignment="a2-cnn"):
    """{student_id: notebook path} for submitted/<student>/<assignment>/; a student folder without the notebook
    maps to the path it should have had (grading it reports the file as missing)."""
    found = {}
    for student_dir in sorted(p for p in Path(submitted_dir).iterdir() if p.is_dir()):
        found[student_dir.name] = student_dir / assignment / NOTEBOOK
    return found


def grade_tree(submitted_dir, out_dir, config=None, assignment="a2-cnn", progress=True):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    submissions = find_submissions(submitted_dir, assignment)
    for student, notebook in tqdm(submissions.items(), desc="grading", unit="student", disable=not progress):
        report = grade_notebook(notebook, config)
        write_json(report, out_dir / f"{student}.json", **settings_of(config or GraderConfig()))
        rows.append((student, report))
    write_csv(rows, out_dir / "grades.csv")
    return rows
