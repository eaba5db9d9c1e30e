"""(Parent side.) Run a :class:`~autograder.program.Program` in a sandboxed worker and collect what each step reported.

The worker (``autograder.worker.main:run``) streams a ``start`` event before each step and a ``done`` event with
the step's facts and tensors after it. The parent keeps its own clock per step: a step that runs past its limit
(code that blocks the worker's own alarm, a hang in C) is stopped by the parent, and the report names that step.
When the worker dies or is stopped in a step, the parent starts a fresh worker that runs the notebook's cells again
(to rebuild the namespace) but skips that step and the gates and probes already done, as a student restarting the
kernel and skipping the cell that hangs would; after ``max_restarts`` restarts the remaining steps are "not reached".

Nothing here decides a grade: :class:`StepResult` holds the worker's data, judged later by the checks.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time

from .config import GRADER_ROOT, GraderConfig
from .sandbox.limits import Limits
from .sandbox.runner import run_isolated
from .sandbox.view import SANDBOX_ROOT, TORCH_HOME_TARGET, View
from .verify.tensors import load as load_tensors

WORKER_TASK = "autograder.worker.main:run"
STARTUP_SECONDS = 20.0   # interpreter, torch and the helper package, before the first step
STOP_GRACE_SECONDS = 5.0  # beyond a step's own limit (its alarm fires first when it can)
STEP_OUTCOMES = ("done", "timeout", "memory", "crashed", "processes", "file size", "not reached", "skipped")
PROCESS_STORM = 8          # processes left behind by a failed step that make it a process storm


@dataclasses.dataclass
class StepResult:
    id: str
    outcome: str = "not reached"     # one of STEP_OUTCOMES; "done" means the worker reported facts
    facts: dict = dataclasses.field(default_factory=dict)
    blob: bytes = b""
    seconds: float = 0.0
    progress: dict = dataclasses.field(default_factory=dict)  # the last progress event of the step
    detail: str = ""                 # instructor-facing detail of a failure (never shown to students)
    _tensors: dict | None = dataclasses.field(default=None, repr=False)

    @property
    def tensors(self) -> dict:
        """The step's tensors, loaded without running code (safetensors); {} when absent or unreadable."""
        if self._tensors is None:
            try:
                self._tensors = load_tensors(self.blob) if self.blob else {}
            except Exception:  # noqa: BLE001 - a worker sending garbage proves nothing
                self._tensors = {}
        return self._tensors


@dataclasses.dataclass
class Execution:
    steps: dict                                   # step id -> StepResult
    runs: int = 0                                 # workers started
    stdout: str = ""
    stderr: str = ""
    log: list = dataclasses.field(default_factory=list)  # instructor-only lines
    internal: str = ""                            # the sandbox itself failed (a grader fault)
    limits: Limits | None = None                  # the limits of the last worker (to name them to a student)

    def result(self, step_id: str | None) -> StepResult:
        return self.steps.get(step_id) or StepResult(id=str(step_id), outcome="skipped")


@dataclasses.dataclass(frozen=True)
class Weights:
    """The pretrained weights file a worker is shown (read-only, alone in its folder), resolved in the parent."""

    host: str | None   # the file on this machine (real path); None: nothing is mounted
    name: str = ""     # its name, torch.hub's, which the worker's torchvision looks for
    log: str = ""      # for the instructor: where it was looked for and what the workers get

    @property
    def target(self) -> str:
        """Where a worker sees it: ``$TORCH_HOME/hub/checkpoints/<name>`` with the worker's ``TORCH_HOME``."""
        return f"{TORCH_HOME_TARGET}/hub/checkpoints/{self.name}"


def find_weights(arch: str) -> Weights:
    """(Parent) The COCO-pretrained DeepLabV3 checkpoint of ``arch`` where torch looks for it for the user running
    the grader: ``$TORCH_HOME/hub/checkpoints``, else torch's default hub folder (``~/.cache/torch/hub``). Only that
    file is shown to workers; when it is absent (or, for a root grader, not readable by other users) nothing is."""
    from .reference import ensure_helper_on_path

    ensure_helper_on_path()
    from a2cnn.deeplab import checkpoint_path  # the grader's pristine helper package

    path = checkpoint_path(arch)
    if not path.is_file():
        return Weights(None, path.name, f"pretrained weights: {path} is absent; workers get none (set TORCH_HOME "
                                        "to the folder whose hub/checkpoints holds it)")
    real = os.path.realpath(path)
    if os.geteuid() == 0 and not os.stat(real).st_mode & 0o004:
        return Weights(None, path.name, f"pretrained weights: {real} is not readable by other users, so the "
                                        "sandboxed workers could not read it; workers get none (chmod o+r it)")
    weights = Weights(real, path.name)
    return dataclasses.replace(weights, log=f"pretrained weights: {real} shown read-only to workers as "
                                            f"{weights.target} (TORCH_HOME={TORCH_HOME_TARGET})")


def worker_view(config: GraderConfig, inputs: str | None = None, weights: Weights | None = None) -> View:
    """What a worker sees: its own code, the pristine helper package, the inputs folder, the pretrained weights
    file when there is one, and nothing else of the grader."""
    mounts = ((str(GRADER_ROOT / "autograder" / "__init__.py"), "grader/autograder/__init__.py"),
              (str(GRADER_ROOT / "autograder" / "worker"), "grader/autograder/worker"),
              (str(config.helper_dir / "a2cnn"), "helper/a2cnn"))
    if weights is not None and weights.host:
        mounts += ((weights.host, weights.target[len(SANDBOX_ROOT) + 1:]),)
    return View(mounts=mounts, import_roots=("helper",), inputs=inputs, tmp_bytes=config.tmp_bytes)


def worker_env(config: GraderConfig, weights: Weights | None = None) -> dict:
    env = {"A2_OFFLINE": "1"}
    if weights is not None and weights.host:
        env["TORCH_HOME"] = TORCH_HOME_TARGET
    return env


class _Tracker:
    """Collects events from the reader thread and tells the watchdog when a step is overdue."""

    def __init__(self, steps: dict, results: dict):
        self.steps, self.results = steps, results
        self.lock = threading.Lock()
        self.current: str | None = None
        self.deadline: float | None = None
        self.overdue: str | None = None

    def on_event(self, header: dict, blob: bytes) -> None:
        step_id = header.get("step")
        if step_id not in self.steps:
            return
        with self.lock:
            event = header.get("event")
            if event == "start":
                self.current = step_id
                self.deadline = time.monotonic() + float(self.steps[step_id]["limit"]) + STOP_GRACE_SECONDS
            elif event == "progress" and step_id == self.current:
                info = {k: v for k, v in header.items() if k in ("config", "stage")}
                self.results[step_id].progress = info
            elif event == "done" and step_id == self.current:
                result = self.results[step_id]
                facts = header.get("facts")
                result.outcome, result.facts = "done", facts if isinstance(facts, dict) else {}
                result.blob, result._tensors = blob, None
                try:
                    result.seconds = float(header.get("seconds", 0.0))
                except (TypeError, ValueError):
                    result.seconds = 0.0
                self.current, self.deadline = None, None

    def watchdog(self) -> str | None:
        with self.lock:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.overdue = self.current
                return f"step {self.current} ran past its time limit"
        return None


def _limits(config: GraderConfig, steps: list) -> Limits:
    wall = STARTUP_SECONDS + sum(float(s["limit"]) + 1.0 for s in steps)
    wall = min(wall, config.worker_seconds)
    return Limits(wall_seconds=wall, cpu_seconds=int(wall * max(config.threads, 1)) + 30,
                  memory_bytes=config.memory_bytes, output_bytes=config.output_bytes, threads=config.threads,
                  result_bytes=config.result_bytes, max_processes=config.processes,
                  file_size_bytes=config.file_bytes)


def execute(steps: list, config: GraderConfig, inputs: str | None = None,
            weights: Weights | None = None) -> Execution:
    """Run ``steps`` (a Program's) in workers until every step is done, failed, or out of restarts.
    ``weights``: the pretrained weights file to show the workers (:func:`find_weights`), if any."""
    by_id = {step["id"]: step for step in steps}
    results = {step["id"]: StepResult(id=step["id"]) for step in steps}
    execution = Execution(steps=results)
    skip: set = set()
    view, env = worker_view(config, inputs, weights), worker_env(config, weights)
    while True:
        pending = [s for s in steps if s["id"] not in skip]
        tracker = _Tracker(by_id, results)
        for step in pending:  # a rerun cell reports afresh
            if step["kind"] == "cell":
                results[step["id"]].outcome = "not reached"
        execution.limits = _limits(config, pending)
        run = run_isolated(WORKER_TASK, {"steps": steps, "skip": sorted(skip), "threads": config.threads},
                           execution.limits, env=env, view=view, on_event=tracker.on_event,
                           watchdog=tracker.watchdog)
        execution.runs += 1
        execution.stdout += run.stdout
        execution.stderr += run.stderr
        execution.log.append(f"worker run {execution.runs}: {run.status} {run.message}".strip())
        if run.status == "ok":
            return execution
        failed_step = tracker.overdue or tracker.current
        if failed_step is None:  # died before its first step or between steps: nothing to blame, nothing to skip
            if run.status == "internal" and not any(r.outcome == "done" for r in results.values()):
                execution.internal = run.message  # the sandbox could not run at all: the grader's fault
            return execution
        # once student code has run, whatever ends the worker counts against the step it was in
        outcome = {"timeout": "timeout", "stopped": "timeout", "memory": "memory",
                   "file_size": "file size"}.get(run.status, "crashed")
        if run.processes_killed >= PROCESS_STORM:
            outcome = "processes"
        results[failed_step].outcome = outcome
        results[failed_step].detail = run.message
        skip |= {failed_step}
        skip |= {s["id"] for s in steps if s["kind"] != "cell" and results[s["id"]].outcome == "done"}
        if execution.runs > config.max_restarts:
            return execution


def tmp_inputs_dir() -> str:
    """A fresh world-readable folder for a run's input files (removed by the caller)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="a2-inputs-")
    os.chmod(path, 0o755)
    return path
