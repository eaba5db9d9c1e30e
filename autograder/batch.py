"""Grade a class: every submission of an nbgrader ``submitted/`` tree, over a pool of processes, resumable.

Each student's results are written as soon as they are known, each file atomically: ``<student>.json``
(Gradescope's format), ``<student>.instructor.log``, then ``.state/<student>.json``, the record the CSV is built
from. The record carries the key it was graded under: a hash of the notebook's bytes, of the grader's own files
(code, master notebook, helper package, calibration) and of the settings. A rerun grades only the students whose
key changed (a new submission, another grader or calibration, other settings) or who have no record yet, so a
killed run loses at most the grades in flight; ``regrade=True`` grades everyone again, ``students`` selects.
``grades.csv`` is rebuilt from the records at the end of every run, so it always agrees with the per-student files.

Each grade already runs the student's code in its own sandboxed workers; the driver only schedules whole grades
(``default_jobs``: the cores divided by each grade's threads, no more than memory allows). A grade whose process
died is retried once in a fresh pool, then reported as a grader error and left without a record (never scored).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
from pathlib import Path

from tqdm.auto import tqdm

from .config import GRADER_ROOT, GraderConfig, grading_settings
from .results import settings_of, write_atomic, write_csv, write_json

NOTEBOOK = "a2-cnn.ipynb"
STATE_DIR = ".state"
MEMORY_PER_GRADE = 3 * 2**30  # the parent and one worker of a full cpu-tier grade (about 1.1 GiB each, measured)
POOL_ATTEMPTS = 2
# What a grade depends on besides the notebook: the grader's own files.
GRADER_FILES = ("autograder", "source/a2-cnn/a2cnn", "source/a2-cnn/a2-cnn.ipynb")


@dataclasses.dataclass
class Record:
    """One student's grade as the class table needs it (``.state/<student>.json``)."""
    student: str
    key: str
    score: float
    max_score: float
    fatal: str = ""
    grader_errors: list = dataclasses.field(default_factory=list)
    checks: dict = dataclasses.field(default_factory=dict)    # check name -> points
    not_run: list = dataclasses.field(default_factory=list)   # checks that could not run here
    seconds: float = 0.0


def find_submissions(submitted_dir, assignment="a2-cnn"):
    """{student_id: notebook path} for submitted/<student>/<assignment>/; a student folder without the notebook
    maps to the path it should have had (grading it reports the file as missing)."""
    found = {}
    for student_dir in sorted(p for p in Path(submitted_dir).iterdir() if p.is_dir()):
        found[student_dir.name] = student_dir / assignment / NOTEBOOK
    return found


@functools.lru_cache(maxsize=1)
def grader_fingerprint() -> str:
    """SHA-256 of every file the grader's verdicts depend on (not of caches)."""
    digest = hashlib.sha256()
    for entry in GRADER_FILES:
        path = GRADER_ROOT / entry
        for file in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                digest.update(file.relative_to(GRADER_ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def submission_key(notebook: Path, config: GraderConfig) -> str:
    digest = hashlib.sha256(grader_fingerprint().encode())
    digest.update(repr(sorted(grading_settings(config).items())).encode())
    try:
        digest.update(notebook.read_bytes())
    except OSError as exc:  # missing or unreadable: graded as such, and regraded once it is there
        digest.update(f"unreadable: {type(exc).__name__}".encode())
    return digest.hexdigest()[:32]


def default_jobs(config: GraderConfig) -> int:
    """Grades at a time: the cores each grade's threads leave, no more than the machine's memory holds."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    by_cores = max(1, cores // max(1, config.threads))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        by_memory = max(1, memory // MEMORY_PER_GRADE)
    except (ValueError, OSError):
        by_memory = by_cores
    return int(min(by_cores, by_memory))


def state_path(out_dir: Path, student: str) -> Path:
    return out_dir / STATE_DIR / f"{student}.json"


def load_record(out_dir: Path, student: str) -> Record | None:
    try:
        return Record(**json.loads(state_path(out_dir, student).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def grade_one(student: str, notebook: Path, out_dir: Path, config: GraderConfig, key: str) -> Record:
    """Grade one notebook and write its three files (the record last: it marks the grade as done)."""
    from .grade import grade_notebook

    report = grade_notebook(notebook, config)
    write_json(report, out_dir / f"{student}.json", **settings_of(config))  # and <student>.instructor.log
    record = Record(student=student, key=key, score=report.score, max_score=report.max_score,
                    fatal=report.fatal or "", grader_errors=list(report.grader_errors),
                    checks={r.name: r.score for r in report.results},
                    not_run=[r.name for r in report.results if r.status == "not run"], seconds=report.seconds)
    if not record.grader_errors:  # a grader error is regraded on the next run
        write_atomic(state_path(out_dir, student), json.dumps(dataclasses.asdict(record), indent=1))
    return record


def _pool(jobs: int):
    # a fresh interpreter per pool process: forking a parent that has started torch's threads is unsafe
    return concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def grade_tree(submitted_dir, out_dir, config=None, assignment="a2-cnn", progress=True, jobs=None, regrade=False,
               students=None):
    """Grade the class; returns [(student, Record)] in student order, the students graded before included."""
    config = config or GraderConfig()
    out_dir = Path(out_dir)
    (out_dir / STATE_DIR).mkdir(parents=True, exist_ok=True)
    everyone = find_submissions(submitted_dir, assignment)
    submissions = everyone
    if students:
        unknown = sorted(set(students) - set(everyone))
        if unknown:
            raise ValueError(f"no submission folder for {', '.join(unknown)}")
        submissions = {s: p for s, p in everyone.items() if s in set(students)}
    records, todo = {}, {}
    for student, notebook in submissions.items():
        key = submission_key(notebook, config)
        previous = None if regrade else load_record(out_dir, student)
        if previous is not None and previous.key == key:
            records[student] = previous
        else:
            todo[student] = (notebook, key)
    jobs = max(1, int(jobs or config.jobs or default_jobs(config)))
    bar = tqdm(total=len(todo), desc="grading", unit="student", disable=not progress)
    if jobs == 1:
        for student, (notebook, key) in todo.items():
            records[student] = grade_one(student, notebook, out_dir, config, key)
            bar.update()
    else:
        pending = dict(todo)
        for attempt in range(POOL_ATTEMPTS):
            if not pending:
                break
            with _pool(min(jobs, len(pending))) as pool:
                futures = {pool.submit(grade_one, s, nb, out_dir, config, key): s for s, (nb, key) in pending.items()}
                for future in concurrent.futures.as_completed(futures):
                    student = futures[future]
                    try:
                        records[student] = future.result()
                    except Exception as exc:  # noqa: BLE001 - the grading process died (OOM killer, kill -9)
                        if attempt + 1 < POOL_ATTEMPTS:
                            continue
                        records[student] = Record(student=student, key=pending[student][1], score=0.0,
                                                  max_score=0.0, grader_errors=[f"grading process failed: "
                                                                                f"{type(exc).__name__}: {exc}"])
                    pending.pop(student)
                    bar.update()
    bar.close()
    # the table holds every student with a record, this run's or an earlier one's
    table = dict(records)
    for student in everyone:
        if student not in table:
            previous = load_record(out_dir, student)
            if previous is not None:
                table[student] = previous
    write_csv([table[s] for s in sorted(table)], out_dir / "grades.csv")
    return [(student, records[student]) for student in submissions]
