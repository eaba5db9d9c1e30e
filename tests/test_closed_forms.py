"""The closed forms of autograder/closed_forms.py against the master notebook's reference CNN and UNet."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from autograder import closed_forms as cf
from reference_solution import build_namespace

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)
ARCH = st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 8), st.integers(1, 8), st.integers(1, 3))
INPUT = st.tuples(st.integers(1, 3), st.integers(1, 12).map(lambda v: 4 * v), st.integers(1, 12).map(lambda v: 4 * v))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ref():
    return build_namespace()


def build(ref, name, kernel, nf, nc, c_in):
    torch.manual_seed(0)
    return ref[name](kernel=kernel, num_filters=nf, num_colours=nc, num_in_channels=c_in).eval()


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@SETTINGS
@given(arch=ARCH)
def test_cnn_parameter_count_matches_reference(ref, arch):
    model = build(ref, "CNN", *arch)
    assert trainable(model) == cf.cnn_parameter_count(*arch)
    groups = cf.cnn_group_parameter_counts(*arch)
    assert {g: trainable(getattr(model, g)) for g in groups} == groups
    assert sum(groups.values()) == cf.cnn_parameter_count(*arch)


@SETTINGS
@given(arch=ARCH)
def test_unet_parameter_count_matches_reference(ref, arch):
    model = build(ref, "UNet", *arch)
    assert trainable(model) == cf.unet_parameter_count(*arch)
    groups = cf.unet_group_parameter_counts(*arch)
    assert {g: trainable(getattr(model, g)) for g in groups} == groups
    assert sum(groups.values()) == cf.unet_parameter_count(*arch)


@SETTINGS
@given(arch=ARCH, size=INPUT)
def test_output_shapes_match_reference(ref, arch, size):
    n, h, w = size
    x = torch.randn(n, arch[3], h, w)
    with torch.no_grad():
        assert tuple(build(ref, "CNN", *arch)(x).shape) == cf.cnn_output_shape(n, *arch, h, w)
        assert tuple(build(ref, "UNet", *arch)(x).shape) == cf.unet_output_shape(n, *arch, h, w)


@SETTINGS
@given(arch=ARCH, size=INPUT)
def test_unet_concat_channels_match_what_the_reference_receives(ref, arch, size):
    kernel, nf, nc, c_in = arch
    model = build(ref, "UNet", *arch)
    seen = {}

    def recorder(name):
        def hook(module, args):
            seen.setdefault(name, args[0].shape[1])  # returns None: the input is left as it is
        return hook

    for name in ("upconv1", "upconv2", "finalconv"):
        getattr(model, name).register_forward_pre_hook(recorder(name))
    with torch.no_grad():
        model(torch.randn(size[0], c_in, size[1], size[2]))
    assert seen == cf.unet_concat_channels(nf, nc, c_in)
    assert model.upconv1[0].in_channels == seen["upconv1"]


def test_formulas_by_hand():
    # the notebook's default run: k=3, NF=32, NC=24, C_in=1
    assert cf.cnn_parameter_count(3, 32, 24, 1) == 9 * (32 + 8 * 1024 + 32 * 24 + 576) + 18 * 32 + 4 * 24 == 86784
    assert cf.unet_parameter_count(3, 32, 24, 1) == 9 * (32 + 10 * 1024 + 2 * 32 * 24 + 576 + 24) + 672
    # the master's hidden test cell spells out the CNN count for CNN(5, 6, 10, 3) layer by layer
    hidden = 25 * (3 * 6 + 2 * 36 + 4 * 36 + 2 * 36 + 6 * 10 + 100) + (6 + 12 + 12 + 6 + 10 + 10) + 2 * (6 + 12 + 12 + 6 + 10)
    assert cf.cnn_parameter_count(5, 6, 10, 3) == hidden
    assert cf.unet_concat_channels(6, 10, 3) == {"upconv1": 24, "upconv2": 12, "finalconv": 13}
    # the UNet differs from the CNN exactly by its three wider decoder convolutions
    k, nf, nc, c_in = 5, 6, 10, 3
    extra = k * k * (2 * nf * nf + nf * nc + c_in * nc)
    assert cf.unet_parameter_count(k, nf, nc, c_in) - cf.cnn_parameter_count(k, nf, nc, c_in) == extra


@pytest.mark.parametrize("h, w", [(30, 32), (32, 6), (2, 4)])
def test_output_shape_rejects_sizes_two_poolings_cannot_restore(h, w):
    with pytest.raises(ValueError, match="multiples of 4"):
        cf.cnn_output_shape(1, 3, 8, 24, 1, h, w)
    with pytest.raises(ValueError, match="multiples of 4"):
        cf.unet_output_shape(1, 3, 8, 24, 1, h, w)


def test_a_count_off_by_the_final_bias_fails_the_parameter_check():
    """The comparison has teeth: a CNN whose finalconv bias is frozen has exactly the closed form minus NC trainable
    parameters, and the grader's parameter-count check (the code that compares with the closed form) fails it."""
    from evidence import decide_part, failing
    from reference_solution import reference_source

    source = reference_source("cnn_model").replace(
        "        self.finalconv = MyConv2d(nc, nc, kernel)\n",
        "        self.finalconv = MyConv2d(nc, nc, kernel)\n        self.finalconv.bias.requires_grad_(False)\n", 1)
    model = build(build_namespace({"cnn_model": source}), "CNN", 3, 4, 5, 1)
    assert trainable(model) == cf.cnn_parameter_count(3, 4, 5, 1) - 5
    outcomes = decide_part(build_namespace({"cnn_model": source}), "cnn")
    assert "cnn_parameter_counts" in failing(outcomes)
    assert "trainable parameters; the architecture has" in outcomes["cnn_parameter_counts"].message
