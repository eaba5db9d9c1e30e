"""Marked convolution: how the grader tells a convolution computed by ``MyConv2d.forward`` from any other.

While a model is probed, ``a2cnn.layers.F`` (the module through which ``MyConv2d.forward`` convolves) is replaced
by a proxy whose ``conv2d`` computes the ordinary convolution forward, but whose backward gives the weight and the
bias a *marker* instead of their gradient: ``sin(a * value + c)``, with ``a`` and ``c`` secret per run. A layer
whose weights reach the output only through ``MyConv2d.forward`` ends up with exactly its marker as gradient; a
weight also (or only) used by another operation (``F.conv2d`` called directly, ``einsum``, ``unfold``, a class that
only pretends to be ``MyConv2d``) gets a real gradient mixed in, which the parent sees by recomputing the marker
from the reported weights. The input gradient stays exact, so gradients still flow to earlier layers.
"""
import math

import torch
import torch.nn.functional as _functional
from torch.nn.grad import conv2d_input as _conv2d_input

_conv2d = _functional.conv2d  # bound at import, before any student code runs


def mark(tensor: torch.Tensor, a: float, c: float) -> torch.Tensor:
    return torch.sin(tensor.detach() * a + c)


def draw(seed: int) -> tuple[float, float]:
    """Secret marker parameters (a, c) from a seed."""
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    u = torch.rand(2, generator=g, dtype=torch.float64)
    return 20.0 + 40.0 * float(u[0]), 2 * math.pi * float(u[1])


class MarkedConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding, a, c):
        ctx.save_for_backward(x, weight, bias if bias is not None else torch.empty(0))
        ctx.padding, ctx.a, ctx.c, ctx.has_bias = padding, a, c, bias is not None
        return _conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv2d_input(x.shape, weight, grad_out, padding=ctx.padding)
        grad_w = mark(weight, ctx.a, ctx.c) if ctx.needs_input_grad[1] else None
        grad_b = mark(bias, ctx.a, ctx.c) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None


class MarkedFunctional:
    """Stands in for ``torch.nn.functional`` inside ``a2cnn.layers`` while a model is probed."""

    def __init__(self, a: float, c: float):
        self._a, self._c = a, c

    def conv2d(self, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
        if stride not in (1, (1, 1)) or dilation not in (1, (1, 1)) or groups != 1 or isinstance(padding, str):
            return _conv2d(input, weight, bias, stride, padding, dilation, groups)
        return MarkedConv.apply(input, weight, bias, padding, self._a, self._c)

    def __getattr__(self, name):
        return getattr(_functional, name)
