"""Output shapes and parameter counts of the graded CNN and UNet, as formulas.

Written once, here, from the architecture (``shared/seed/architecture.md``); the tests compare every formula
against the reference solution models of the master notebook, and the checks compare student models against
the formulas. Notation: k = ``kernel``, NF = ``nf`` (num_filters), NC = ``nc`` (num_colours), C_in = ``c_in``
(num_in_channels).

Parameter counts, layer by layer
--------------------------------
``MyConv2d(a -> b, k)`` owns a weight (b, a, k, k) and a bias (b,): ``k²·a·b + b`` parameters.
``BatchNorm2d(c)`` owns weight and bias (c,) each: ``2c`` trainable parameters (its running statistics are
buffers, not parameters). MaxPool2d, Upsample and ReLU own none.

CNN::

    group       conv (k² term)      conv bias   BatchNorm
    downconv1   k²·C_in·NF          NF          2NF
    downconv2   k²·NF·2NF = 2k²NF²  2NF         4NF
    rfconv      k²·2NF·2NF = 4k²NF² 2NF         4NF
    upconv1     k²·2NF·NF = 2k²NF²  NF          2NF
    upconv2     k²·NF·NC            NC          2NC
    finalconv   k²·NC·NC            NC          --
    sum         k²(C_in·NF + 8NF² + NF·NC + NC²)   6NF + 2NC   12NF + 2NC

    total = k²(C_in·NF + 8NF² + NF·NC + NC²) + 18NF + 4NC

UNet: the same layers, except that the three decoder convolutions read concatenated inputs::

    group       input channels             conv (k² term)
    upconv1     2NF (rfconv) + 2NF (down2)  k²·4NF·NF = 4k²NF²      (CNN: 2k²NF²)
    upconv2     NF (upconv1) + NF (down1)   k²·2NF·NC               (CNN: k²·NF·NC)
    finalconv   NC (upconv2) + C_in (x)     k²·(NC + C_in)·NC       (CNN: k²·NC²)
    k² sum      C_in·NF + (2 + 4 + 4)NF² + 2NF·NC + NC² + C_in·NC

    total = k²(C_in·NF + 10NF² + 2NF·NC + NC² + C_in·NC) + 18NF + 4NC

Biases and BatchNorm are unchanged (output channels are the same), so the non-k² part stays 18NF + 4NC.

Output shapes
-------------
Every MyConv2d pads k // 2 (odd k keeps H and W), the two MaxPool2d(2) halve H and W, the two Upsample(x2)
double them back: for H and W multiples of 4 the output is (N, NC, H, W) for both models.
"""

__all__ = [
    "cnn_output_shape",
    "unet_output_shape",
    "cnn_parameter_count",
    "unet_parameter_count",
    "cnn_group_parameter_counts",
    "unet_group_parameter_counts",
    "unet_concat_channels",
]


def _check_spatial(h, w):
    if h % 4 or w % 4:
        raise ValueError(f"height and width must be multiples of 4 (two 2x2 poolings), got {h}x{w}")


def cnn_output_shape(n, kernel, nf, nc, c_in, h, w):
    """Shape of ``CNN(kernel, nf, nc, c_in)(x)`` for ``x`` of shape (n, c_in, h, w): ``(n, nc, h, w)``."""
    _check_spatial(h, w)
    return (n, nc, h, w)


def unet_output_shape(n, kernel, nf, nc, c_in, h, w):
    """Shape of ``UNet(kernel, nf, nc, c_in)(x)`` for ``x`` of shape (n, c_in, h, w): ``(n, nc, h, w)``."""
    _check_spatial(h, w)
    return (n, nc, h, w)


def cnn_parameter_count(kernel, nf, nc, c_in):
    """Trainable parameters of the CNN: k²(C_in·NF + 8NF² + NF·NC + NC²) + 18NF + 4NC (see module docstring)."""
    k2 = kernel * kernel
    return k2 * (c_in * nf + 8 * nf * nf + nf * nc + nc * nc) + 18 * nf + 4 * nc


def unet_parameter_count(kernel, nf, nc, c_in):
    """Trainable parameters of the UNet: k²(C_in·NF + 10NF² + 2NF·NC + NC² + C_in·NC) + 18NF + 4NC."""
    k2 = kernel * kernel
    return k2 * (c_in * nf + 10 * nf * nf + 2 * nf * nc + nc * nc + c_in * nc) + 18 * nf + 4 * nc


def _conv(k, a, b):
    return k * k * a * b + b


def cnn_group_parameter_counts(kernel, nf, nc, c_in):
    """Trainable parameters per group of the CNN (for feedback); they sum to :func:`cnn_parameter_count`."""
    k = kernel
    return {
        "downconv1": _conv(k, c_in, nf) + 2 * nf,
        "downconv2": _conv(k, nf, 2 * nf) + 4 * nf,
        "rfconv": _conv(k, 2 * nf, 2 * nf) + 4 * nf,
        "upconv1": _conv(k, 2 * nf, nf) + 2 * nf,
        "upconv2": _conv(k, nf, nc) + 2 * nc,
        "finalconv": _conv(k, nc, nc),
    }


def unet_group_parameter_counts(kernel, nf, nc, c_in):
    """Trainable parameters per group of the UNet; they sum to :func:`unet_parameter_count`."""
    k = kernel
    cat = unet_concat_channels(nf, nc, c_in)
    counts = cnn_group_parameter_counts(kernel, nf, nc, c_in)
    counts["upconv1"] = _conv(k, cat["upconv1"], nf) + 2 * nf
    counts["upconv2"] = _conv(k, cat["upconv2"], nc) + 2 * nc
    counts["finalconv"] = _conv(k, cat["finalconv"], nc)
    return counts


def unet_concat_channels(nf, nc, c_in):
    """Channels each decoder group of the UNet receives after its ``torch.cat`` skip."""
    return {"upconv1": 4 * nf, "upconv2": 2 * nf, "finalconv": nc + c_in}
