"""Grade a class: every submission of an nbgrader ``submitted/`` tree, over a pool of processes, resumable.

Each student's results are written as soon as they are known, each file atomically: ``<student>.json``
(Gradescope's format), ``<student>.instructor.log``, then ``.state/<student>.json``, the record the CSV is built
from. The record carries the key it was graded under: a hash of the notebook's bytes, of the grader's own files
(code, master notebook, helper package, calibration) and of the settings. A rerun grades only the students whose
key changed (a new submission, another grader or calibration, other settings) or who have no record yet, so a
killed run loses at most the grades in flight; ``regrade=True`` grades everyone again, ``regrade_not_run=True``
those whose record has checks that could not run (to finish them where they can), ``students`` selects.
``grades.csv`` is rebuilt from the records, atomically, after every grade and when a run stops (an interruption
included), so it always agrees with the per-student files; after a kill -9 it lags by the grades in flight until the
next run (or ``merge``) rewrites it.

``shard=(i, n)`` grades only the students of shard i of n (``shard_of``: a hash of the student id, so a student's
shard does not change when others are added); ``merge.py`` puts the shards' folders back together.

Each grade already runs the student's code in its own sandboxed workers; the driver only schedules whole grades
(``default_jobs``: the cores divided by each grade's threads, no more than memory allows). A grade whose process
died is retried once in a fresh pool, then recorded as a grader error, without results (never scored). A record
with a grader error is never current: the next run grades that student again.
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

from .config import GRADER_ROOT, GraderConfig, grading_settings
from .results import instructor_log_path, settings_of, write_atomic, write_csv

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
    not_run_reasons: dict = dataclasses.field(default_factory=dict)  # check name -> why (the student's message)
    seconds: float = 0.0
    grader: str = ""  # hash of the grader's files and settings: one value for every record of a consistent class

    def verdict(self) -> dict:
        """What the record says about the student (all but the time it took)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "seconds"}


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


def grader_key(config: GraderConfig) -> str:
    """What every grade of one run shares: the grader's files and the settings."""
    digest = hashlib.sha256(grader_fingerprint().encode())
    digest.update(repr(sorted(grading_settings(config).items())).encode())
    return digest.hexdigest()[:16]


def submission_key(notebook: Path, config: GraderConfig) -> str:
    digest = hashlib.sha256(grader_key(config).encode())
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


def parse_shard(text: str) -> tuple:
    """``"i/n"`` (1 <= i <= n) -> (i, n); ValueError otherwise."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/n, e.g. 1/4 (got {text!r})") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard i/n needs 1 <= i <= n (got {text!r})")
    return index, count


def shard_of(student: str, count: int) -> int:
    """The shard (1..count) a student belongs to: from a hash of the id alone, so it is the same on every machine
    and does not change when students are added or removed."""
    return 1 + int.from_bytes(hashlib.sha256(student.encode("utf-8")).digest()[:8], "big") % count


def state_path(out_dir: Path, student: str) -> Path:
    return out_dir / STATE_DIR / f"{student}.json"


def load_record(out_dir: Path, student: str) -> Record | None:
    try:
        return Record(**json.loads(state_path(out_dir, student).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save_record(out_dir: Path, record: Record) -> None:
    write_atomic(state_path(out_dir, record.student), json.dumps(dataclasses.asdict(record), indent=1))


def write_table(out_dir: Path, table: dict) -> None:
    """grades.csv from {student: Record}, atomically."""
    write_csv([table[s] for s in sorted(table)], out_dir / "grades.csv")


def is_current(record: Record | None, key: str) -> bool:
    """Graded under this key, and not by a grader that failed (a grader error is regraded on the next run)."""
    return record is not None and record.key == key and not record.grader_errors


def grade_texts(student: str, notebook: Path, config: GraderConfig, key: str) -> tuple[str, str, Record]:
    """Grade one notebook: (results.json text, instructor log text, record). Writes nothing: the driver does."""
    from . import gradescope
    from .grade import grade_notebook
    from .results import instructor_log_text

    report = grade_notebook(notebook, config)
    record = Record(student=student, key=key, score=report.score, max_score=report.max_score,
                    fatal=report.fatal or "", grader_errors=list(report.grader_errors),
                    checks={r.name: r.score for r in report.results},
                    not_run=[r.name for r in report.results if r.status == "not run"], seconds=report.seconds,
                    not_run_reasons={r.name: r.message for r in report.results if r.status == "not run"},
                    grader=grader_key(config))
    return gradescope.results_text(report, **settings_of(config)), instructor_log_text(report), record


def save_grade(out_dir: Path, results: str, log: str, record: Record) -> None:
    """A student's three files, each atomically, the record last: it marks the grade as done."""
    results_path = out_dir / f"{record.student}.json"
    write_atomic(results_path, results)
    write_atomic(instructor_log_path(results_path), log)
    save_record(out_dir, record)


def grade_one(student: str, notebook: Path, out_dir: Path, config: GraderConfig, key: str) -> Record:
    """Grade one notebook and write its three files."""
    state_path(out_dir, student).unlink(missing_ok=True)  # killed from here on: no record, so graded again
    results, log, record = grade_texts(student, notebook, config, key)
    save_grade(out_dir, results, log, record)
    return record


def record_lost_grade(student: str, notebook: Path, out_dir: Path, config: GraderConfig, key: str, error: str):
    """The grading process died: no results for the student (never a score), a log and a record saying why."""
    from .report import GradeReport, PartReport
    from .results import write_instructor_log

    (out_dir / f"{student}.json").unlink(missing_ok=True)
    report = GradeReport(submission=str(notebook), parts=[PartReport(p, grader_error=error) for p in config.parts])
    write_instructor_log(report, out_dir / f"{student}.instructor.log")
    record = Record(student=student, key=key, score=0.0, max_score=0.0, grader_errors=[error],
                    grader=grader_key(config))
    save_record(out_dir, record)
    return record


def _pool(jobs: int):
    # A fresh interpreter per pool process: forking a parent that has started torch's threads is unsafe. Each dies
    # with the driver (a kill -9 of the driver leaves no grade running on, to write files a rerun also writes).
    from .sandbox.privileges import set_parent_death_signal

    return concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=set_parent_death_signal, initargs=(os.getpid(),))


def select(everyone: dict, students=None, shard=None) -> dict:
    """The submissions of the shard, of the students named (ValueError for a name without a submission)."""
    if shard:
        index, count = shard
        in_shard = {s: p for s, p in everyone.items() if shard_of(s, count) == index}
    else:
        in_shard = everyone
    if not students:
        return in_shard
    unknown = sorted(set(students) - set(everyone))
    if unknown:
        raise ValueError(f"no submission folder for {', '.join(unknown)}")
    elsewhere = sorted(set(students) - set(in_shard))
    if elsewhere:
        raise ValueError(f"not in shard {shard[0]}/{shard[1]}: {', '.join(elsewhere)}")
    return {s: p for s, p in in_shard.items() if s in set(students)}


def grade_tree(submitted_dir, out_dir, config=None, assignment="a2-cnn", progress=True, jobs=None, regrade=False,
               students=None, shard=None, regrade_not_run=False, engine="local", address=None):
    """Grade the class (or its shard ``(i, n)``); returns [(student, Record)] in student order for the students
    selected, those graded before included. grades.csv lists every student of the shard with a record.
    ``engine``: "local" (a pool of ``jobs`` processes here) or "ray" (``batch_ray``: the cluster at ``address``, or a
    local Ray instance).
    ``progress``: True for ``progress.ClassProgress`` on stderr, False for none, or an object like it."""
    config = config or GraderConfig()
    out_dir = Path(out_dir)
    (out_dir / STATE_DIR).mkdir(parents=True, exist_ok=True)
    found = find_submissions(submitted_dir, assignment)
    everyone = select(found, shard=shard)
    submissions = select(found, students, shard)
    table = {}  # the class table: every student of the shard with a record, this run's or an earlier one's
    for student in everyone:
        previous = load_record(out_dir, student)
        if previous is not None:
            table[student] = previous
    todo = {}
    for student, notebook in submissions.items():
        key = submission_key(notebook, config)
        previous = table.get(student)
        if regrade or not is_current(previous, key) or (regrade_not_run and previous.not_run):
            todo[student] = (notebook, key)
    jobs = max(1, int(jobs or config.jobs or default_jobs(config)))
    if engine == "ray" or jobs > 1:  # the cores are taken by other grades: a grade's second training process adds
        config = dataclasses.replace(config, training_processes=1)  # only its start-up (training_processes)
    if progress is True:
        from .progress import ClassProgress

        progress = ClassProgress(total=len(todo), current=len(submissions) - len(todo),
                                 jobs=max(1, min(jobs, len(todo))))

    def done(record):
        table[record.student] = record
        write_table(out_dir, table)
        if progress:
            progress.update(record)

    try:
        if engine == "ray":
            from .batch_ray import grade_on_ray

            grade_on_ray(todo, out_dir, config, done, address)
        elif jobs == 1:
            for student, (notebook, key) in todo.items():
                done(grade_one(student, notebook, out_dir, config, key))
        else:
            _grade_in_pool(todo, out_dir, config, jobs, done)
    finally:  # finished, failed or interrupted: the table is what the records on disk say
        if progress:
            progress.close()
        table = {s: r for s in everyone if (r := load_record(out_dir, s)) is not None}
        write_table(out_dir, table)
    return [(student, table[student]) for student in submissions]


def _grade_in_pool(todo: dict, out_dir: Path, config: GraderConfig, jobs: int, done) -> None:
    pending = dict(todo)
    for attempt in range(POOL_ATTEMPTS):
        if not pending:
            break
        pool = _pool(min(jobs, len(pending)))
        try:
            futures = {pool.submit(grade_one, s, nb, out_dir, config, key): s for s, (nb, key) in pending.items()}
            for future in concurrent.futures.as_completed(futures):
                student = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # noqa: BLE001 - the grading process died (OOM killer, kill -9)
                    if attempt + 1 < POOL_ATTEMPTS:
                        continue
                    notebook, key = pending[student]
                    record = record_lost_grade(student, notebook, out_dir, config, key,
                                               f"grading process failed: {type(exc).__name__}: {exc}")
                pending.pop(student)
                done(record)
        except BaseException:  # interrupted: stop the grades in flight (their sandboxes die with them), queue none
            for process in list((pool._processes or {}).values()):  # noqa: SLF001 - no public way before 3.14
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
