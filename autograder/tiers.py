"""Budgets of the training checks: one `Tier` per kind of machine, the same measuring code for all.

* ``gpu``: the full check an instructor runs on a CUDA runner, with the handout's settings (5000 / 1000 horses,
  25 epochs, batch size 100, NF 32; Part C with DeepLabV3-ResNet101 at 224 x 224).
* ``cpu``: a reduced check that runs in this project's CI on 2 CPU cores: the first 1000 / 200 horses, NF 16, batch
  size 25 (more updates for the same compute), 4 epochs, one torch thread; Part C with the small MobileNetV3
  DeepLabV3 at 128 x 128. Measured on the 2-core CI machine (shared, load about 2): the reference CNN + UNet train
  in about 22 s together (``autograder/calibration/cpu.json``, ``timing``), and the whole learning part of one
  submission, imports and data loading included, takes about 28 s: inside the 60 s budget. One thread, because
  the results depend on the thread count and because CI runs two pytest workers on the two cores.

Every number that is compared with a threshold is produced with exactly these settings; the thresholds themselves
live in ``autograder/calibration/<tier>.json`` (written by ``python -m autograder calibrate``), and a calibration
whose recorded settings differ from the tier's current ones is refused as stale.

Which tier grades: ``select_tier(requested)``; ``requested`` defaults to the environment variable
``A2_GRADER_TIER`` (set by the grader from ``--tier``), else ``auto`` = ``gpu`` when CUDA is available, else ``cpu``.
"""
import os
from dataclasses import asdict, dataclass, field, fields

import torch

from .config import TIER_CHOICES

TIER_ENV = "A2_GRADER_TIER"


class TierError(ValueError):
    """A tier that does not exist, or one this machine cannot run (gpu without CUDA)."""


def _f(default, description):
    return field(default=default, metadata={"description": description})


@dataclass(frozen=True)
class Tier:
    name: str = _f("cpu", "tier name: cpu or gpu")
    device: str = _f("cpu", "torch device the training checks run on")
    threads: int = _f(1, "torch CPU threads while training (results depend on it, so fixed per tier; 0 = torch default)")
    train_images: int = _f(1000, "training horses used: the first N of the training split, in file order")
    val_images: int = _f(200, "validation horses used: the first M of the test split, in file order")
    epochs: int = _f(4, "passes over the training subset (CNN and UNet)")
    batch_size: int = _f(25, "images per mini-batch (CNN and UNet)")
    num_filters: int = _f(16, "NF passed to the submitted CNN and UNet")
    learn_rate: float = _f(1e-3, "Adam learning rate (CNN and UNet)")
    grade_seed: int = _f(0, "seed of the one run that grades a submission")
    calibration_seeds: tuple = _f((0, 1, 2, 3, 4, 5, 6, 7), "seeds the reference is trained with to calibrate (>= 5)")
    finetune_arch: str = _f("mobilenet_v3_large", "DeepLabV3 backbone of the Part C check (a2cnn.deeplab name)")
    finetune_images: int = _f(8, "Oxford-17 training pictures used: the first N with a trimap (official split)")
    finetune_size: int = _f(128, "side of the square pictures the Part C check resizes to")
    finetune_batch_size: int = _f(4, "pictures per fine-tuning step")
    finetune_steps: int = _f(6, "optimizer steps the student's train() runs (one epoch of this many batches)")
    finetune_learn_rate: float = _f(1e-3, "learn_rate passed to the student's train()")
    time_budget_s: float = _f(60.0, "wall-clock budget of all training checks of one submission together")

    def settings(self):
        """The settings a calibration depends on (all fields but the time budget), JSON-ready."""
        values = asdict(self)
        values.pop("time_budget_s")
        values["calibration_seeds"] = list(values["calibration_seeds"])
        return values

    @classmethod
    def describe(cls):
        return "\n".join(f"{f.name} = {f.default!r}: {f.metadata['description']}" for f in fields(cls))


TIERS = {
    "cpu": Tier(),
    "gpu": Tier(
        name="gpu",
        device="cuda",
        threads=0,
        train_images=5000,
        val_images=1000,
        epochs=25,
        batch_size=100,
        num_filters=32,
        learn_rate=1e-3,
        grade_seed=0,
        calibration_seeds=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
        finetune_arch="resnet101",
        finetune_images=32,
        finetune_size=224,
        finetune_batch_size=4,
        finetune_steps=16,
        finetune_learn_rate=1e-3,
        time_budget_s=300.0,
    ),
}


def cuda_available():
    return torch.cuda.is_available()


def select_tier(requested=None):
    """The Tier to grade or calibrate with.

    ``requested``: "cpu", "gpu", "auto" or None (= the ``A2_GRADER_TIER`` environment variable, else "auto").
    "auto" is gpu when CUDA is available, else cpu. Asking for gpu on a machine without CUDA is an error: the gpu
    thresholds were calibrated on a GPU and the handout-size training would not fit a CPU budget.
    """
    if requested is None:
        requested = os.environ.get(TIER_ENV, "").strip() or "auto"
    name = str(requested).strip().lower()
    if name not in TIER_CHOICES:
        raise TierError(f"unknown tier {requested!r}: choose one of {', '.join(TIER_CHOICES)}")
    if name == "auto":
        name = "gpu" if cuda_available() else "cpu"
    if name == "gpu" and not cuda_available():
        raise TierError("tier 'gpu' needs a CUDA device, but torch sees none "
                        f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                        "run on a GPU runner, or use --tier cpu (or auto)")
    return TIERS[name]
