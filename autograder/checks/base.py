"""What a check is: a named test of one part, with its points, decided in the parent from verified evidence.

``decide(evidence)`` returns an :class:`Outcome`; it runs in the grader's own process, never next to student
code. Points live in the registry only.
"""
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str  # shown to the student: what was wrong, or what was verified
    status: str = ""  # "passed", "failed" or "not run" (derived from passed when empty)

    def __post_init__(self):
        if not self.status:
            object.__setattr__(self, "status", "passed" if self.passed else "failed")


@dataclass(frozen=True)
class Check:
    name: str  # stable id, e.g. "cnn_layers"
    part: str  # "cnn", "unet", "finetune", "learning"
    points: float
    title: str  # one line for results tables
    decide: Callable = field(repr=False, compare=False)  # decide(evidence) -> Outcome


def passed(message):
    return Outcome(True, message)


def failed(message):
    return Outcome(False, message)


def not_run(reason):
    return Outcome(False, f"not run: {reason}", status="not run")
