"""Reports: results.json (``gradescope.py``) with the instructor log beside it, a terminal summary, the class CSV.

``results.json`` is student-visible: every text in it is bounded and path-scrubbed (``feedback.py``) and the whole
file stays under ``gradescope.MAX_RESULTS_BYTES`` whatever the submission printed or raised. Everything an
instructor may need besides (what the code printed, sandbox messages with tracebacks, grader errors) goes to the
instructor log.
"""
import csv
import io
import os
from pathlib import Path

from . import feedback, gradescope

MAX_LOG_BYTES = 4 * 1024 * 1024  # the instructor log of one submission
LOG_LINE_CHARS = 256 * 1024      # one entry of that log (a part's output, a traceback)


def write_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (or a rerun after a kill) sees the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(report, path, **settings):
    """Write Gradescope's results.json (``gradescope.py``; ``settings``: visibility, check_visibility,
    not_run_policy) and, beside it, the instructor log (``instructor_log_path``), each atomically."""
    write_atomic(path, gradescope.results_text(report, **settings))
    write_instructor_log(report, instructor_log_path(path))


def settings_of(config) -> dict:
    """The results settings of a GraderConfig."""
    return {"visibility": config.visibility, "check_visibility": dict(config.check_visibility),
            "not_run_policy": config.not_run_policy}


def instructor_log_path(results_path):
    """``results.json`` -> ``results.instructor.log`` in the same folder (never shown to the student)."""
    results_path = Path(results_path)
    return results_path.with_name(results_path.stem + ".instructor.log")


def instructor_log_text(report):
    """Everything about one grade, for the instructor: bounded per line and in all (``MAX_LOG_BYTES``)."""
    lines = [f"submission: {report.submission}", f"score: {report.score:g} / {report.max_score:g}",
             f"seconds: {report.seconds:.1f}"]
    if report.fatal:
        lines.append(f"fatal: {report.fatal}")
    lines += [f"GRADER ERROR (regrade): {error}" for error in report.grader_errors]
    lines += [f"[{r.status}] {r.score:g}/{r.max_score:g} {r.name}: {r.message}" for r in report.results]
    lines += [f"note: {note}" for note in report.notes]
    lines += report.log
    kept, size = [], 0
    for line in lines:
        line = feedback.bound(line, LOG_LINE_CHARS)
        size += len(line.encode("utf-8")) + 1
        if size > MAX_LOG_BYTES:
            kept.append(f"[log cut at {MAX_LOG_BYTES // 2**20} MiB]")
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def write_instructor_log(report, path):
    write_atomic(path, instructor_log_text(report))


_MARK = {"passed": "PASS", "failed": "FAIL", "not run": "SKIP"}


def check_lines(report) -> list:
    """The student-visible lines of a grade: what made the file unreadable, each check, the notes."""
    lines = [f"  cannot read the submission: {report.fatal}"] if report.fatal else []
    for r in report.results:
        lines.append(f"  [{_MARK.get(r.status, r.status)}] {r.score:g}/{r.max_score:g} {r.part}: {r.title}")
        if r.status != "passed" and r.message:
            lines.append(f"         {r.message}")
    return lines + [f"  note: {note}" for note in report.notes]


def summary_text(report, show_logs=False):
    lines = [f"{report.submission}: {report.score:g} / {report.max_score:g} ({report.seconds:.1f} s)"]
    lines += check_lines(report)
    lines += [f"  GRADER ERROR (regrade): {error}" for error in report.grader_errors]
    if show_logs:
        lines += [f"  log: {line}" for line in report.log]
    return "\n".join(lines)


def record_status(record) -> str:
    """One word for the class table: grader error (regrade), not run (some checks, to regrade elsewhere), graded."""
    if record.grader_errors:
        return "grader error"
    if record.not_run:
        return "not run"
    return "graded"


def write_csv(records, path):
    """records: batch.Record per student. One column per check, plus total, max, status and what could not run."""
    names = []
    for record in records:
        names += [name for name in record.checks if name not in names]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["student", "score", "max_score", "status", "not_run", "fatal", *names])
    for record in records:
        writer.writerow([record.student, record.score, record.max_score, record_status(record),
                         " ".join(record.not_run), record.fatal, *[record.checks.get(n, "") for n in names]])
    write_atomic(path, text.getvalue())
