"""Evidence for the parent's checks, collected by running the worker's probes in the test process.

The checks judge only what a worker reports; here the probes run in-process on a namespace built from the
reference solution (with some cells replaced), so the checks' decisions can be tested on many submissions in a few
seconds each. End-to-end grading through the sandbox is tested in ``test_corpus.py``.
"""
import safetensors.torch

from autograder.checks.evidence import Evidence
from autograder.checks.registry import checks_for
from autograder.config import GraderConfig
from autograder.execution import Execution, StepResult
from autograder.probes import PROBES, Secrets
from autograder.program import Program
from autograder.tiers import TIERS
from autograder.worker import main as worker

PART_PROBES = {"cnn": ("cnn_structure",), "unet": ("unet_structure",), "finetune": ("finetune_behaviour",),
               "learning": ("cnn_learning", "unet_learning")}


def collect(ns, probe_names, secrets=None, tier=TIERS["cpu"]) -> Evidence:
    secrets = secrets or Secrets(12345)
    program, results = Program(), {}
    for name in probe_names:
        probe = PROBES[name]
        step = {"id": f"probe:{name}", "kind": "probe", "probe": probe.kind, "args": probe.args(secrets, tier),
                "stage_limit": probe.stage_seconds, "limit": probe.step_seconds}
        program.steps.append(step)
        program.probes[name] = step["id"]
        facts, tensors = worker.run_step(step, ns, lambda *_: None)
        blob = safetensors.torch.save(tensors) if tensors else b""
        results[step["id"]] = StepResult(id=step["id"], outcome="done", facts=facts, blob=blob)
    return Evidence(program, Execution(steps=results), secrets, tier)


def decide_part(ns, part, secrets=None) -> dict:
    """{check name: Outcome} of ``part`` on the namespace ``ns``."""
    evidence = collect(ns, PART_PROBES[part], secrets)
    return {check.name: check.decide(evidence) for check in checks_for(part)}


def failing(outcomes) -> set:
    return {name for name, outcome in outcomes.items() if not outcome.passed}


CONFIG = GraderConfig()
