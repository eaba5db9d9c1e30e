"""What the grader asks a worker to collect about a submission, with seeds only the parent knows.

Each probe is declared once: its kind (the worker function that runs it), its time limits, and how its arguments
are drawn. Every input a worker gets comes from :class:`Secrets`, drawn afresh for every grading run, so a
submission cannot know in advance the inputs or weights it will be tested with; the parent regenerates the same
tensors from the same seeds to check what the worker reports.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets as _secrets

from autograder.worker import marks

# The configuration the layer checks use: every channel count differs (NF=4, 2NF=8, 4NF=16, NC=7, C_in=3,
# NC + C_in = 10) so that a swapped argument shows; kernel 5.
LAYER_CONFIG = {"kernel": 5, "num_filters": 4, "num_colours": 7, "num_in_channels": 3, "batch": 2, "height": 32,
                "width": 32}
CONFIG_SEED = 20240917
CONFIG_COUNT = 25
MIN_VALUES_PER_CHANNEL = 8  # at the 1/4-size groups, in training mode (see structure_configs)
# (kernel, NF, NC, C_in, batch, H, W): the notebook's own configuration, a non-square one, the smallest one.
FIXED_CONFIGS = [(3, 8, 24, 1, 2, 32, 32), (5, 4, 7, 3, 1, 16, 24), (1, 1, 1, 1, 1, 4, 4)]
LEARNING_PROBE_BATCH = 4
FINETUNE_LEARN_RATE = 1e-4  # small enough that one step of Adam or SGD lowers the loss


class Secrets:
    """Per-run secret seeds, all derived from one root drawn from the operating system (fixed only in tests)."""

    def __init__(self, root: int | None = None):
        self.root = _secrets.randbits(62) if root is None else int(root)

    def seed(self, *names) -> int:
        digest = hashlib.sha256(f"{self.root}/{'/'.join(map(str, names))}".encode()).digest()
        return int.from_bytes(digest[:8], "little") % (2**62)

    def marks(self) -> tuple[float, float]:
        return marks.draw(self.seed("marks"))


def structure_configs(count: int = CONFIG_COUNT, seed: int = CONFIG_SEED) -> list[dict]:
    """The layer configuration, then fixed and seeded random ones (model arguments and input sizes only)."""
    rng = random.Random(seed)
    raw = list(FIXED_CONFIGS)
    while len(raw) < count:
        raw.append((rng.choice((1, 3, 5)), rng.randint(1, 8), rng.randint(1, 8), rng.randint(1, 3),
                    rng.randint(1, 3), 4 * rng.randint(1, 12), 4 * rng.randint(1, 12)))
    keys = ("kernel", "num_filters", "num_colours", "num_in_channels", "batch", "height", "width")
    configs = [dict(LAYER_CONFIG)] + [dict(zip(keys, config)) for config in raw]
    for config in configs:
        # BatchNorm in training mode normalises each channel over batch x height x width. With only two values per
        # channel at the 1/4-size groups, two equal values (after a ReLU) make a whole group constant and the
        # wiring ambiguous; eight values make that vanishingly rare.
        quarter = (config["height"] // 4) * (config["width"] // 4)
        if config["batch"] * quarter < MIN_VALUES_PER_CHANNEL:
            config["batch"] = -(-MIN_VALUES_PER_CHANNEL // quarter)
    return configs


def learning_config(num_filters: int) -> dict:
    """The models the training checks train: kernel 3, 24 colours, greyscale input, NF of the tier."""
    return {"kernel": 3, "num_filters": int(num_filters), "num_colours": 24, "num_in_channels": 1,
            "batch": LEARNING_PROBE_BATCH, "height": 32, "width": 32}


def with_seeds(config: dict, secrets: Secrets, *names) -> dict:
    seeded = dict(config)
    for key in ("seed_model", "seed_x", "seed_x2", "seed_r", "seed_bn"):
        seeded[key] = secrets.seed(*names, key)
    return seeded


@dataclasses.dataclass(frozen=True)
class Probe:
    name: str
    kind: str              # the worker's probe function (autograder/worker/main.py PROBES)
    model: str = ""        # the class probed (colouriser probes)
    stage_seconds: float = 30.0
    step_seconds: float = 120.0

    def configs(self, tier) -> list[dict]:
        if self.name.endswith("_structure"):
            return structure_configs()
        return [learning_config(tier.num_filters)]

    def args(self, secrets: Secrets, tier) -> dict:
        if self.kind == "colouriser":
            configs = [with_seeds(c, secrets, self.name, i) for i, c in enumerate(self.configs(tier))]
            return {"class": self.model, "configs": configs, "marks": list(secrets.marks()),
                    "randomise": self.name.endswith("_structure")}
        if self.kind == "finetune":
            seed = lambda *names: secrets.seed(self.name, *names)  # noqa: E731
            return {
                "prepare": {"seed_model": seed("prepare", "model"), "seed_call": seed("prepare", "call"),
                            "seed_batch": seed("prepare", "batch")},
                "frozen": {"seed_model": seed("frozen", "model"), "seed_head": seed("frozen", "head"),
                           "seed_call": seed("frozen", "call"), "seed_batch": seed("frozen", "batch"),
                           "learn_rate": FINETUNE_LEARN_RATE},
                "unfrozen": {"seed_model": seed("unfrozen", "model"), "seed_head": seed("unfrozen", "head"),
                             "seed_call": seed("unfrozen", "call"), "seed_batch": seed("unfrozen", "batch"),
                             "learn_rate": FINETUNE_LEARN_RATE},
            }
        if self.kind == "finetune_learning":
            # the seed of the calibration's grading run: the threshold was measured with these batches
            from .learning import finetune_probe_args
            from .sandbox.view import INPUTS_TARGET

            return finetune_probe_args(tier, tier.grade_seed, tier.finetune_images, INPUTS_TARGET)
        raise ValueError(f"probe {self.name} has no arguments of its own")


PROBES = {probe.name: probe for probe in (
    Probe("cnn_structure", "colouriser", model="CNN"),
    Probe("unet_structure", "colouriser", model="UNet"),
    Probe("finetune_behaviour", "finetune", stage_seconds=60.0, step_seconds=180.0),
    Probe("cnn_learning", "colouriser", model="CNN", step_seconds=60.0),
    Probe("unet_learning", "colouriser", model="UNet", step_seconds=60.0),
    Probe("finetune_learning", "finetune_learning", stage_seconds=300.0, step_seconds=600.0),
)}
