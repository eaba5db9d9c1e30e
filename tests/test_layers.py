"""a2cnn.layers.MyConv2d, the layer students build from, against a convolution written out by hand."""
import math

import pytest
import torch

from a2cnn.layers import MyConv2d


def convolve_by_hand(x, weight, bias, padding):
    """out[n, o, i, j] = bias[o] + sum over c, u, v of weight[o, c, u, v] * padded x[n, c, i + u, j + v]."""
    n, c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    padded = torch.zeros(n, c_in, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    padded[:, :, padding:padding + h, padding:padding + w] = x
    out_h, out_w = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    out = bias.view(1, c_out, 1, 1).expand(n, c_out, out_h, out_w).clone()
    for u in range(k):
        for v in range(k):
            window = padded[:, :, u:u + out_h, v:v + out_w]                  # (n, c_in, out_h, out_w)
            out += torch.einsum("nchw,oc->nohw", window, weight[:, :, u, v])
    return out


@pytest.mark.parametrize("kernel, padding, shape", [
    (1, None, (2, 3, 5, 7)), (3, None, (1, 1, 32, 32)), (5, None, (3, 2, 9, 4)), (3, 0, (2, 2, 6, 8)),
    (5, 1, (1, 3, 8, 8)), (3, 2, (2, 1, 4, 5)),
])
def test_myconv2d_computes_the_convolution(kernel, padding, shape):
    torch.manual_seed(kernel * 10 + (padding or 0))
    layer = MyConv2d(shape[1], 4, kernel, padding=padding).double()
    x = torch.randn(*shape, dtype=torch.float64)
    expected = convolve_by_hand(x, layer.weight.detach(), layer.bias.detach(), layer.padding)
    got = layer(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_the_default_padding_keeps_height_and_width(kernel):
    layer = MyConv2d(2, 3, kernel)
    assert layer.padding == kernel // 2
    assert layer(torch.zeros(1, 2, 11, 6)).shape == (1, 3, 11, 6)


def test_parameters_have_the_documented_shapes_and_initial_range():
    torch.manual_seed(0)
    layer = MyConv2d(8, 16, 3)
    assert dict((n, tuple(p.shape)) for n, p in layer.named_parameters()) == {"weight": (16, 8, 3, 3), "bias": (16,)}
    bound = 1 / math.sqrt(8 * 3 * 3)
    for parameter in (layer.weight, layer.bias):
        assert parameter.abs().max() <= bound
    # uniform over the whole range, not a constant or a narrower interval
    assert layer.weight.max() > 0.9 * bound and layer.weight.min() < -0.9 * bound
    assert abs(layer.weight.mean().item()) < 0.1 * bound


def test_gradients_reach_the_weight_the_bias_and_the_input():
    layer = MyConv2d(2, 3, 3)
    x = torch.randn(2, 2, 5, 5, requires_grad=True)
    layer(x).square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (layer.weight, layer.bias, x))


def test_an_input_with_the_wrong_channels_is_named_in_a_sentence():
    """A UNet whose forward forgets a skip: the layer says which it is, what it got and what to check."""
    from a2cnn.layers import LayerInputError

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.upconv1 = torch.nn.Sequential(MyConv2d(32, 8, 3), torch.nn.ReLU())

        def forward(self, x):
            return self.upconv1(x)

    with pytest.raises(LayerInputError) as caught:
        Net()(torch.zeros(2, 16, 8, 8))
    message = str(caught.value)
    assert message.startswith("upconv1[0], a MyConv2d built for 32 input channels, was given 16 channels")
    assert "(2, 16, 8, 8)" in message and "torch.cat" in message and "check what forward() passes to upconv1" in message
    assert isinstance(caught.value, RuntimeError)  # what F.conv2d raised before, for code that catches it
    # outside IPython there are no notebook cells to show: the sentence alone
    assert caught.value._render_traceback_() == [f"LayerInputError: {message}"]
    with pytest.raises(LayerInputError, match="4-dimensional"):
        MyConv2d(3, 4, 3)(torch.zeros(8, 8))


def test_an_unbatched_picture_still_convolves():
    layer = MyConv2d(3, 4, 3)
    x = torch.randn(3, 6, 6)
    torch.testing.assert_close(layer(x), layer(x[None])[0])
