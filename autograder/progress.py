"""Progress of a class being graded, on stderr, for a person: one line for the class (done / total, a bar, the rate,
the time left), the checks passed, failed and not run so far, and the grader errors; at the end the slowest
submissions and every grader error.

On a terminal the line is redrawn in place after every grade; elsewhere (a CI log, a file) a line is written every
``every`` seconds, and once at the end, so that a log shows progress without a line per student.
"""
from __future__ import annotations

import shutil
import sys
import time

from . import feedback

BAR = 24        # characters of the bar
SLOWEST = 5     # rows of the final table of the slowest submissions
ERROR_CHARS = 200


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ClassProgress:
    """``update(record)`` after each grade (batch.Record), ``close()`` at the end."""

    def __init__(self, total: int, current: int = 0, jobs: int = 1, stream=None, tty=None, every: float = 60.0,
                 clock=time.monotonic, width=None):
        self.total, self.current, self.jobs = total, current, jobs
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        # a line redrawn in place must fit the terminal: a wrapped line cannot be redrawn
        self.width = width or (shutil.get_terminal_size().columns - 1 if self.tty else None)
        self.every, self.clock = every, clock
        self.started = self.last_line = clock()
        self.records = []
        self.checks = {"passed": 0, "failed": 0, "not run": 0}
        skipped = f" ({current} already graded and current)" if current else ""
        self._write(f"grading {total} submission{'s' if total != 1 else ''}{skipped}, {jobs} at a time", True)

    def update(self, record) -> None:
        self.records.append(record)
        not_run = set(record.not_run)
        for name, points in record.checks.items():
            status = "not run" if name in not_run else "passed" if points > 0 else "failed"
            self.checks[status] += 1
        now = self.clock()
        if self.tty:
            self._write(self.line(now), False)
        elif now - self.last_line >= self.every:
            self._write(self.line(now), True)
            self.last_line = now

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        done, elapsed = len(self.records), now - self.started
        fraction = done / self.total if self.total else 1.0
        filled = int(BAR * fraction)
        bar = "#" * filled + "." * (BAR - filled)
        if done and elapsed > 0:
            rate = f"{60 * done / elapsed:.1f}/min"
            eta = f"ETA {duration(elapsed / done * (self.total - done))}" if done < self.total else \
                f"in {duration(elapsed)}"
        else:
            rate, eta = "-/min", "ETA -"
        errors = sum(1 for record in self.records if record.grader_errors)
        checks = ", ".join(f"{count} {status}" for status, count in self.checks.items())
        return (f"{done}/{self.total} [{bar}] {100 * fraction:3.0f}% {rate} {eta} | checks: {checks}"
                + (f" | {errors} grader error{'s' if errors != 1 else ''}" if errors else ""))

    def close(self) -> None:
        self._write(self.line(), True)
        for line in self.tables():
            print(line, file=self.stream, flush=True)

    def tables(self) -> list:
        """The slowest submissions graded and the grader errors, as plain-text tables."""
        lines = []
        timed = sorted((r for r in self.records if r.seconds), key=lambda r: r.seconds, reverse=True)[:SLOWEST]
        if len(self.records) > 1 and timed:
            width = max(len("student"), *(len(r.student) for r in timed))
            lines += ["slowest submissions:", f"  {'student':<{width}}  seconds  score"]
            lines += [f"  {r.student:<{width}}  {r.seconds:7.1f}  {r.score:g}/{r.max_score:g}" for r in timed]
        failed = [r for r in self.records if r.grader_errors]
        if failed:
            width = max(len("student"), *(len(r.student) for r in failed))
            lines += ["grader errors (regrade these):", f"  {'student':<{width}}  error"]
            for record in failed:
                for error in record.grader_errors:
                    lines.append(f"  {record.student:<{width}}  {feedback.bound(error, ERROR_CHARS)}")
        return lines

    def _write(self, text: str, newline: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + (feedback.bound(text, self.width) if self.width else text)
                              + ("\n" if newline else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
