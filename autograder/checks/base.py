"""What a check is: a named, pointed test of one part of a submission, with feedback for the student.

Check functions run inside the sandbox child, next to the student's code. They only report passed/failed and a
message; the points come from the parent's own copy of the registry, so a child cannot award itself points.
"""
from dataclasses import dataclass, field

from autograder.feedback import error_excerpt
from typing import Callable


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str  # shown to the student: what was wrong, or what was verified
    status: str = ""  # "passed", "failed" or "not run" (derived from passed when empty)

    def as_dict(self):
        return {"passed": bool(self.passed), "message": str(self.message), "status": self.status or ("passed" if self.passed else "failed")}


@dataclass(frozen=True)
class Check:
    name: str  # stable id, e.g. "cnn_layers"
    part: str  # "cnn", "unet", "finetune", ...
    points: float
    title: str  # one line for results tables
    func: Callable = field(repr=False, compare=False)  # func(namespace: dict) -> Outcome


class CheckFailed(AssertionError):
    """Raised inside a check to fail it with a student-facing message."""


def passed(message):
    return Outcome(True, message)


def failed(message):
    return Outcome(False, message)


def not_run(reason):
    return Outcome(False, f"not run: {reason}", status="not run")


def describe_exception(error):
    """``"TypeError: first line of the message"``, bounded and path-scrubbed: how a check names an exception raised
    by student code (``feedback.error_excerpt``)."""
    try:
        return error_excerpt(type(error).__name__, error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        return error_excerpt(type(error).__name__, "")


def guarded(func):
    """Make a check function total: ``CheckFailed`` -> failed(its message), any other exception -> failed.

    Student code can raise anything (SystemExit included) from anywhere a check touches it; a check must
    still report an Outcome.
    """
    import functools

    @functools.wraps(func)
    def wrapper(ns):
        try:
            outcome = func(ns)
        except CheckFailed as error:
            return failed(str(error))
        except (Exception, SystemExit) as error:
            return failed(f"your code raised {describe_exception(error)} while this check ran")
        if not isinstance(outcome, Outcome):  # a grader bug, never the student's fault; still report
            return failed(f"internal grader error: check returned {type(outcome).__name__}")
        return outcome

    return wrapper
