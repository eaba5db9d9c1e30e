"""Part C checks on a random-weight DeepLabV3-ResNet50: reference passes, each flawed twin fails its own checks.

The two checks of ``freeze_and_replace`` never call ``train`` and the two checks of ``train`` run on a model the
grader prepared itself, so a twin of one cell is run through its cell's checks, and a few tests run the whole part
to show that the other cell's checks are unaffected.
"""
import pytest
import torch

from autograder.checks import finetune
from autograder.checks.base import Outcome
from autograder.checks.registry import check_named, checks_for
from flawed_sources import EXPECTED_FAILURES, FLAWED, VARIANTS
from reference_solution import build_namespace

SETUP_CHECKS = ("finetune_head_replaced", "finetune_frozen")
TRAIN_CHECKS = ("finetune_optimizer_params", "finetune_one_step")
CELL_CHECKS = {"finetune_setup": SETUP_CHECKS, "finetune_train": TRAIN_CHECKS}
TWINS = sorted(name for name, (cell, _) in FLAWED.items() if cell in CELL_CHECKS)
GOOD_VARIANTS = sorted(name for name, (cell, _) in VARIANTS.items() if cell in CELL_CHECKS)


def run(ns, names):
    outcomes = {name: check_named(name).func(ns) for name in names}
    for name, outcome in outcomes.items():
        assert isinstance(outcome, Outcome) and outcome.message.strip(), name
    return outcomes


def failing(outcomes):
    return {name for name, outcome in outcomes.items() if not outcome.passed}


def twin_ns(name, table=FLAWED):
    cell, source = table[name]
    return cell, build_namespace({cell: source})


def test_reference_passes_every_check():
    ns = build_namespace()
    loop = ns["run_finetune_epochs"]
    outcomes = run(ns, [c.name for c in checks_for("finetune")])
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}
    assert "returned None" not in outcomes["finetune_head_replaced"].message
    assert ns["run_finetune_epochs"] is loop  # the spy is gone again


# what the student is told, per twin and failing check (fragments of the message)
MESSAGES = {
    "ft_nothing_frozen": ["180 of the 180 parameters outside classifier.4 still require gradients",
                          "backbone.conv1.weight", "and 175 more", "requires_grad_(False)"],
    "ft_everything_frozen": ["classifier.4.weight, classifier.4.bias", "must stay trainable"],
    "ft_21_classes": ["it has 21 output channels", "needs 2"],
    "ft_1_class": ["it has 1 output channels", "needs 2"],
    "ft_no_bias": ["should have a bias"],
    "ft_sliced_head": ["copied from the old 21-class layer"],
    "ft_all_params_to_optimizer": ["also got 180 frozen parameter(s)", "exactly classifier.4.weight and "
                                                                       "classifier.4.bias"],
    "ft_train_mode_loop": ["running_mean", "num_batches_tracked", "BatchNorm", "eval() mode"],
    "ft_empty_optimizer": ["raised ValueError", "empty parameter list"],
    "ft_no_step": ["classifier.4.weight did not change"],
}


@pytest.mark.parametrize("twin", TWINS)
def test_flawed_twin_fails_exactly_its_checks(twin):
    cell, ns = twin_ns(twin)
    outcomes = run(ns, CELL_CHECKS[cell])
    assert failing(outcomes) == EXPECTED_FAILURES[twin], {n: o.message for n, o in outcomes.items()}
    for name in EXPECTED_FAILURES[twin]:
        for fragment in MESSAGES[twin]:
            assert fragment in outcomes[name].message, (name, outcomes[name].message)


@pytest.mark.parametrize("twin", ["ft_nothing_frozen", "ft_train_mode_loop"])
def test_a_flawed_cell_does_not_cost_the_other_cells_checks(twin):
    _, ns = twin_ns(twin)
    outcomes = run(ns, [c.name for c in checks_for("finetune")])
    assert failing(outcomes) == EXPECTED_FAILURES[twin], {n: o.message for n, o in outcomes.items()}


@pytest.mark.parametrize("variant", GOOD_VARIANTS)
def test_correct_variants_pass(variant):
    cell, ns = twin_ns(variant, VARIANTS)
    outcomes = run(ns, CELL_CHECKS[cell])
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}


def test_returning_none_is_graded_and_mentioned():
    _, ns = twin_ns("ft_returns_none", VARIANTS)
    for outcome in run(ns, SETUP_CHECKS).values():
        assert outcome.passed and "returned None" in outcome.message


def test_train_works_without_the_loop_in_the_namespace_and_leaves_it_untouched():
    ns = build_namespace(with_loop=False)
    outcomes = run(ns, TRAIN_CHECKS)
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}
    assert "run_finetune_epochs" not in ns
    assert torch.optim.Optimizer.__dict__["__init__"].__qualname__ == "Optimizer.__init__"


def test_patches_are_undone_when_train_raises():
    original_init = torch.optim.Optimizer.__dict__["__init__"]
    source = ("def train(model, train_loader, epochs=1, learn_rate=1e-3, device='cpu'):\n"
              "    optimizer = torch.optim.Adam(model.classifier[4].parameters(), lr=learn_rate)\n"
              "    raise KeyboardInterruptLike('student bug')\n")
    ns = build_namespace({"finetune_train": source})
    outcomes = run(ns, TRAIN_CHECKS)
    assert failing(outcomes) == set(TRAIN_CHECKS)
    assert all("raised NameError" in o.message for o in outcomes.values())
    assert torch.optim.Optimizer.__dict__["__init__"] is original_init
    assert ns["run_finetune_epochs"].__module__ == "a2cnn.finetune"


def test_missing_functions_fail_without_raising():
    ns = build_namespace(omit=("finetune_train", "finetune_setup"))
    outcomes = run(ns, [c.name for c in checks_for("finetune")])
    assert failing(outcomes) == set(SETUP_CHECKS + TRAIN_CHECKS)
    assert "no function freeze_and_replace" in outcomes["finetune_frozen"].message
    assert "no function train" in outcomes["finetune_one_step"].message


def test_the_pristine_model_is_never_changed_by_student_code():
    _, ns = twin_ns("ft_nothing_frozen")
    run(ns, SETUP_CHECKS)
    pristine = finetune.pristine_deeplab()
    head = pristine.classifier[4]
    assert (head.in_channels, head.out_channels, head.kernel_size) == (256, 21, (1, 1))
    assert all(p.requires_grad for p in pristine.parameters())
    assert not pristine.training


def test_tiny_loader_is_the_contract_batch():
    (images, masks), = finetune.tiny_loader()
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    assert masks.shape == (2, 64, 64) and masks.dtype == torch.int64 and set(masks.unique().tolist()) <= {0, 1}
    (again, _), = finetune.tiny_loader()
    assert torch.equal(images, again)


def test_registry_order():
    assert [c.name for c in checks_for("finetune")] == list(SETUP_CHECKS + TRAIN_CHECKS)
