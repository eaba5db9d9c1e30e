"""(Parent side.) Training checks: does the submitted architecture learn as well as the reference, when the
*grader* trains it?

The worker only reports the model's structure and one traced pass at the tier's size (probes ``cnn_learning`` and
``unet_learning``). The parent verifies that report (``verify/colouriser.py``), rebuilds the model from its own layer
classes wired as verified (:class:`~autograder.verify.colouriser.GraphModel`), and trains that with the course's loop,
its own data, seed and threads: no code of the student's runs while learning is measured, and the held-out horses
never reach a worker. The validation loss is compared with the tier's calibrated threshold
(``autograder/calibration/<tier>.json``). Whatever cannot be measured here reports "not run" with the reason.

Part C (probe ``finetune_learning``) runs the student's functions, so they run in a worker, on the pretrained model
and the training pictures the parent gives it; the worker returns only classifier.4, and the parent measures the
loss of that classifier.4 on its own copy of the model and pictures (``learning.judge_finetune``).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing

import torch.nn as nn

from ..calibrate import CalibrationError, load_thresholds
from ..learning import (architecture_name, data_fingerprint, describe_data, finetune_data, finetune_error_text,
                        finetune_model, finetune_unavailable, judge_finetune, measure_graph, tier_data)
from ..verify.colouriser import trainable_graph_problem
from .base import failed, not_run, passed
from .evidence import Evidence, error_text

_HINTS = {
    "cnn": "compare your CNN with the table of Question A1 (every group, BatchNorm2d and ReLU included)",
    "unet": "check the three skip connections of Question B1 (torch.cat along the channels) and the BatchNorm layers",
}
PROBE = {"cnn": "cnn_learning", "unet": "unet_learning"}
CLASS = {"cnn": "CNN", "unet": "UNet"}


def _thresholds(tier):
    try:
        return load_thresholds(tier), None
    except CalibrationError as exc:
        return None, not_run(f"grader configuration: {exc}")


def _training_inputs(evidence: Evidence, model: str):
    """(facts, data, thresholds) to train ``model`` with, or the Outcome that says why it is not trained."""
    tier = evidence.tier
    thresholds, outcome = _thresholds(tier)
    if outcome:
        return outcome
    failure = evidence.failure(PROBE[model], f"your {CLASS[model]}")
    if failure:
        return failed(failure)
    facts = evidence.configs(PROBE[model])[0]
    if facts.error is not None:
        return failed(error_text(facts, CLASS[model]))
    problem = trainable_graph_problem(facts)
    if problem:
        return failed(f"the grader could not rebuild your {CLASS[model]} to train it: {problem}")
    try:
        data = tier_data(tier)
    except Exception as exc:  # noqa: BLE001 - the data mirror is the grader's business, not the student's
        return not_run(f"grader configuration: the horse images cannot be loaded ({type(exc).__name__})")
    if thresholds.get("data_fingerprint") != data_fingerprint(data):
        return not_run(f"grader configuration: the images here ({describe_data(data)}) are not those the tier "
                       f"{tier.name} thresholds were calibrated on; recalibrate")
    return facts, data, thresholds


def _warm_up() -> None:
    """The helper's first task: finding this function imports this module, and with it all a measurement needs
    (torch, autograder.learning, the verifier), while the worker runs the notebook."""


@contextlib.contextmanager
def training_helper(processes: int):
    """A second grader process for the training checks (``processes`` >= 2), else None.

    It is started fresh (spawn) and never runs student code: it only trains graphs this process verified, with the
    grader's data passed along, so its figures are those of training here, bit for bit (same seed, threads and
    deterministic kernels), and its answers (a dict of numbers, or an Outcome) come from the grader's own code.
    Started before the notebook runs, its imports take no wall time where a core is free (a worker uses one)."""
    if processes < 2:
        yield None
        return
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        pool.submit(_warm_up)
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def training_in_background(evidence: Evidence, helper):
    """Train the UNet in ``helper`` (a :func:`training_helper` pool, or None: nothing in the background) while the
    CNN trains in this process. If the helper fails, the UNet is trained here after all."""
    inputs = _training_inputs(evidence, "unet") if helper is not None else None
    if not isinstance(inputs, tuple):
        yield
        return
    facts, data, _thresholds_ = inputs
    try:
        future = helper.submit(measure_graph, facts.without_modules(), evidence.tier, evidence.tier.grade_seed,
                               data=data, label=CLASS["unet"])
    except Exception:  # noqa: BLE001 - a helper that has died already: train here
        future = None
    evidence.background["unet"] = (inputs, future)  # the UNet's check takes both: nothing is looked up twice
    try:
        yield
    finally:
        _inputs, future = evidence.background.pop("unet", (None, None))
        if future is not None:
            future.cancel()


def _measure(evidence: Evidence, model: str, facts, data, future):
    if future is not None:
        try:
            return future.result()
        except Exception:  # noqa: BLE001 - the helper process died (memory, a signal): train here instead
            pass
    return measure_graph(facts, evidence.tier, evidence.tier.grade_seed, data=data, label=CLASS[model])


def _against_threshold(what: str, loss: float, threshold: float, tier, thresholds: dict, advice: str):
    """The verdict of a training check: ``what`` was measured, ``loss`` compared with the calibrated ``threshold``."""
    where = f"tier {tier.name}; {thresholds['provenance']}"
    if loss <= threshold:
        return passed(f"{what}; threshold {threshold:.4f} ({where})")
    return failed(f"{what}, above the threshold {threshold:.4f} that the reference solution meets ({where}): "
                  f"{advice}")


def colouriser_learns(model: str):
    def decide(evidence: Evidence):
        inputs, future = evidence.background.pop(model, (None, None))
        inputs = inputs or _training_inputs(evidence, model)
        if not isinstance(inputs, tuple):
            return inputs
        facts, data, thresholds = inputs
        result = _measure(evidence, model, facts, data, future)
        if not isinstance(result, dict):
            return result
        loss = result["val_loss"]
        what = (f"trained by the grader ({result['epochs']} epochs on {result['train_images']} horses), your "
                f"{CLASS[model]} reaches a validation loss of {loss:.4f} on {result['val_images']} held-out horses "
                f"(pixel accuracy {100 * result['val_accuracy']:.1f}%)")
        return _against_threshold(what, loss, thresholds[model], evidence.tier, thresholds,
                                  f"it learns less well than expected; {_HINTS[model]}")
    return decide


def finetune_learns(evidence: Evidence):
    """Part C: the worker runs the student's freeze_and_replace and train on the pretrained model and returns
    classifier.4; the parent measures the loss of that classifier.4 on its own copy of the model and pictures."""
    tier = evidence.tier
    if finetune_unavailable(tier):
        return not_run("Part C cannot be measured meaningfully on this grader, so it is not graded here: "
                       "pretrained DeepLabV3 weights and the official Oxford-17 masks are needed")
    thresholds, outcome = _thresholds(tier)
    if outcome:
        return outcome
    threshold = thresholds.get("finetune")
    if threshold is None:
        return not_run(f"grader configuration: Part C's threshold is not calibrated for tier {tier.name}; the "
                       "instructor will calibrate it where the weights and the masks are, and regrade")
    if "finetune_learning" not in evidence.program.probes:
        return not_run("Part C's training check runs only on a grader prepared for it (pretrained weights mounted "
                       "for the workers); the instructor will regrade it there")
    failure = evidence.failure("finetune_learning", "your fine-tuning (freeze_and_replace, then train)")
    if failure:
        return failed(failure)
    step = evidence.step("finetune_learning")
    error = step.facts.get("error") if isinstance(step.facts, dict) else {"stage": "setup"}
    if isinstance(error, dict) and error.get("stage") == "setup":
        # the parent checked that the weights and pictures are there: a worker that cannot load them was tampered with
        return failed("the grader could not set up Part C's model in your notebook's process (does a cell replace "
                      "torch, torchvision or a2cnn?)")
    if error is not None:
        return failed(finetune_error_text(error, tier))
    model = finetune_model(tier)
    if not isinstance(model, nn.Module):
        return model
    images, masks = finetune_data(tier)
    result = judge_finetune(step.tensors, step.facts, tier, model, images, masks)
    if not isinstance(result, dict):
        return result
    loss = result["loss"]
    what = (f"with the classifier.4 your train() left after {result['steps']} steps on {result['images']} training "
            f"pictures ({architecture_name(tier)}), the grader measures a loss of {loss:.4f} (it was "
            f"{result['initial_loss']:.4f} after your freeze_and_replace)")
    return _against_threshold(what, loss, threshold, tier, thresholds,
                              "check that only classifier.4 learns, that its parameters are the ones given to the "
                              "optimizer, and that the model stays in eval() mode")
