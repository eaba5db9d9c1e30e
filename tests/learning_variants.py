"""Runnable-but-flawed submissions for the training checks, derived from the reference solution.

Each factory takes the reference namespace (``autograder.reference.load_reference()``) and returns a model class
with the assignment's constructor signature. They pass the shape checks, so only *learning* can tell them apart.
"""
import types

import torch
import torch.nn as nn

from autograder.reference import cell_sources


def _nn_without_batchnorm():
    """A stand-in for ``torch.nn`` whose BatchNorm2d is the identity (everything else unchanged)."""
    fake = types.SimpleNamespace(**{name: getattr(nn, name) for name in dir(nn) if not name.startswith("__")})
    fake.BatchNorm2d = lambda num_features, *args, **kwargs: nn.Identity()
    return fake


def without_batchnorm(ref_ns, class_name):
    """The reference ``CNN`` or ``UNet`` with every BatchNorm2d left out (a common student omission)."""
    ns = dict(ref_ns)
    ns["nn"] = _nn_without_batchnorm()
    grade_id = {"CNN": "cnn_model", "UNet": "unet_model"}[class_name]
    source = cell_sources(grade_ids=(grade_id,))[grade_id]
    exec(compile(source, f"<{grade_id} without BatchNorm2d>", "exec"), ns)
    cls = ns[class_name]
    cls.__name__ = f"{class_name}WithoutBatchNorm"
    return cls


class ConstantMap(nn.Module):
    """Ignores its input: returns one learned (colours x 32 x 32) map of logits for every picture."""

    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_colours, 32, 32))

    def forward(self, x):
        return self.logits.unsqueeze(0).expand(x.shape[0], -1, -1, -1)


def _wrapping(base, name, transform):
    """``base`` with ``transform`` applied to its output in ``forward`` (a subclass, as a student would write it)."""
    class Transformed(base):
        def forward(self, x):
            return transform(self, super().forward(x))

    Transformed.__name__ = name
    return Transformed


def softmax_output(base):
    """Returns probabilities (softmax over the colours) where logits are expected: a wrong learning target,
    since cross-entropy then scores the probabilities as logits and can never become confident."""
    return _wrapping(base, f"{base.__name__}Softmax", lambda self, out: torch.softmax(out, dim=1))


def transposed_output(base):
    """Swaps height and width of the output: the colour at (row, column) is predicted from the features at
    (column, row), i.e. the model is trained towards the transposed picture's colours."""
    return _wrapping(base, f"{base.__name__}Transposed", lambda self, out: out.transpose(2, 3))


def permuted_channels(base, seed=1234):
    """Returns the colour logits in a channel order fixed at random. NOT a learning flaw: the permutation is
    absorbed by the last convolution (same family of functions, same initial distribution)."""
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(seed))

    def transform(self, out):
        return out[:, perm.to(out.device)]

    return _wrapping(base, f"{base.__name__}Permuted", transform)
