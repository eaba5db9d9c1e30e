"""DeepLabV3 through torchvision's weights API, with an honest fallback.

:func:`load_deeplabv3` looks for the COCO (VOC labels) DeepLabV3 checkpoints in torch's hub cache
(``torch.hub.get_dir()/checkpoints``, which honours ``TORCH_HOME``) *before* touching the network:
first the preferred backbone, then the others (ResNet-101, ResNet-50, MobileNetV3-Large -- all three
end in ``classifier.4 = Conv2d(256, 21, 1)``, so Part C works the same with any of them). Only when
nothing is cached and the network is allowed (``A2_OFFLINE`` unset) does it try to download.

When no weights can be had it builds a randomly initialised model and says so in
:class:`LoadInfo`: the fine-tuning *mechanics* still run, but the results mean nothing.
It never reports ``pretrained=True`` for a model that did not load a checkpoint.
"""
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    DeepLabV3_ResNet50_Weights,
    DeepLabV3_ResNet101_Weights,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
    deeplabv3_resnet101,
)

from . import settings

__all__ = ["ARCHITECTURES", "LoadInfo", "checkpoint_dir", "checkpoint_path", "find_cached_weights", "hash_matches",
           "load_deeplabv3", "describe_trainable"]

# name -> (builder, weights enum member, display name)
ARCHITECTURES = {
    "resnet101": (deeplabv3_resnet101, DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1, "DeepLabV3-ResNet101"),
    "resnet50": (deeplabv3_resnet50, DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1, "DeepLabV3-ResNet50"),
    "mobilenet_v3_large": (deeplabv3_mobilenet_v3_large, DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
                           "DeepLabV3-MobileNetV3-Large"),
}
PRETRAINED_CLASSES = 21  # COCO images, Pascal VOC label set (background + 20)
NETWORK_PROBE_TIMEOUT_S = 5


@dataclass
class LoadInfo:
    """What :func:`load_deeplabv3` actually built."""

    pretrained: bool
    architecture: str
    weights: str | None = None      # e.g. "DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1"
    checkpoint: str | None = None   # file the weights came from
    reason: str = ""                # why this model (fallbacks, failures)

    def summary(self):
        if self.pretrained:
            line = f"{self.architecture}: pretrained weights {self.weights} from {self.checkpoint}"
            return f"{line} ({self.reason})" if self.reason else line
        return f"{self.architecture}: NOT pretrained (random initialisation) -- {self.reason}"

    def notice(self):
        """What a student should know before fine-tuning: one line when pretrained, else a plain warning."""
        if self.pretrained:
            return self.summary()
        return (f"WARNING: no COCO-pretrained weights were found, so {self.architecture} starts from RANDOM weights "
                "and the loss, IoU and pictures below mean nothing (they only show that the code runs). To fine-tune "
                f"the real network, put the weights file in {checkpoint_dir()} (or set TORCH_HOME to a folder whose "
                "hub/checkpoints holds it, or allow the download by leaving A2_OFFLINE unset) and run this cell "
                f"again. Details: {self.reason}")


def _order(prefer):
    if prefer not in ARCHITECTURES:
        raise ValueError(f"prefer must be one of {sorted(ARCHITECTURES)}, not {prefer!r}")
    return [prefer] + [name for name in ARCHITECTURES if name != prefer]


def checkpoint_dir():
    """Where torch.hub keeps downloaded checkpoints (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def checkpoint_path(name):
    """The file torch.hub would store the COCO weights of architecture ``name`` in."""
    weights = ARCHITECTURES[name][1]
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return checkpoint_dir() / filename


def find_cached_weights(prefer="resnet101"):
    """``[(name, path), ...]`` of the cached checkpoints, preferred architecture first. Touches no network."""
    found = []
    for name in _order(prefer):
        path = checkpoint_path(name)
        if path.is_file():
            found.append((name, path))
    return found


def hash_matches(path):
    """True when the file's SHA-256 starts with the hex prefix torch.hub puts in checkpoint names
    (``...-586e9e4e.pth``): a truncated, corrupt or substituted file is not reported as pretrained."""
    match = re.search(r"-([a-f0-9]{6,})\.", Path(path).name)
    if match is None:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest().startswith(match.group(1))


def _network_reachable(url):
    """A quick HEAD request; False on any failure (no DNS, no route, timeout, HTTP error)."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=NETWORK_PROBE_TIMEOUT_S) as response:
            return 200 <= response.status < 400
    except (OSError, ValueError):  # URLError and socket timeouts are OSErrors
        return False


def _build(name, pretrained, progress):
    builder, weights, _ = ARCHITECTURES[name]
    if pretrained:
        # With a checkpoint already in the hub cache this reads the file and does not touch the network.
        return builder(weights=weights, progress=progress)
    # weights_backbone=None matters: the default would download ImageNet backbone weights.
    return builder(weights=None, weights_backbone=None, num_classes=PRETRAINED_CLASSES)


def _set_num_classes(model, num_classes):
    if num_classes != PRETRAINED_CLASSES:
        model.classifier[4] = nn.Conv2d(model.classifier[4].in_channels, num_classes, kernel_size=1)
    return model


def load_deeplabv3(prefer="resnet101", num_classes=21, progress=False):
    """Return ``(model, LoadInfo)``: DeepLabV3 with COCO weights if they can be had, else a random one.

    Order: cached checkpoint (whose SHA-256 matches the prefix in its file name) of ``prefer``, then of the other backbones; then (network allowed and
    reachable) a download of ``prefer``; then a randomly initialised ``prefer`` model with
    ``pretrained=False``. The model is returned in ``eval()`` mode. With ``num_classes != 21`` the
    last layer ``classifier.4`` is replaced by a fresh ``Conv2d(256, num_classes, 1)``.
    """
    order = _order(prefer)
    problems = []
    for name, path in find_cached_weights(prefer):
        if not hash_matches(path):
            problems.append(f"cached {path.name} does not match the SHA-256 prefix in its name "
                            "(truncated, corrupt or not the official file); ignored")
            continue
        try:
            model = _build(name, pretrained=True, progress=progress)
        except Exception as error:  # corrupt or truncated file: report it, try the next one
            problems.append(f"cached {path.name} could not be loaded ({type(error).__name__}: {error})")
            continue
        note = [] if name == prefer else [f"{prefer} weights not cached; used cached {name} weights"]
        info = LoadInfo(True, ARCHITECTURES[name][2], str(ARCHITECTURES[name][1]), str(path), "; ".join(note + problems))
        return _set_num_classes(model, num_classes).eval(), info

    weights = ARCHITECTURES[prefer][1]
    if settings.offline():
        problems.append("A2_OFFLINE=1, so no download was tried")
    elif not _network_reachable(weights.url):
        problems.append(f"{weights.url} is not reachable")
    else:
        try:
            model = _build(prefer, pretrained=True, progress=progress)
            info = LoadInfo(True, ARCHITECTURES[prefer][2], str(weights), str(checkpoint_path(prefer)),
                            "; ".join(["downloaded"] + problems))
            return _set_num_classes(model, num_classes).eval(), info
        except Exception as error:
            problems.append(f"download of {weights.url} failed ({type(error).__name__}: {error})")

    model = _build(prefer, pretrained=False, progress=progress)
    reason = (f"no pretrained DeepLabV3 weights found in {checkpoint_dir()} "
              f"(looked for {', '.join(checkpoint_path(n).name for n in order)}); "
              "fine-tuning mechanics only, results are meaningless")
    info = LoadInfo(False, ARCHITECTURES[prefer][2], None, None, "; ".join([reason] + problems))
    return _set_num_classes(model, num_classes).eval(), info


def describe_trainable(model):
    """Names of the parameters that will receive gradients (``requires_grad=True``)."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]
