"""A small stand-in for torchvision's DeepLabV3, built identically from a seed in the worker and in the parent.

It *is* a ``torchvision.models.segmentation.DeepLabV3`` with the real ``DeepLabHead`` (so ``classifier[4]`` is
``Conv2d(256, 21, 1)`` and the model returns ``{"out": ...}``), on a two-block backbone with BatchNorm: the Part C
checks run the student's ``freeze_and_replace`` and ``train`` on it in a fraction of a second, and its whole state
(about 1.1 M parameters) can be sent back and checked by the parent. BatchNorm statistics and affine parameters are
randomised so that a layer left in training mode shows.
"""
from collections import OrderedDict

import torch
import torch.nn as nn

from . import inputs

CLASSES = 21
FEATURES = 32
IMAGE = (3, 64, 64)


def build(seed: int):
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3

    torch.manual_seed(int(seed) % (2**63))
    backbone = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), bn1=nn.BatchNorm2d(16), relu=nn.ReLU(),
        layer1=nn.Sequential(nn.Conv2d(16, FEATURES, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(FEATURES),
                             nn.ReLU()),
    ))
    model = DeepLabV3(IntermediateLayerGetter(backbone, {"layer1": "out"}), DeepLabHead(FEATURES, CLASSES), None)
    g = inputs.generator(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=g) + 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=g) - 0.5)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=g) * 0.3)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) + 0.5)
    return model.eval()


def new_head(seed: int) -> nn.Conv2d:
    """The two-class head the grader itself puts on a model (for the checks of ``train``).

    Its biases start well off the optimum (the masks are random, so the best head predicts about one half): from a
    head near the optimum, one small step of Adam (a step of the learning rate in every parameter, whatever the
    gradient's size) can overshoot and raise the loss, and a correct ``train`` would fail about one run in 200.
    From here one step of Adam or SGD at ``FINETUNE_LEARN_RATE`` lowers it by well over float precision."""
    torch.manual_seed(int(seed) % (2**63))
    head = nn.Conv2d(256, 2, kernel_size=1)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([1.0, -1.0]))
    return head


def batch(seed: int, size: int = 2):
    """One batch (images, masks) of the contract's form: float images, int64 masks in {0, 1}."""
    images = inputs.normal(seed, (size, *IMAGE))
    masks = inputs.labels(seed + 1, (size, IMAGE[1], IMAGE[2]), 2)
    return images, masks
