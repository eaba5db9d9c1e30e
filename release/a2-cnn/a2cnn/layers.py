"""The from-scratch convolution layer students build Parts A and B from."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MyConv2d(nn.Module):
    """2-D convolution that owns its parameters.

    ``weight`` has shape (out_channels, in_channels, k, k) and ``bias`` shape
    (out_channels,), both initialised uniformly in +-1/sqrt(in_channels*k*k).
    Padding defaults to ``kernel_size // 2`` so an odd kernel keeps the height
    and width of its input.
    """

    def __init__(self, in_channels, out_channels, kernel_size, padding=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2 if padding is None else padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}"
