"""(Parent side.) Checks of Part C's set-up, decided from the worker's report re-derived by ``verify/finetune.py``."""
from __future__ import annotations

from .. import feedback
from ..verify import finetune as verify
from .base import failed, passed
from .evidence import Evidence

PROBE = "finetune_behaviour"


def _stage(evidence: Evidence, stage: str):
    """(facts, args, None) of one stage of the probe, or (None, None, failed Outcome)."""
    failure = evidence.failure(PROBE, "your Part C code")
    if failure:
        return None, None, failed(failure)
    facts = evidence.step(PROBE).facts.get(stage)
    args = evidence.args(PROBE).get(stage)
    if not isinstance(facts, dict) or not args:
        return None, None, failed("the grader received no report of your Part C functions")
    error = facts.get("error")
    if isinstance(error, dict) and error.get("stage") == "lookup":
        name = feedback.identifier(error.get("name", "a function"))
        return None, None, failed(f"{name} is not defined as a function")
    return facts, args, None


def _prepared(evidence: Evidence):
    facts, args, outcome = _stage(evidence, "prepare")
    if outcome is None and isinstance(facts.get("error"), dict) and facts["error"].get("stage") == "call":
        outcome = failed(f"freeze_and_replace raised {feedback.error_excerpt(facts['error'])}")
    if outcome is None and "found" in facts:
        outcome = failed(f"freeze_and_replace returned a {feedback.identifier(facts['found'])}, not the model")
    return facts, args, outcome


def head_replaced(evidence: Evidence):
    facts, args, outcome = _prepared(evidence)
    if outcome:
        return outcome
    problem = verify.head_problem(facts, evidence.step(PROBE).tensors, args)
    if problem:
        return failed(problem)
    return passed("classifier.4 is a new Conv2d(256, 2, kernel_size=1) and the model computes with it")


def frozen(evidence: Evidence):
    facts, args, outcome = _prepared(evidence)
    if outcome:
        return outcome
    if isinstance(facts.get("error"), dict):
        return failed(f"a training step on the prepared model raised {feedback.error_excerpt(facts['error'])}")
    problem = verify.frozen_problem(facts, evidence.step(PROBE).tensors, args)
    if problem:
        return failed(problem)
    return passed("after freeze_and_replace, a training step changes exactly classifier.4, as a trainable layer")


def optimizer_params(evidence: Evidence):
    facts, args, outcome = _stage(evidence, "unfrozen")
    if outcome:
        return outcome
    problem = verify.train_problem(facts, evidence.step(PROBE).tensors, args, frozen=False)
    if problem:
        return failed(f"on a model whose other layers still require gradients, {problem[0].lower()}{problem[1:]}")
    return passed("train() optimises classifier.4 only, even when other layers could learn")


def one_step(evidence: Evidence):
    facts, args, outcome = _stage(evidence, "frozen")
    if outcome:
        return outcome
    problem = verify.train_problem(facts, evidence.step(PROBE).tensors, args, frozen=True)
    if problem:
        return failed(problem)
    return passed("one epoch of train() changes nothing but classifier.4 (BatchNorm statistics included) and "
                  "lowers the loss on its batch")
