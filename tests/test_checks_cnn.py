"""Part A checks: pass on the reference CNN, fail on each flawed twin exactly where the twin is wrong."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from autograder import closed_forms as cf
from autograder.checks import cnn
from autograder.checks.base import Outcome
from autograder.checks.registry import CHECKS, PART_POINTS, check_named, checks_for
from flawed_sources import EXPECTED_FAILURES, FLAWED, PART_OF_CELL, VARIANTS
from reference_solution import build_namespace, reference_source

PART = "cnn"
TWINS = sorted(name for name, (cell, _) in FLAWED.items() if PART_OF_CELL[cell] == PART)
GOOD_VARIANTS = sorted(name for name, (cell, _) in VARIANTS.items() if PART_OF_CELL[cell] == PART)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_part(ns, part=PART):
    outcomes = {check.name: check.func(ns) for check in checks_for(part)}
    for name, outcome in outcomes.items():
        assert isinstance(outcome, Outcome), name
        assert outcome.message.strip(), f"{name} gave no message"
    return outcomes


def failing(outcomes):
    return {name for name, outcome in outcomes.items() if not outcome.passed}


@pytest.fixture(scope="module")
def reference_outcomes():
    return run_part(build_namespace())


def test_reference_passes_every_check(reference_outcomes):
    assert failing(reference_outcomes) == set(), {n: o.message for n, o in reference_outcomes.items()}


@pytest.mark.parametrize("twin", TWINS)
def test_flawed_twin_fails_exactly_its_checks(twin):
    cell, source = FLAWED[twin]
    outcomes = run_part(build_namespace({cell: source}))
    assert failing(outcomes) == EXPECTED_FAILURES[twin], {n: o.message for n, o in outcomes.items()}


@pytest.mark.parametrize("variant", GOOD_VARIANTS)
def test_correct_variants_pass(variant):
    cell, source = VARIANTS[variant]
    outcomes = run_part(build_namespace({cell: source}))
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}


def twin_outcome(twin, check):
    cell, source = FLAWED[twin]
    return check_named(check).func(build_namespace({cell: source}))


def test_layer_messages_say_expected_and_found():
    message = twin_outcome("cnn_pool_bn_swapped", "cnn_layers").message
    assert ("downconv2 should be MyConv2d(NF->2NF), MaxPool2d(2), BatchNorm2d(2NF), ReLU = MyConv2d(4->8, kernel 5), "
            "MaxPool2d(2), BatchNorm2d(8), ReLU; found MyConv2d(4->8, kernel 5), BatchNorm2d(8), MaxPool2d(2), ReLU"
            ) in message
    assert "rfconv should be" in twin_outcome("cnn_missing_relu", "cnn_layers").message
    assert "BatchNorm2d(8)" in twin_outcome("cnn_wrong_batchnorm", "cnn_layers").message
    assert "nn.Conv2d(3->4, kernel 5)" in twin_outcome("cnn_nn_conv2d", "cnn_layers").message
    assert "Upsample(size=(16, 16))" in twin_outcome("cnn_hardcoded_size", "cnn_layers").message


def test_convolution_messages_name_the_culprit():
    assert "nn.Conv2d at downconv1.0" in twin_outcome("cnn_nn_conv2d", "cnn_only_myconv").message
    for twin, function in [("cnn_functional_conv", "conv2d"), ("cnn_aliased_conv", "conv2d"), ("cnn_unfold_conv", "unfold")]:
        message = twin_outcome(twin, "cnn_only_myconv").message
        assert "outside any MyConv2d" in message and function in message, message


def test_shape_and_count_messages_give_config_and_numbers():
    message = twin_outcome("cnn_hardcoded_size", "cnn_output_shapes").message
    assert "CNN(kernel=" in message and "expected (" in message and "returned shape (" in message
    message = twin_outcome("cnn_extra_parameter", "cnn_parameter_counts").message
    assert "has 11833 trainable parameters, expected 11832" in message and "1 more outside the six groups" in message
    message = twin_outcome("cnn_hardcoded_kernel", "cnn_parameter_counts").message
    assert "finalconv has" in message


def test_missing_class_and_crashing_code_fail_without_raising():
    ns = build_namespace(omit=("cnn_model",))
    for name, outcome in run_part(ns).items():
        assert not outcome.passed and "no class CNN" in outcome.message, name
    crash = reference_source("cnn_model").replace("        x = self.downconv1(x)\n",
                                                   "        raise SystemExit('bye')\n")
    outcomes = run_part(build_namespace({"cnn_model": crash}))
    assert failing(outcomes) == {"cnn_only_myconv", "cnn_output_shapes"}
    assert "SystemExit" in outcomes["cnn_output_shapes"].message
    ns = build_namespace()
    ns["CNN"] = 42
    assert "should be a class" in check_named("cnn_layers").func(ns).message


def test_only_myconv_leaves_no_patch_behind():
    from a2cnn.layers import MyConv2d
    from torch.overrides import _get_current_function_mode_stack

    original = MyConv2d.__dict__["forward"]
    for twin in ("cnn_functional_conv", "cnn_wrong_batchnorm"):  # one that runs, one that raises in forward
        twin_outcome(twin, "cnn_only_myconv")
        assert MyConv2d.__dict__["forward"] is original
        assert not _get_current_function_mode_stack()
    assert torch.get_num_threads() >= 1


def test_a_student_myconv_class_is_not_the_provided_one():
    source = ("class MyConv2d(nn.Module):\n"
              "    def __init__(self, in_channels, out_channels, kernel_size):\n"
              "        super().__init__()\n"
              "        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size\n"
              "        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)\n"
              "    def forward(self, x):\n"
              "        return self.conv(x)\n\n" + reference_source("cnn_model"))
    outcomes = run_part(build_namespace({"cnn_model": source}))
    assert {"cnn_layers", "cnn_only_myconv"} <= failing(outcomes)
    assert "use the one imported from a2cnn.layers" in outcomes["cnn_layers"].message


def test_random_configs_are_fixed_and_in_range():
    configs = cnn.random_configs()
    assert configs == cnn.random_configs() and len(configs) == cnn.CONFIG_COUNT
    assert configs[:3] == cnn.FIXED_CONFIGS
    for kernel, nf, nc, c_in, n, h, w in configs[3:]:
        assert kernel in (1, 3, 5) and 1 <= nf <= 8 and 1 <= nc <= 8 and 1 <= c_in <= 3 and 1 <= n <= 3
        assert h % 4 == 0 and w % 4 == 0 and 4 <= h <= 48 and 4 <= w <= 48
    assert any(h != w for *_, h, w in configs)


CONFIG = st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 8), st.integers(1, 8), st.integers(1, 3),
                   st.integers(1, 3), st.integers(1, 12).map(lambda v: 4 * v), st.integers(1, 12).map(lambda v: 4 * v))


@pytest.fixture(scope="module")
def reference_ns():
    return build_namespace()


@pytest.fixture(scope="module")
def hardcoded_ns():
    cell, source = FLAWED["cnn_hardcoded_size"]
    return build_namespace({cell: source})


@settings(max_examples=15, deadline=None, derandomize=True)
@given(config=CONFIG)
def test_property_reference_has_closed_form_shape_and_count(reference_ns, config):
    assert cnn.first_shape_problem(reference_ns, "CNN", "cnn_model", cf.cnn_output_shape, [config]) is None
    assert cnn.first_count_problem(reference_ns, "CNN", "cnn_model", cf.cnn_parameter_count,
                                   cf.cnn_group_parameter_counts, cnn.CNN_FORMULA, [config]) is None


@settings(max_examples=15, deadline=None, derandomize=True)
@given(config=CONFIG)
def test_property_hard_coded_size_fails_unless_the_input_is_32x32(hardcoded_ns, config):
    problem = cnn.first_shape_problem(hardcoded_ns, "CNN", "cnn_model", cf.cnn_output_shape, [config])
    assert (problem is None) == (config[5:] == (32, 32))


def test_registry_order_points_and_parts():
    assert [c.name for c in checks_for("cnn")] == ["cnn_layers", "cnn_only_myconv", "cnn_output_shapes",
                                                   "cnn_parameter_counts"]
    assert PART_POINTS == {"cnn": 2, "unet": 2, "finetune": 2, "learning": 3}
    for part, points in PART_POINTS.items():
        assert sum(c.points for c in checks_for(part)) == points
    assert [c.part for c in CHECKS] == sorted((c.part for c in CHECKS), key=list(PART_POINTS).index)
    with pytest.raises(ValueError):
        checks_for("partD")
    with pytest.raises(KeyError):
        check_named("nope")
