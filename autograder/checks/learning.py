"""Training checks: do the submitted models learn as well as the reference, under the grader's own training?

Each check trains (or fine-tunes) the student's definitions with :mod:`autograder.learning` in the current tier
(``A2_GRADER_TIER``: cpu, gpu or auto) and compares the loss reached with the tier's calibrated threshold, read from
``autograder/calibration/<tier>.json`` (see :mod:`autograder.calibrate`). A loss at or below the threshold passes.
When the tier or its calibration is unusable on this machine, or Part C has no pretrained weights / official masks,
the check reports "not run" with the reason (never "passed").
"""
from ..calibrate import CalibrationError, load_thresholds
from ..learning import (architecture_name, data_fingerprint, describe_data, finetune_unavailable, measure_colouriser,
                        measure_finetune, tier_data)
from ..tiers import TierError, select_tier
from .base import Check, Outcome, failed, not_run, passed

_HINTS = {
    "cnn": "compare your CNN with the table of Question A1 (every group, BatchNorm2d and ReLU included)",
    "unet": "check the three skip connections of Question B1 (torch.cat along the channels) and the BatchNorm layers",
    "finetune": "make sure freeze_and_replace leaves classifier.4 trainable and train() hands its parameters to Adam",
}


def _tier_and_thresholds():
    """(tier, thresholds) or a not-run Outcome saying why the grader cannot judge learning here."""
    try:
        tier = select_tier()
    except TierError as exc:
        return not_run(f"grader configuration: {exc}")
    try:
        return tier, load_thresholds(tier)
    except CalibrationError as exc:
        return not_run(f"grader configuration: {exc}")


def judge(key, result, threshold, tier, provenance="", label=None):
    """passed/failed Outcome for a measured ``result`` (a dict from autograder.learning) against ``threshold``."""
    label = label or key
    if key == "finetune":
        loss = result["loss"]
        what = (f"after {result['steps']} fine-tuning steps of your train() on {result['images']} Oxford-17 "
                f"pictures ({result['architecture']}), the training loss is {loss:.4f} (from {result['initial_loss']:.4f})")
    else:
        loss = result["val_loss"]
        what = (f"trained by the grader ({result['epochs']} epochs on {result['train_images']} horses, seed "
                f"{result['seed']}), your {label} reaches a validation loss of {loss:.4f} on {result['val_images']} "
                f"held-out horses (pixel accuracy {100 * result['val_accuracy']:.1f}%)")
    where = f"tier {tier.name}" + (f"; {provenance}" if provenance else "")
    if key == "finetune" and not loss < result["initial_loss"]:
        return failed(f"{what}: the steps did not lower the loss at all (threshold {threshold:.4f}, {where}); "
                      f"{_HINTS[key]}")
    if loss <= threshold:
        return passed(f"{what}; threshold {threshold:.4f} ({where})")
    return failed(f"{what}, above the threshold {threshold:.4f} that the reference solution meets ({where}): "
                  f"it learns less well than expected; {_HINTS[key]}")


def _colouriser_check(ns, class_name, key):
    setup = _tier_and_thresholds()
    if isinstance(setup, Outcome):
        return setup
    tier, thresholds = setup
    model_class = ns.get(class_name)
    if not isinstance(model_class, type):
        return failed(f"{class_name} is not defined as a class")
    try:
        data = tier_data(tier)
    except Exception as exc:  # data mirror / download problem: the grader's, not the student's
        return not_run(f"grader configuration: the horse images cannot be loaded ({type(exc).__name__}: {exc})")
    if thresholds.get("data_fingerprint") != data_fingerprint(data):
        return not_run(f"grader configuration: the images here ({describe_data(data)}) are not those the tier "
                       f"{tier.name} thresholds were calibrated on ({thresholds.get('data') or 'unknown'}); "
                       f"rerun `python -m autograder calibrate --tier {tier.name}` with this data")
    result = measure_colouriser(model_class, tier, tier.grade_seed, data=data, label=class_name)
    if isinstance(result, Outcome):
        return result
    return judge(key, result, thresholds[key], tier, thresholds["provenance"], label=class_name)


def cnn_learns(ns):
    return _colouriser_check(ns, "CNN", "cnn")


def unet_learns(ns):
    return _colouriser_check(ns, "UNet", "unet")


def finetune_learns(ns):
    setup = _tier_and_thresholds()
    if isinstance(setup, Outcome):
        return setup
    tier, thresholds = setup
    if thresholds["finetune"] is None:
        reason = finetune_unavailable(tier)
        if reason:
            return not_run(reason)
        return not_run(f"tier {tier.name} has no calibrated fine-tuning threshold ({thresholds['finetune_reason']}); "
                       f"the {architecture_name(tier)} weights and masks are present here, so rerun "
                       f"`python -m autograder calibrate --tier {tier.name}`")
    result = measure_finetune(ns, tier, tier.grade_seed)
    if isinstance(result, Outcome):
        return result
    return judge("finetune", result, thresholds["finetune"], tier, thresholds["provenance"])


LEARNING_CHECKS = [
    Check("cnn_learns", "learning", 1.0, "CNN trained by the grader beats the calibrated validation loss", cnn_learns),
    Check("unet_learns", "learning", 1.0, "UNet trained by the grader beats the calibrated validation loss", unet_learns),
    Check("finetune_learns", "learning", 1.0, "a few steps of your Part C setup lower the loss below the calibrated level",
          finetune_learns),
]
