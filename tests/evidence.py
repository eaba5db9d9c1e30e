"""Evidence for the parent's checks, collected by running the worker's probes in the test process.

The checks judge only what a worker reports; here the probes run in-process on a namespace built from the
reference solution (with some cells replaced), so the checks' decisions can be tested on many submissions in a few
seconds each. End-to-end grading through the sandbox is tested in ``test_corpus.py``.
"""
from autograder.checks.registry import checks_for
from autograder.config import GraderConfig
from autograder.in_process import collect

PART_PROBES = {"cnn": ("cnn_structure",), "unet": ("unet_structure",), "finetune": ("finetune_behaviour",),
               "learning": ("cnn_learning", "unet_learning")}


def decide_part(ns, part, secrets=None) -> dict:
    """{check name: Outcome} of ``part`` on the namespace ``ns``."""
    evidence = collect(ns, PART_PROBES[part], secrets)
    return {check.name: check.decide(evidence) for check in checks_for(part)}


def failing(outcomes) -> set:
    return {name for name, outcome in outcomes.items() if not outcome.passed}


CONFIG = GraderConfig()
