"""a2cnn.colour: float scaling, greyscale, nearest palette colour, labels back to RGB."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from a2cnn import colour
from a2cnn.colour import labels_to_rgb, nearest_colour_labels, to_float, to_greyscale

unit = st.floats(0.0, 1.0, allow_nan=False, width=32)


def images(channels, max_n=3, max_side=5):
    shape = st.tuples(st.integers(1, max_n), st.just(channels), st.integers(1, max_side), st.integers(1, max_side))
    return shape.flatmap(lambda s: hnp.arrays(np.float32, s, elements=unit))


# Channel values below 1e-6 (other than 0) are distinct colours whose squared distances underflow to 0
# (5e-324, 1e-166): no image holds them, and no distance can tell them apart.
channel_values = st.one_of(st.just(0.0), st.floats(1e-6, 1))
palettes = st.integers(1, 8).flatmap(lambda k: hnp.arrays(np.float64, (k, 3), elements=channel_values))


def brute_force_distances(rgb, palette):
    """(N, K, H, W) squared distances, one palette colour at a time."""
    rgb = rgb.astype(np.float64)
    return np.stack([((rgb - p[None, :, None, None]) ** 2).sum(axis=1) for p in palette], axis=1)


def test_to_float_range_and_type():
    x = np.array([0, 1, 128, 255], dtype=np.uint8).reshape(1, 1, 2, 2)
    f = to_float(x)
    assert f.dtype == np.float32
    assert f.ravel().tolist() == [0.0, 1 / 256, 0.5, 255 / 256] and f.max() < 1.0
    t = to_float(torch.from_numpy(x))
    assert t.dtype == torch.float32 and torch.equal(t, torch.from_numpy(f))


@pytest.mark.parametrize("bad", [np.zeros((1, 3, 2, 2), np.float32), torch.zeros(1, 3, 2, 2)])
def test_to_float_rejects_already_scaled(bad):
    with pytest.raises(TypeError, match="uint8"):
        to_float(bad)


@settings(max_examples=60, deadline=None)
@given(grey=images(1))
def test_greyscale_of_grey_image_is_itself(grey):
    rgb = np.repeat(grey, 3, axis=1)
    out = to_greyscale(rgb)
    assert out.shape == grey.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, grey)


@settings(max_examples=40, deadline=None)
@given(rgb=images(3))
def test_greyscale_is_channel_mean(rgb):
    out = to_greyscale(rgb)
    expected = (rgb[:, 0].astype(np.float64) + rgb[:, 1] + rgb[:, 2]) / 3
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(to_greyscale(torch.from_numpy(rgb)), torch.from_numpy(out))


def test_greyscale_known_value_and_shape_check():
    rgb = np.zeros((1, 3, 1, 1), np.float32)
    rgb[0, :, 0, 0] = [0.0, 0.25, 0.5]
    assert to_greyscale(rgb)[0, 0, 0, 0] == np.float32(0.25)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        to_greyscale(np.zeros((1, 1, 4, 4), np.float32))


@settings(max_examples=80, deadline=None)
@given(rgb=images(3), palette=palettes)
def test_nearest_is_argmin(rgb, palette):
    labels = nearest_colour_labels(rgb, palette)
    assert labels.dtype == np.int64 and labels.shape == (rgb.shape[0],) + rgb.shape[2:]
    dist = brute_force_distances(rgb, palette)
    chosen = np.take_along_axis(dist, labels[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(chosen, dist.min(axis=1), rtol=0, atol=1e-12)
    # where the minimum is clear, the label is exactly the brute-force argmin
    ordered = np.sort(dist, axis=1)
    clear = ordered[:, 0] + 1e-9 < ordered[:, 1] if len(palette) > 1 else np.ones(labels.shape, bool)
    np.testing.assert_array_equal(labels[clear], dist.argmin(axis=1)[clear])
    # and the colour it maps back to is the closest palette colour
    back = labels_to_rgb(labels, palette)
    assert back.shape == rgb.shape
    np.testing.assert_allclose(((back - rgb) ** 2).sum(axis=1), dist.min(axis=1), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(palette=palettes, data=st.data())
def test_ties_go_to_lowest_index(palette, data):
    copies = data.draw(st.integers(2, 3))
    doubled = np.concatenate([palette] * copies)  # every colour appears several times
    indices = data.draw(hnp.arrays(np.int64, (1, 2, 3), elements=st.integers(0, len(palette) - 1)))
    rgb = labels_to_rgb(indices, palette)  # pixels exactly on palette colours
    labels = nearest_colour_labels(rgb, doubled)
    assert labels.max() < len(palette)  # never a later duplicate
    np.testing.assert_array_equal(palette[labels], palette[indices])


def test_equidistant_pixel_goes_to_lower_index():
    palette = np.array([[1.0, 0, 0], [0, 0, 0], [0.5, 0.5, 0.5]])
    rgb = np.array([0.5, 0, 0]).reshape(1, 3, 1, 1)  # equally far from colours 0 and 1
    assert nearest_colour_labels(rgb, palette).item() == 0
    assert nearest_colour_labels(rgb, palette[[1, 0, 2]]).item() == 0


def test_chunking_does_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(3)
    rgb = rng.random((7, 3, 4, 5)).astype(np.float32)
    palette = rng.random((6, 3))
    whole = nearest_colour_labels(rgb, palette)
    monkeypatch.setattr(colour, "_CHUNK_ELEMENTS", 50)  # several chunks of one or two images
    np.testing.assert_array_equal(nearest_colour_labels(rgb, palette), whole)
    np.testing.assert_array_equal(whole, brute_force_distances(rgb, palette).argmin(axis=1))


def test_torch_inputs_come_back_as_tensors():
    rng = np.random.default_rng(1)
    rgb = rng.random((2, 3, 3, 3)).astype(np.float32)
    palette = rng.random((4, 3))
    labels = nearest_colour_labels(torch.from_numpy(rgb), torch.from_numpy(palette))
    assert isinstance(labels, torch.Tensor) and labels.dtype == torch.int64
    np.testing.assert_array_equal(labels.numpy(), nearest_colour_labels(rgb, palette))
    back = labels_to_rgb(labels, palette)
    assert isinstance(back, torch.Tensor) and back.shape == (2, 3, 3, 3)


def test_labels_to_rgb_values_and_errors():
    palette = np.array([[0.0, 0.1, 0.2], [0.9, 0.8, 0.7]])
    labels = np.array([[[0, 1]]])
    out = labels_to_rgb(labels, palette)
    assert out.shape == (1, 3, 1, 2)
    assert out[0, :, 0, 0].tolist() == [0.0, 0.1, 0.2] and out[0, :, 0, 1].tolist() == [0.9, 0.8, 0.7]
    with pytest.raises(ValueError, match="0..1"):
        labels_to_rgb(np.array([[[2]]]), palette)
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        nearest_colour_labels(np.zeros((1, 3, 1, 1)), np.zeros((2, 4)))
