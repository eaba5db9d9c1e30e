"""(Parent side, trusted code only.) Run a worker's probes in this process, on code the grader trusts.

Calibration measures the reference exactly as grading measures a submission: a learning probe describes the
reference's model, the parent verifies that report and trains the graph it rebuilds from it
(:class:`~autograder.verify.colouriser.GraphModel`). Only the instructor's own code (the master's solutions, or the
test suite's variants of them) runs here; a submission always runs in a sandboxed worker (``execution.py``).
"""
from __future__ import annotations

import safetensors.torch

from .checks.evidence import Evidence
from .execution import Execution, StepResult
from .probes import PROBES, Secrets
from .program import Program
from .tiers import TIERS
from .verify.colouriser import ConfigFacts, trainable_graph_problem
from .worker import main as worker

LEARNING_PROBES = {"cnn": "cnn_learning", "unet": "unet_learning"}


def collect(ns: dict, probe_names, secrets: Secrets | None = None, tier=TIERS["cpu"]) -> Evidence:
    """Evidence from running ``probe_names`` on the namespace ``ns`` here, as a worker would run them there."""
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


def learning_graphs(ns: dict, tier, models=tuple(LEARNING_PROBES)) -> dict[str, ConfigFacts]:
    """{model: the verified facts the parent trains} for the trusted namespace ``ns`` (the reference's);
    RuntimeError when one cannot be rebuilt, which for the reference is a grader bug."""
    evidence = collect(ns, [LEARNING_PROBES[m] for m in models], Secrets(0), tier)
    graphs = {}
    for model in models:
        facts = evidence.configs(LEARNING_PROBES[model])[0]
        problem = "it raised " + str(facts.error) if facts.error is not None else trainable_graph_problem(facts)
        if problem:
            raise RuntimeError(f"the grader cannot rebuild the reference {model} for training: {problem}")
        graphs[model] = facts
    return graphs
