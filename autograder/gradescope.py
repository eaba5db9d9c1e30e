"""Gradescope's ``results.json``, as its specification has it, bounded in size.

Gradescope knows a test only as ``passed`` or ``failed``. A check that could not run here (no pretrained weights, a
grader error) follows the instructor's ``not_run_policy``:

* ``zero`` (default): the test is failed with 0 points, its output starts with "NOT RUN" and says why, and it carries
  the tags ``not-run`` and ``regrade`` (the grader also exits 1 on a grader error, so the run is flagged);
* ``exclude``: the test is listed with its reason but with ``max_score`` 0, and the top-level ``output`` says how
  many points were left out; the course then grades those points elsewhere (Gradescope itself takes the
  assignment's total from its own settings, so adjust it there).

Visibility is set per check: ``visibility`` for all, ``check_visibility`` ({check name: visibility}) for some.
The schema of the file is ``autograder/schemas/gradescope-results.schema.json`` (the tests validate every file
the grader writes against it).
"""
from __future__ import annotations

import json

from . import feedback

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
NOT_RUN_POLICIES = ("zero", "exclude")
MAX_RESULTS_BYTES = 256 * 1024
OUTPUT_CHARS = 8000  # the top-level "output"
NAME_CHARS = 200


class ResultsSettingError(ValueError):
    """A visibility or policy that Gradescope or this grader does not know."""


def check_settings(visibility="visible", check_visibility=None, not_run_policy="zero"):
    """Raise ResultsSettingError for an unknown visibility, check name or policy (a usage error, before grading)."""
    from .checks.registry import CHECKS

    names = {check.name for check in CHECKS}
    for name, value in [("*", visibility), *(check_visibility or {}).items()]:
        if value not in VISIBILITIES:
            raise ResultsSettingError(f"unknown visibility {value!r} (for {name}); use one of {', '.join(VISIBILITIES)}")
        if name != "*" and name not in names:
            raise ResultsSettingError(f"unknown check {name!r}; checks are {', '.join(sorted(names))}")
    if not_run_policy not in NOT_RUN_POLICIES:
        raise ResultsSettingError(f"unknown not-run policy {not_run_policy!r}; use one of {', '.join(NOT_RUN_POLICIES)}")


def _test(number, result, visibility, not_run_policy, message_chars):
    output = feedback.bound(feedback.message(result.message), message_chars)
    tags = [result.part, result.name]
    max_score = result.max_score
    if result.status == "not run":
        output = feedback.bound(f"NOT RUN (to be regraded where it can run): {output}", message_chars)
        tags += ["not-run", "regrade"]
        if not_run_policy == "exclude":
            max_score = 0.0
    return {
        "name": feedback.bound(f"{result.part}: {result.title}", NAME_CHARS),
        "number": str(number),
        "score": result.score if result.status == "passed" else 0.0,
        "max_score": max_score,
        "status": "passed" if result.status == "passed" else "failed",
        "output": output,
        "visibility": visibility,
        "tags": tags,
    }


def to_results(report, visibility="visible", check_visibility=None, not_run_policy="zero",
               message_chars=feedback.MESSAGE_CHARS) -> dict:
    """The results.json object for ``report`` (a GradeReport)."""
    check_visibility = check_visibility or {}
    tests = [_test(number, r, check_visibility.get(r.name, visibility), not_run_policy, message_chars)
             for number, r in enumerate(report.results, start=1)]
    lines = [f"Submission could not be read: {feedback.message(report.fatal)}"] if report.fatal else []
    lines += feedback.notes(report.notes)
    not_run = sum(r.max_score for r in report.results if r.status == "not run")
    if not_run:
        if not_run_policy == "exclude":
            lines.append(f"{not_run:g} point(s) could not be graded here and are left out of this total; "
                         "see the tests marked NOT RUN.")
        else:
            lines.append(f"{not_run:g} point(s) could not be graded here and count 0 until regraded; see the tests "
                         "marked NOT RUN.")
    return {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": round(report.seconds, 1),
        "output": feedback.bound("\n".join(lines).strip(), OUTPUT_CHARS),
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def results_text(report, **settings) -> str:
    """results.json as text, never over ``MAX_RESULTS_BYTES``: with very many checks, outputs are shortened."""
    message_chars = feedback.MESSAGE_CHARS
    while True:
        text = json.dumps(to_results(report, message_chars=message_chars, **settings), indent=2) + "\n"
        if len(text.encode("utf-8")) <= MAX_RESULTS_BYTES or message_chars <= 40:
            return text
        message_chars //= 2
