"""``grade --classroom``: one submission judged against a bar, for GitHub Classroom and plain CI.

GitHub Classroom's autograding (and any CI job) judges a command by its exit code and by whether it wrote to stderr.
In this mode the grader says only this:

* exit ``PASSED`` (0) when the score reaches the bar, ``BELOW_BAR`` (1) when it does not, ``GRADER_ERROR`` (4)
  when the grader itself failed on some part (never the submission's fault: regrade it), 2 for a usage or settings
  error as everywhere;
* stdout: a short summary a student may read (the verdict line, then each check with its feedback);
* stderr: nothing, unless something went wrong (a grader error, a setting refused). Progress is not shown, and what
  the grading process itself would print there (library warnings) goes to the instructor log instead.

The bar is the setting ``min_score`` (points); unset, it is every point of the parts graded. Checks that could not
run here count 0 under ``not_run_policy = zero`` and are left out of the total (and of the default bar) under
``exclude``, as in results.json.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings

from .config import GraderConfig
from .results import check_lines

PASSED, BELOW_BAR, GRADER_ERROR = 0, 1, 4  # not 3: that is "some checks not run" for grade and batch
TOLERANCE = 1e-9  # points are sums of halves; this only absorbs float rounding


@dataclasses.dataclass
class Verdict:
    score: float
    out_of: float       # the points graded here (without checks left out under the exclude policy)
    bar: float
    not_run: float      # points of checks that could not run here

    @property
    def passed(self) -> bool:
        return self.score >= self.bar - TOLERANCE


def points_of(parts) -> float:
    """What ``parts`` are worth, from the check registry (known before any grading)."""
    from .checks.registry import checks_for

    return round(sum(check.points for part in parts for check in checks_for(part)), 4)


def check_bar(config: GraderConfig) -> None:
    """ValueError when ``min_score`` is more than the parts graded are worth: no submission could pass."""
    worth = points_of(config.parts)
    if config.min_score is not None and config.min_score > worth + TOLERANCE:
        raise ValueError(f"min_score = {config.min_score:g} is more than the {worth:g} points the parts graded "
                         f"({', '.join(config.parts)}) are worth")


def verdict(report, config: GraderConfig) -> Verdict:
    not_run = round(sum(r.max_score for r in report.results if r.status == "not run"), 4)
    out_of = report.max_score - (not_run if config.not_run_policy == "exclude" else 0.0)
    bar = out_of if config.min_score is None else config.min_score
    return Verdict(score=report.score, out_of=round(out_of, 4), bar=round(bar, 4), not_run=not_run)


def summary(report, result: Verdict) -> str:
    """The student-readable summary: the verdict, then each check (no grader internals, no machine paths)."""
    word = "PASS" if result.passed else "FAIL"
    relation = "reaches" if result.passed else "is below"
    lines = [f"{word}: {result.score:g} / {result.out_of:g} points, which {relation} the bar of {result.bar:g}"]
    lines += check_lines(report)
    if result.not_run:
        lines.append(f"  {result.not_run:g} point(s) could not be graded here (marked SKIP); they count "
                     + ("0 until regraded" if result.out_of == report.max_score else "nowhere in this total"))
    lines += [f"  GRADER ERROR in part {part.part}: not graded, not the submission's fault; the instructor will "
              "regrade it" for part in report.parts if part.grader_error]
    return "\n".join(lines)


@contextlib.contextmanager
def quiet_stderr(log: list):
    """Whatever this process writes to ``sys.stderr`` meanwhile, and the warnings it raises, are kept in ``log``."""
    captured = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(captured):
        yield
    text = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    text = (text + captured.getvalue()).strip()
    if text:
        log.append(f"stderr of the grader while grading:\n{text}")
