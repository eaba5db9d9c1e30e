"""Every check, in a fixed order, with its points. The parent reads points from here, never from a child.

A part's check points sum to its test cell's points in the master notebook (PART_POINTS); that is asserted
when this module is imported.
"""
from autograder.checks import cnn, finetune, unet
from autograder.checks.learning import LEARNING_CHECKS
from autograder.checks.base import Check

PART_POINTS = {"cnn": 2, "unet": 2, "finetune": 2, "learning": 3}

CHECKS: list[Check] = [
    Check("cnn_layers", "cnn", 0.5, "CNN groups have the architecture's layers and channels", cnn.cnn_layers),
    Check("cnn_only_myconv", "cnn", 0.5, "CNN convolves only through MyConv2d", cnn.cnn_only_myconv),
    Check("cnn_output_shapes", "cnn", 0.5, "CNN output shape for many sizes and configurations",
          cnn.cnn_output_shapes),
    Check("cnn_parameter_counts", "cnn", 0.5, "CNN trainable parameter count", cnn.cnn_parameter_counts),
    Check("unet_layers", "unet", 0.5, "UNet groups have the architecture's layers and channels", unet.unet_layers),
    Check("unet_skip_channels", "unet", 0.5, "UNet decoder groups receive the concatenated channels",
          unet.unet_skip_channels),
    Check("unet_skip_dependence", "unet", 0.5, "UNet output depends on every skipped tensor",
          unet.unet_skip_dependence),
    Check("unet_shapes_and_parameters", "unet", 0.5, "UNet output shape and parameter count",
          unet.unet_shapes_and_parameters),
    Check("finetune_head_replaced", "finetune", 0.5, "classifier.4 is a new Conv2d(256, 2, 1)",
          finetune.finetune_head_replaced),
    Check("finetune_frozen", "finetune", 0.5, "only classifier.4 requires gradients", finetune.finetune_frozen),
    Check("finetune_optimizer_params", "finetune", 0.5, "train optimises exactly classifier.4's parameters",
          finetune.finetune_optimizer_params),
    Check("finetune_one_step", "finetune", 0.5, "one training step changes nothing but classifier.4",
          finetune.finetune_one_step),
    *LEARNING_CHECKS,  # part "learning": the grader trains the student's models (autograder/checks/learning.py)
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
