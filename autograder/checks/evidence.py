"""(Parent side.) What the checks of one part judge: the worker's reports for the part's probes, re-derived.

A check never sees the worker's raw report as truth: it asks :class:`Evidence` for verified facts
(``autograder/verify``), computed once per probe and shared by the part's checks.
"""
from __future__ import annotations

from .. import feedback
from ..execution import Execution, StepResult
from ..program import Program
from ..verify.colouriser import MALFORMED, ConfigFacts, verify_config

STAGES = {"build": "building the model", "describe": "reading the model's layers", "train": "a training-mode pass",
          "eval": "an evaluation-mode pass", "prepare": "freeze_and_replace", "frozen": "train() on a frozen model",
          "unfrozen": "train() on a model that is not frozen"}
OUTCOME_WORDS = {"timeout": "did not finish within its time limit", "memory": "ran out of memory",
                 "crashed": "ended the process running it", "processes": "started too many processes",
                 "file size": "wrote a file larger than the file-size limit",
                 "not reached": "was not reached (an earlier cell stopped the notebook too often)",
                 "skipped": "could not be run"}


def size_words(n: int | float) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{int(n)} bytes"


def stop_words(outcome: str, step: dict | None = None, program: Program | None = None, limits=None) -> str:
    """How a step that did not report was stopped, in words a student can act on (the limit it hit, by name).
    ``limits``: the worker's :class:`~autograder.sandbox.limits.Limits` (``Execution.limits``), to give the number."""
    if outcome == "timeout" and step and step.get("limit"):
        return f"did not finish within its time limit of {float(step['limit']):g} s"
    if outcome == "memory" and program is not None and program.memory_bytes:
        return f"ran out of memory (a worker may use {program.memory_bytes / 2**30:g} GiB)"
    if outcome == "processes" and limits is not None:
        return (f"started too many processes and was stopped (the process limit: a worker may run at most "
                f"{int(limits.max_processes)} processes and threads at once)")
    if outcome == "file size" and limits is not None:
        return (f"wrote a file larger than the file-size limit and was stopped (a worker may write files of at most "
                f"{size_words(limits.file_size_bytes)})")
    return OUTCOME_WORDS.get(outcome, "could not be run")


def limit_hint(error, limits=None) -> str:
    """For a student's error that a worker limit caused (a write past the file-size limit fails with EFBIG, which
    Python raises rather than dying of SIGXFSZ): that limit by name and size, to follow the error; else ""."""
    if limits is None or not isinstance(error, dict):
        return ""
    if "[Errno 27]" in str(error.get("message", ""))[:200]:
        return f" (the file-size limit: a worker may write files of at most {size_words(limits.file_size_bytes)})"
    return ""


class Evidence:
    def __init__(self, program: Program, execution: Execution, secrets, tier):
        self.program, self.execution, self.secrets, self.tier = program, execution, secrets, tier
        self._configs: dict = {}
        # model -> (its training inputs, Future of its measurement under way in the grader's second process)
        self.background: dict = {}

    def step(self, probe_name: str) -> StepResult:
        return self.execution.result(self.program.probes.get(probe_name))

    def args(self, probe_name: str) -> dict:
        step = self.program.step(self.program.probes.get(probe_name, ""))
        return step["args"] if step else {}

    def failure(self, probe_name: str, what: str) -> str | None:
        """Why the worker did not report on ``probe_name`` (student-visible), or None when it did."""
        result = self.step(probe_name)
        if result.outcome == "done":
            return None
        where = ""
        progress = result.progress or {}
        if isinstance(progress.get("config"), int):
            where = f" (configuration {progress['config'] + 1}"
            stage = STAGES.get(progress.get("stage"))
            where += f", {stage})" if stage else ")"
        elif STAGES.get(progress.get("stage")):
            where = f" (in {STAGES[progress['stage']]})"
        step = self.program.step(self.program.probes.get(probe_name, ""))
        words = stop_words(result.outcome, step, self.program, self.execution.limits)
        return f"{what} {words} while the grader examined it{where}"

    def configs(self, probe_name: str) -> list[ConfigFacts]:
        """Verified facts for every configuration the probe asked for (one that was not reported has an error)."""
        if probe_name not in self._configs:
            result, args = self.step(probe_name), self.args(probe_name)
            listed = result.facts.get("configs") if isinstance(result.facts, dict) else None
            reported = {c.get("index"): c for c in (listed if isinstance(listed, list) else [])
                        if isinstance(c, dict) and type(c.get("index")) is int}
            marks = tuple(args["marks"]) if args.get("marks") else None
            verified = []
            for index, config in enumerate(args.get("configs") or []):
                facts = reported.get(index)
                if facts is None:
                    verified.append(ConfigFacts(config=config, error={"stage": "missing"}))
                else:
                    verified.append(verify_config({**facts, "index": index}, result.tensors, config, marks))
            self._configs[probe_name] = verified
        return self._configs[probe_name]


def error_text(facts: ConfigFacts, class_name: str) -> str:
    """The student's error while the grader probed one configuration, in one bounded line."""
    error = facts.error or {}
    stage = error.get("stage")
    call = call_text(class_name, facts.config)
    if stage == "lookup":
        if error.get("type") == "missing":
            names = error.get("names")
            close = feedback.lookalike(class_name, names if isinstance(names, list) else [])
            return f"no class {class_name} is defined" + (f"; {close}" if close else "")
        return f"{class_name} should be an nn.Module subclass; found a {feedback.identifier(error.get('found'))}"
    if stage == "missing":
        return f"the grader received nothing for {call}"
    if stage == "invalid":
        # only the parent's own words (a worker could send facts with this stage and any message)
        why = error.get("message") if error.get("message") in MALFORMED else "malformed"
        return f"what the grader received for {call} is not valid output ({why})"
    if error.get("type") == "not_a_module":
        return f"{call} is a {feedback.identifier(error.get('found'))}, not an nn.Module"
    if error.get("type") == "not_a_tensor":
        return f"{call}(x) returned a {feedback.identifier(error.get('found'))}, not a tensor"
    if error.get("type") == "StepTimeout":
        return f"{call} did not finish {STAGES.get(stage, 'its run')} within the time limit"
    return f"{call} raised {feedback.error_excerpt(error)} in {STAGES.get(stage, 'its run')}"


def call_text(class_name: str, config: dict) -> str:
    keys = ("kernel", "num_filters", "num_colours", "num_in_channels")
    return f"{class_name}(" + ", ".join(f"{k}={config[k]}" for k in keys if k in config) + ")"
