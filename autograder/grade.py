"""(Parent side.) Grade one submitted notebook: one sandboxed child per part, points from the registry.

Nothing here executes student code: that only happens inside ``sandbox.run_isolated``. Whatever a child does, the
parent turns it into results for that part's checks and goes on with the next part.
"""
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import feedback
from . import submission as sub
from .checks.registry import checks_for
from .config import REPO_ROOT, GraderConfig
from .sandbox.limits import Limits
from .sandbox.runner import run_isolated

# Environment a child may see: where the data and weights are, and which tier to grade with. Nothing else.
_PASSED_ENV = ("A2_DATA_DIR", "A2_CACHE_DIR", "A2_OFFLINE", "A2_OXFORD17_MASKS", "TORCH_HOME", "A2_DEVICE")
_LOGGED_ERROR_CHARS = 20_000  # a part's sandbox error in the instructor log


@dataclass
class CheckResult:
    name: str
    part: str
    title: str
    score: float
    max_score: float
    status: str  # "passed", "failed" or "not run"
    message: str


@dataclass
class GradeReport:
    submission: str
    results: list = field(default_factory=list)
    fatal: str = ""
    notes: list = field(default_factory=list)  # shown to the student: problems in cells other than the part's own
    logs: list = field(default_factory=list)  # instructors only: what the student's code printed, sandbox details
    grader_errors: list = field(default_factory=list)  # faults of the grader itself (the part must be regraded)
    seconds: float = 0.0

    @property
    def score(self):
        return round(sum(r.score for r in self.results), 4)

    @property
    def max_score(self):
        return round(sum(r.max_score for r in self.results), 4)

    def part_score(self, part):
        return round(sum(r.score for r in self.results if r.part == part), 4)


def _zero_part(report, part, status, message):
    for check in checks_for(part):
        report.results.append(CheckResult(check.name, part, check.title, 0.0, check.points, status,
                                          feedback.message(message)))


def _child_env(config):
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env["A2_GRADER_TIER"] = config.tier
    return env


def _limits(config, part):
    wall = config.learning_timeout_seconds if part == "learning" else config.part_timeout_seconds
    return Limits(wall_seconds=wall, cpu_seconds=int(wall * max(config.threads, 1)) + 30,
                  memory_bytes=config.memory_bytes, output_bytes=config.output_bytes, threads=config.threads)


def _payload(submission, master, part, config):
    # Only the part's own cells run, so a hang or crash in another answer cannot cost this part its points.
    sources = {gid: submission.source(gid) for gid in sub.PART_CELLS[part] if submission.source(gid) is not None}
    return {
        "part": part,
        "setup": sub.setup_code(master),
        "sources": sources,
        "visible_tests": sub.visible_test_code(master, part),
        "threads": config.threads,
    }


def grade_part(report, submission, master, part, config):
    checks = checks_for(part)
    affected = submission.affected(sub.PART_CELLS[part] + [sub.PART_TEST_CELLS[part], "setup_imports"])
    if affected:
        _zero_part(report, part, "failed", "not graded: " + "; ".join(affected))
        return
    result = run_isolated("autograder.tasks:run_part", _payload(submission, master, part, config), _limits(config, part),
                          extra_sys_path=[config.helper_dir, REPO_ROOT], env=_child_env(config))
    # Student output never reaches student-visible feedback: it could carry anything the code managed to read.
    for stream in ("stdout", "stderr"):
        text = getattr(result, stream).strip()
        if text:
            report.logs.append(f"[{part}] {stream}:\n{text}")
    if result.status != "ok":
        report.logs.append(f"[{part}] sandbox: {result.status}: {feedback.bound(result.message, _LOGGED_ERROR_CHARS)}")
    if result.status == "internal":
        report.grader_errors.append(f"{part}: {feedback.bound(result.message, _LOGGED_ERROR_CHARS)}")
        _zero_part(report, part, "not run", "not graded because of a grader error (not your fault); the instructor will regrade it")
        return
    if result.status != "ok":
        _zero_part(report, part, "failed", f"your code could not be graded for this part ({result.status}): {result.student_message}")
        return
    value = result.value if isinstance(result.value, dict) else {}
    own_cells = set(sub.PART_CELLS[part])
    for grade_id, problem in (value.get("problems") or {}).items():
        if grade_id in own_cells:
            _zero_part(report, part, "failed", feedback.from_worker(problem))
            return
        report.notes.append(feedback.note(f"[{part}] {feedback.from_worker(problem)}"))
    for grade_id, statements in (value.get("ignored") or {}).items():
        if isinstance(statements, list) and statements:
            shown = "; ".join(feedback.bound(feedback.first_line(x), 60) for x in statements[:5]) + (" ..." if len(statements) > 5 else "")
            report.notes.append(feedback.note(f"[{part}] only definitions are graded; these top-level statements "
                                              f"of {grade_id} were not run: {shown}"))
    if value.get("gate"):
        _zero_part(report, part, "failed", f"the visible tests of this part fail, so it scores 0: {feedback.from_worker(value['gate'])}")
        return
    outcomes = value.get("checks") or {}
    for check in checks:
        outcome = outcomes.get(check.name)
        if not isinstance(outcome, dict):
            report.results.append(CheckResult(check.name, part, check.title, 0.0, check.points, "failed", "this check did not report a result"))
            continue
        ok = outcome.get("status") == "passed" and outcome.get("passed") is True
        status = "passed" if ok else ("not run" if outcome.get("status") == "not run" else "failed")
        message = feedback.from_worker(outcome.get("message", ""))
        report.results.append(CheckResult(check.name, part, check.title, check.points if ok else 0.0, check.points, status, message))


def grade_notebook(path, config=None, parts=None, on_part=None):
    """Grade the notebook at ``path``; never raises for anything the submission contains."""
    config = config or GraderConfig()
    started = time.perf_counter()
    report = GradeReport(submission=str(path))
    master = sub.load_master()
    submission = sub.read_submission(Path(path))
    for part in parts or config.parts:
        if on_part:
            on_part(part)
        if submission.fatal:
            report.fatal = submission.fatal
            _zero_part(report, part, "failed", f"not graded: {submission.fatal}")
        else:
            try:
                grade_part(report, submission, master, part, config)
            except Exception as exc:  # a grader bug: record it, keep grading the other parts
                report.results = [r for r in report.results if r.part != part]
                report.grader_errors.append(f"{part}: {type(exc).__name__}: {exc}")
                _zero_part(report, part, "not run", "not graded because of a grader error (not your fault); the instructor will regrade it")
    report.seconds = time.perf_counter() - started
    return report
