"""Every check, in a fixed order, with its points. The parent reads points from here, never from a worker.

A part's check points sum to its test cell's points in the master notebook (PART_POINTS); that is asserted when
this module is imported.
"""
from autograder.checks import colouriser as col
from autograder.checks import finetune, learning
from autograder.checks.base import Check

PART_POINTS = {"cnn": 2, "unet": 2, "finetune": 2, "learning": 3}

CHECKS: list[Check] = [
    Check("cnn_layers", "cnn", 0.5, "CNN groups have the architecture's layers and compute with them",
          col.layers("cnn")),
    Check("cnn_only_myconv", "cnn", 0.5, "CNN convolves only through MyConv2d", col.only_myconv("cnn")),
    Check("cnn_output_shapes", "cnn", 0.5, "CNN output shape and chain of groups over many configurations",
          col.wiring("cnn", with_shapes=True)),
    Check("cnn_parameter_counts", "cnn", 0.5, "CNN trainable parameter count", col.parameter_counts("cnn", False)),
    Check("unet_layers", "unet", 0.5, "UNet groups have the architecture's layers and compute with them",
          col.layers("unet")),
    Check("unet_only_myconv", "unet", 0.5, "UNet convolves only through MyConv2d", col.only_myconv("unet")),
    Check("unet_skips", "unet", 0.5, "UNet decoder groups receive the three skips, with their gradients",
          col.wiring("unet", with_shapes=False)),
    Check("unet_shapes_and_parameters", "unet", 0.5, "UNet output shape and parameter count",
          col.parameter_counts("unet", True)),
    Check("finetune_head_replaced", "finetune", 0.5, "classifier.4 is a new Conv2d(256, 2, 1)",
          finetune.head_replaced),
    Check("finetune_frozen", "finetune", 0.5, "only classifier.4 learns after freeze_and_replace", finetune.frozen),
    Check("finetune_optimizer_params", "finetune", 0.5, "train optimises exactly classifier.4's parameters",
          finetune.optimizer_params),
    Check("finetune_one_step", "finetune", 0.5, "one training step changes nothing but classifier.4",
          finetune.one_step),
    Check("cnn_learns", "learning", 1.0, "CNN trained by the grader beats the calibrated validation loss",
          learning.colouriser_learns("cnn")),
    Check("unet_learns", "learning", 1.0, "UNet trained by the grader beats the calibrated validation loss",
          learning.colouriser_learns("unet")),
    Check("finetune_learns", "learning", 1.0, "fine-tuning with your Part C set-up beats the calibrated loss",
          learning.finetune_learns),
]


def checks_for(part):
    """The checks of ``part``, in registry order (ValueError for an unknown part)."""
    if part not in PART_POINTS:
        raise ValueError(f"unknown part {part!r}; parts are {sorted(PART_POINTS)}")
    return [check for check in CHECKS if check.part == part]


def check_named(name):
    for check in CHECKS:
        if check.name == name:
            return check
    raise KeyError(name)


def _validate():
    names = [check.name for check in CHECKS]
    assert len(names) == len(set(names)), f"duplicate check names in the registry: {names}"
    assert {check.part for check in CHECKS} == set(PART_POINTS), "every part needs checks, every check a part"
    for part, points in PART_POINTS.items():
        total = sum(check.points for check in CHECKS if check.part == part)
        assert abs(total - points) < 1e-9, f"checks of part {part} sum to {total} points, not {points}"


_validate()
