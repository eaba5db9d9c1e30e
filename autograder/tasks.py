"""(Runs in the sandbox child.) Grade one part: gate on the master's visible tests, then run the part's checks.

The child returns only names, passed/failed and messages. Points are attached by the parent from its own registry.
"""
import contextlib
import io
import traceback

import torch

from . import feedback
from .checks.registry import checks_for
from .namespace import add_student_definitions, run_setup


def _short_error(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<")]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{feedback.error_excerpt(type(exc).__name__, exc)}{where}"


def run_visible_tests(ns, code):
    """Run the master's visible test code for the part in ``ns``; None when it passes, else the message."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "<visible tests>", "exec"), ns)
    except Exception as exc:  # the student's code failed a visible assertion or crashed
        return _short_error(exc)
    return None


def run_part(payload):
    """payload: part, setup (master setup source), sources ({grade_id: student source}), visible_tests, threads."""
    torch.set_num_threads(int(payload.get("threads", 2)))
    part = payload["part"]
    ns = run_setup(payload["setup"])
    ignored = {}
    problems = add_student_definitions(ns, payload["sources"], ignored)
    report = {"part": part, "problems": problems, "ignored": ignored, "gate": None, "checks": {}}
    if payload.get("visible_tests"):
        report["gate"] = run_visible_tests(ns, payload["visible_tests"])
    if report["gate"] is None:
        for check in checks_for(part):
            try:
                outcome = check.func(ns).as_dict()
            except Exception as exc:  # a check must not raise, but never let one hide the others
                outcome = {"passed": False, "status": "failed", "message": f"check crashed on this submission: {_short_error(exc)}"}
            report["checks"][check.name] = outcome
    return report
