"""The parent's checks, on evidence from the worker's probes: the reference and correct variants pass, every flawed
twin fails exactly the checks it breaks, and forged or tampered reports earn nothing."""
import copy

import pytest
import safetensors.torch
import torch

from autograder.checks.registry import CHECKS, check_named, checks_for
from autograder.execution import StepResult
from autograder.probes import PROBES, Secrets
from evidence import collect, decide_part, failing, PART_PROBES
from flawed_sources import EXPECTED_FAILURES, FLAWED, PART_OF_CELL, VARIANTS
from reference_solution import build_namespace, reference_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STRUCTURE_PARTS = ("cnn", "unet", "finetune")


@pytest.mark.parametrize("part", STRUCTURE_PARTS)
def test_reference_passes_every_check(part):
    outcomes = decide_part(build_namespace(), part)
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}
    assert all(o.message.strip() for o in outcomes.values())


@pytest.mark.parametrize("twin", sorted(FLAWED))
def test_flawed_twin_fails_exactly_its_checks(twin):
    cell, source = FLAWED[twin]
    outcomes = decide_part(build_namespace({cell: source}), PART_OF_CELL[cell])
    assert failing(outcomes) == EXPECTED_FAILURES[twin], {n: o.message for n, o in outcomes.items()}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_correct_variants_pass(variant):
    cell, source = VARIANTS[variant]
    outcomes = decide_part(build_namespace({cell: source}), PART_OF_CELL[cell])
    assert failing(outcomes) == set(), {n: o.message for n, o in outcomes.items()}


def _unet(before, after):
    source = reference_source("unet_model")
    assert before in source
    return build_namespace({"unet_model": source.replace(before, after, 1)})


def test_legitimate_unet_styles_pass():
    """Helper-built groups, a tuple cat with dim=1 positional, Upsample(scale_factor=2.0)."""
    helper = _unet("class UNet(nn.Module):", "def _block(*layers):\n    return nn.Sequential(*layers)\n\n\n"
                   "class UNet(nn.Module):")
    assert failing(decide_part(helper, "unet")) == set()
    floats = build_namespace({"unet_model": reference_source("unet_model").replace("scale_factor=2)",
                                                                                   "scale_factor=2.0)")})
    assert failing(decide_part(floats, "unet")) == set()


def test_zero_skip_that_still_carries_a_gradient_fails():
    ns = _unet("torch.cat([up1, down1], dim=1)", "torch.cat([up1, down1 * 0 + down1.detach() * 0], dim=1)")
    outcomes = decide_part(ns, "unet")
    assert "unet_skips" in failing(outcomes)


def test_unet_that_ignores_rfconv_fails():
    ns = _unet("torch.cat([rf, down2], dim=1)", "torch.cat([down2, down2], dim=1)")
    outcomes = decide_part(ns, "unet")
    assert "unet_skips" in failing(outcomes), outcomes["unet_skips"].message


def test_flaw_only_in_training_mode_fails():
    ns = _unet("        return self.finalconv(", "        if self.training:\n            up2 = up2.detach()\n"
               "        return self.finalconv(")
    assert "unet_skips" in failing(decide_part(ns, "unet"))


def test_einsum_convolution_with_a_class_trick_fails_only_myconv():
    source = reference_source("unet_model") + '''

class _Fake(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
    def forward(self, x):
        w, b = self.conv.weight, self.conv.bias
        patches = torch.nn.functional.unfold(x, w.shape[-1], padding=w.shape[-1] // 2)
        out = torch.einsum("ok,nkl->nol", w.reshape(w.shape[0], -1), patches) + b[None, :, None]
        return out.reshape(x.shape[0], w.shape[0], x.shape[2], x.shape[3])
    @property
    def __class__(self):
        return MyConv2d

_Original = UNet
class UNet(_Original):
    def forward(self, x):
        self.__dict__["_fake"] = _Fake(self.finalconv)
        return super().forward(x)
'''
    source = source.replace("return self.finalconv(", "return self.__dict__.get('_fake', self.finalconv)(")
    outcomes = decide_part(build_namespace({"unet_model": source}), "unet")
    assert "unet_only_myconv" in failing(outcomes)


# ------------------------------------------------------------------------------------------------ forgery
def _forged(evidence, probe, edit):
    step = evidence.step(probe)
    tensors = dict(step.tensors)
    facts = copy.deepcopy(step.facts)
    edit(facts, tensors)
    forged = StepResult(id=step.id, outcome="done", facts=facts, blob=safetensors.torch.save(tensors))
    evidence.execution.steps[step.id] = forged
    evidence._configs.clear()
    return evidence


def test_a_report_copied_from_another_run_fails():
    """Reports made with other secrets (as a student would replay them) are not what this run's inputs give."""
    ns = build_namespace()
    old = collect(ns, PART_PROBES["cnn"], Secrets(1))
    new = collect(ns, PART_PROBES["cnn"], Secrets(2))
    new.execution.steps["probe:cnn_structure"] = old.execution.steps["probe:cnn_structure"]
    outcomes = {c.name: c.decide(new) for c in checks_for("cnn")}
    assert failing(outcomes) == {c.name for c in checks_for("cnn")}


def test_forged_output_tensors_are_not_believed():
    ns = build_namespace()

    def scale_outputs(facts, tensors):
        for key in [k for k in tensors if k.endswith("/out")]:
            tensors[key] = tensors[key] * 1.01

    evidence = _forged(collect(ns, PART_PROBES["unet"]), "unet_structure", scale_outputs)
    assert failing({c.name: c.decide(evidence) for c in checks_for("unet")}) == {c.name for c in checks_for("unet")}


def test_a_forged_finetune_state_is_recomputed():
    ns = build_namespace()

    def fake_head_step(facts, tensors):
        tensors["prepare/S1/classifier.4.weight"] = tensors["prepare/S0/classifier.4.weight"] + 0.01

    evidence = _forged(collect(ns, PART_PROBES["finetune"]), "finetune_behaviour", fake_head_step)
    assert not check_named("finetune_frozen").decide(evidence).passed


def test_unreported_probe_says_what_happened():
    evidence = collect(build_namespace(), PART_PROBES["cnn"])
    evidence.execution.steps["probe:cnn_structure"] = StepResult(id="probe:cnn_structure", outcome="timeout",
                                                                 progress={"config": 3, "stage": "train"})
    outcome = check_named("cnn_layers").decide(evidence)
    assert not outcome.passed
    limit = PROBES["cnn_structure"].step_seconds
    assert f"did not finish within its time limit of {limit:g} s" in outcome.message
    assert "configuration 4" in outcome.message


def test_missing_class_fails_with_a_sentence():
    ns = build_namespace()
    del ns["CNN"]
    outcomes = decide_part(ns, "cnn")
    assert failing(outcomes) == {c.name for c in checks_for("cnn")}
    assert "no class CNN is defined" in outcomes["cnn_layers"].message


def test_registry_parts_and_points():
    assert [c.part for c in CHECKS] == sorted((c.part for c in CHECKS), key=["cnn", "unet", "finetune",
                                                                             "learning"].index)
    assert torch.tensor([c.points for c in CHECKS]).sum().item() == 9


@pytest.mark.slow
@pytest.mark.parametrize("part", ("cnn", "unet"))
def test_the_reference_passes_whatever_the_runs_secrets(part):
    """Small secret configurations can make a whole group's output constant (a ReLU after a skewed batch); the
    wiring is then judged in the other configurations, never held against an honest model."""
    ns = build_namespace()
    for root in range(12):
        outcomes = decide_part(ns, part, Secrets(root))
        assert failing(outcomes) == set(), (root, {n: o.message for n, o in outcomes.items() if not o.passed})


def test_a_model_whose_groups_are_constant_everywhere_cannot_pass_the_wiring():
    """Zero-initialised convolutions make every group constant in every configuration: the wiring cannot be
    seen, so the check fails (rather than skipping every configuration) and says why."""
    source = reference_source("cnn_model") + (
        "\n_original_init = CNN.__init__\n"
        "def _zero_init(self, *args, **kwargs):\n"
        "    _original_init(self, *args, **kwargs)\n"
        "    for m in self.modules():\n"
        "        if isinstance(m, MyConv2d):\n"
        "            torch.nn.init.zeros_(m.weight)\n"
        "            torch.nn.init.zeros_(m.bias)\n"
        "CNN.__init__ = _zero_init\n")
    outcomes = decide_part(build_namespace({"cnn_model": source}), "cnn")
    assert failing(outcomes) == {"cnn_output_shapes"}
    assert "constant output" in outcomes["cnn_output_shapes"].message


@pytest.mark.parametrize("optimizer", ("Adam", "SGD"))
def test_one_small_step_from_the_graders_head_lowers_the_loss_whatever_the_seeds(optimizer):
    """The frozen ``train`` check asks that one step at FINETUNE_LEARN_RATE lowers the loss on its batch: from the
    head the grader puts on the model, a correct step must do so by far more than float precision, for any seeds
    (from a head near the optimum, Adam's step overshot and failed an honest train about one run in 200)."""
    import random

    import torch.nn.functional as F

    from autograder.probes import FINETUNE_LEARN_RATE
    from autograder.worker import tiny_deeplab

    drops = []
    for i in range(60):
        rng = random.Random(i)
        model = tiny_deeplab.build(rng.randrange(2**62)).requires_grad_(False)
        model.classifier[4] = tiny_deeplab.new_head(rng.randrange(2**62))
        images, masks = tiny_deeplab.batch(rng.randrange(2**62))
        step = getattr(torch.optim, optimizer)(model.classifier[4].parameters(), lr=FINETUNE_LEARN_RATE)
        loss = F.cross_entropy(model(images)["out"], masks)
        step.zero_grad()
        loss.backward()
        step.step()
        with torch.no_grad():
            drops.append(loss.item() - F.cross_entropy(model(images)["out"], masks).item())
    assert min(drops) > 1e-4, min(drops)
