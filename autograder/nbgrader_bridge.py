"""Called from the master notebook's hidden test cells while ``nbgrader autograde`` runs.

nbgrader has already executed the student's notebook in its kernel; this runs the same check functions as the
command-line grader on the kernel's own names and returns the part's score, which nbgrader takes as partial credit
(a grade cell whose last value is a number). nbgrader gives a grade cell zero for any stderr output, so warnings and
C-level writes to stderr are silenced while the checks run; the feedback goes to stdout.
"""
import contextlib
import io
import os
import warnings

from . import feedback
from .checks.registry import checks_for

_MARK = {"passed": "PASS", "failed": "FAIL", "not run": "NOT RUN"}


@contextlib.contextmanager
def _quiet_stderr():
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull, warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def hidden_test_score(part, namespace):
    """Run ``part``'s checks on ``namespace`` (the notebook's globals()); print feedback; return the points earned."""
    score, lines = 0.0, []
    for check in checks_for(part):
        with _quiet_stderr():
            try:
                outcome = check.func(namespace).as_dict()
            except Exception as exc:  # a check must not raise; if one does, the student still gets feedback
                outcome = {"passed": False, "status": "failed", "message": f"check crashed: {type(exc).__name__}: {exc}"}
        earned = check.points if outcome["status"] == "passed" and outcome["passed"] else 0.0
        score += earned
        lines.append(f"[{_MARK[outcome['status']]}] {earned:g}/{check.points:g} {check.title}: "
                     f"{feedback.from_worker(outcome['message'])}")
    print("\n".join(lines))
    return score
