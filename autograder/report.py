"""Typed reports: what the grader found, check by check and part by part.

``CheckResult.message`` and ``GradeReport.notes`` are student-visible: built by the grader from its own words and,
where useful, a bounded, path-scrubbed excerpt of the student's own error (``feedback.py``). ``GradeReport.log`` is
for the instructor only (what the student's code printed, sandbox details, paths, advice) and never reaches a
student or ``results.json``.
"""
from __future__ import annotations

import dataclasses

STATUSES = ("passed", "failed", "not run")


@dataclasses.dataclass
class CheckResult:
    name: str
    part: str
    title: str
    score: float
    max_score: float
    status: str   # one of STATUSES
    message: str


@dataclasses.dataclass
class PartReport:
    part: str
    results: list = dataclasses.field(default_factory=list)
    grader_error: str = ""  # a fault of the grader itself: the part is "not run" and must be regraded

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 4)

    @property
    def max_score(self) -> float:
        return round(sum(r.max_score for r in self.results), 4)


@dataclasses.dataclass
class GradeReport:
    submission: str
    parts: list = dataclasses.field(default_factory=list)      # PartReport, in grading order
    fatal: str = ""                                            # the file could not be used at all
    notes: list = dataclasses.field(default_factory=list)      # student-visible remarks about the notebook
    log: list = dataclasses.field(default_factory=list)        # instructor-only lines
    seconds: float = 0.0

    @property
    def results(self) -> list:
        return [result for part in self.parts for result in part.results]

    @property
    def grader_errors(self) -> list:
        return [f"{part.part}: {part.grader_error}" for part in self.parts if part.grader_error]

    @property
    def score(self) -> float:
        return round(sum(part.score for part in self.parts), 4)

    @property
    def max_score(self) -> float:
        return round(sum(part.max_score for part in self.parts), 4)

    def part_score(self, part: str) -> float:
        return round(sum(r.score for r in self.results if r.part == part), 4)

    def part(self, name: str) -> PartReport | None:
        return next((p for p in self.parts if p.part == name), None)
