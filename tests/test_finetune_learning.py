"""Part C's training check: the worker runs the student's ``freeze_and_replace`` and ``train`` and returns
classifier.4; the parent measures that classifier.4 on its own copy of the model and pictures.

No pretrained DeepLabV3 or trimaps exist here, so the check runs on a grader set up with the stand-in model
(``worker/finetune_learning_probe.STAND_IN``: a small DeepLabV3 with random weights) and synthetic masks that the
pictures reveal. That tests the plumbing and the trust boundary, not Part C's real numbers; the threshold is
calibrated here the way ``calibrate`` does it, over three seeds of the reference.
"""
import dataclasses

import pytest
import torch

from autograder import calibrate, grade, learning
from autograder.checks import learning as learning_checks
from autograder.checks.evidence import Evidence
from autograder.execution import Execution, StepResult
from autograder.program import Program
from autograder.tiers import TIERS
from autograder.worker import main as worker
from autograder.worker.finetune_learning_probe import STAND_IN
from autograder.worker.recording import Recording
from reference_solution import build_namespace

TIER = dataclasses.replace(TIERS["cpu"], finetune_arch=STAND_IN, finetune_images=8, finetune_size=64,
                           finetune_batch_size=4, finetune_steps=12, finetune_learn_rate=3e-2)
PROBE = "finetune_learning"


def _pictures(tier=TIER):
    """Pictures whose masks they reveal (a flower is brighter), so that a head that learns lowers the loss."""
    generator = torch.Generator().manual_seed(0)
    masks = (torch.rand(tier.finetune_images, 1, 2, 2, generator=generator) > 0.5).float()
    masks = torch.nn.functional.interpolate(masks, size=(tier.finetune_size,) * 2).squeeze(1).long()
    images = torch.randn(tier.finetune_images, 3, tier.finetune_size, tier.finetune_size, generator=generator)
    return images + 5.0 * masks[:, None].float(), masks


@pytest.fixture(scope="module")
def ref():
    return build_namespace()


@pytest.fixture(scope="module")
def threshold(ref):
    """The stand-in's threshold, calibrated as ``calibrate`` does: the reference measured over three seeds."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(learning, "finetune_data", lambda tier: _pictures(tier))
        runs = [learning.measure_finetune(dict(ref), TIER, seed) for seed in (0, 1, 2)]
    for run in runs:
        assert isinstance(run, dict), run
        assert run["loss"] < run["initial_loss"] - 0.1, run
    return calibrate.threshold_from([run["loss"] for run in runs])["threshold"]


@pytest.fixture
def stand_in_grader(monkeypatch, threshold):
    """The parent set up as a grader with the weights and the masks would be, with the stand-in model."""
    for module in (learning, learning_checks, grade):
        monkeypatch.setattr(module, "finetune_data", lambda tier: _pictures(tier), raising=False)
        monkeypatch.setattr(module, "finetune_unavailable", lambda tier: None, raising=False)
    monkeypatch.setattr(learning_checks, "load_thresholds",
                        lambda tier: {"finetune": threshold, "provenance": "stand-in, 3 seeds of the reference"})
    return threshold


def _evidence(ns, tmp_path, edit=None) -> Evidence:
    """Run the probe here, as a worker runs it (trusted variants of the reference only), and collect its report;
    ``edit(facts, tensors)`` replaces what the worker returns."""
    images, masks = _pictures()
    learning.write_finetune_inputs(str(tmp_path), images, masks)
    args = learning.finetune_probe_args(TIER, TIER.grade_seed, len(images), str(tmp_path))
    step = {"id": f"probe:{PROBE}", "kind": "probe", "probe": PROBE, "args": args, "stage_limit": 60.0,
            "limit": 120.0}
    facts, tensors = worker.run_step(step, ns, lambda *_: None)
    if edit:
        facts, tensors = edit(facts, dict(tensors))
    import safetensors.torch

    blob = safetensors.torch.save(tensors) if tensors else b""
    program = Program(steps=[step], probes={PROBE: step["id"]})
    result = StepResult(id=step["id"], outcome="done", facts=facts, blob=blob)
    return Evidence(program, Execution(steps={step["id"]: result}), None, TIER)


def _with(ref, **functions):
    return {**ref, **functions}


def frozen_head(ns):
    def freeze_and_replace(model):
        return ns["freeze_and_replace"](model).requires_grad_(False)
    return freeze_and_replace


def wrong_parameters(ns):
    def train(model, train_loader, epochs=1, learn_rate=1e-3, device="cpu"):
        learned = [p for name, p in model.named_parameters() if name.startswith("classifier.0")]
        optimizer = torch.optim.Adam(learned or [torch.zeros(1, requires_grad=True)], lr=learn_rate)
        return ns["run_finetune_epochs"](model, train_loader, optimizer, epochs, device)
    return train


def no_training(ns):
    def train(model, train_loader, epochs=1, learn_rate=1e-3, device="cpu"):
        return [0.01]  # claims a low loss, trains nothing
    return train


def sgd_train(ns):
    def train(model, train_loader, epochs=1, learn_rate=1e-3, device="cpu"):
        head = model.classifier[4]
        optimizer = torch.optim.SGD(head.parameters(), lr=learn_rate * 20, momentum=0.9)
        return ns["run_finetune_epochs"](model, train_loader, optimizer, epochs, device)
    return train


def test_the_reference_passes(ref, stand_in_grader, tmp_path):
    outcome = learning_checks.finetune_learns(_evidence(dict(ref), tmp_path))
    assert outcome.status == "passed", outcome.message
    assert "the grader measures a loss of" in outcome.message


def test_another_correct_style_passes(ref, stand_in_grader, tmp_path):
    """SGD with momentum on classifier.4's own parameters, not the reference's Adam: it learns, so it passes."""
    outcome = learning_checks.finetune_learns(_evidence(_with(ref, train=sgd_train(ref)), tmp_path))
    assert outcome.status == "passed", outcome.message


@pytest.mark.parametrize("flaw, expected", [
    ("frozen_head", "requires a gradient"),
    ("wrong_parameters", "above the threshold"),
    ("no_training", "above the threshold"),
])
def test_a_fine_tuning_that_does_not_learn_fails(ref, stand_in_grader, tmp_path, flaw, expected):
    functions = {"frozen_head": {"freeze_and_replace": frozen_head(ref)},
                 "wrong_parameters": {"train": wrong_parameters(ref)},
                 "no_training": {"train": no_training(ref)}}[flaw]
    outcome = learning_checks.finetune_learns(_evidence(_with(ref, **functions), tmp_path))
    assert outcome.status == "failed" and expected in outcome.message, outcome.message


def _forge(how):
    def edit(facts, tensors):
        weight = tensors["final/weight"]
        if how == "nan":
            tensors["final/weight"] = torch.full_like(weight, float("nan"))
        elif how == "wrong shape":
            tensors["final/weight"] = torch.zeros(21, 256, 1, 1)
        elif how == "extra tensor":
            tensors["final/lookup"] = torch.zeros(1000)
        elif how == "missing":
            tensors = {k: v for k, v in tensors.items() if not k.startswith("final/")}
        elif how == "float64":
            tensors["final/weight"] = weight.double()
        elif how == "reported loss":
            facts = {**facts, "reported": [0.0]}
            tensors["final/weight"] = tensors["initial/weight"].clone()
            tensors["final/bias"] = tensors["initial/bias"].clone()
        return facts, tensors
    return edit


@pytest.mark.parametrize("how", ["nan", "wrong shape", "extra tensor", "missing", "float64", "reported loss"])
def test_forged_or_damaged_returns_earn_nothing(ref, stand_in_grader, tmp_path, how):
    """Whatever the worker sends in place of classifier.4 (or a loss it claims) earns nothing."""
    outcome = learning_checks.finetune_learns(_evidence(dict(ref), tmp_path, edit=_forge(how)))
    assert outcome.status == "failed", (how, outcome.message)


def test_a_worker_that_says_it_cannot_load_the_model_is_not_believed(ref, stand_in_grader, tmp_path):
    """The parent checked that weights and pictures are there; "unavailable" from a worker fails, not "not run"."""
    def edit(facts, tensors):
        return {"error": {"stage": "setup", "type": "unavailable"}}, {}
    outcome = learning_checks.finetune_learns(_evidence(dict(ref), tmp_path, edit=edit))
    assert outcome.status == "failed" and "could not set up" in outcome.message


def test_student_errors_are_sentences(ref, stand_in_grader, tmp_path):
    def broken_train(model, train_loader, epochs=1, learn_rate=1e-3, device="cpu"):
        raise ValueError("no optimizer yet")
    outcome = learning_checks.finetune_learns(_evidence(_with(ref, train=broken_train), tmp_path))
    assert outcome.status == "failed"
    assert "train(model, loader, epochs=1, learn_rate=0.03) raised ValueError: no optimizer yet" in outcome.message
    missing = {k: v for k, v in ref.items() if k != "freeze_and_replace"}
    outcome = learning_checks.finetune_learns(_evidence(missing, tmp_path))
    assert outcome.status == "failed" and "freeze_and_replace is not defined" in outcome.message


def test_not_run_without_a_calibrated_threshold(ref, stand_in_grader, monkeypatch, tmp_path):
    monkeypatch.setattr(learning_checks, "load_thresholds", lambda tier: {"finetune": None, "provenance": ""})
    outcome = learning_checks.finetune_learns(_evidence(dict(ref), tmp_path))
    assert outcome.status == "not run" and "not calibrated" in outcome.message


def test_the_probe_is_scheduled_only_where_the_weights_are():
    """On this machine (no pretrained weights, no trimaps) the grader never schedules Part C's training probe."""
    weights = grade.find_weights(TIERS["cpu"].finetune_arch)
    assert PROBE not in grade.available_probes(TIERS["cpu"], weights)
    assert PROBE not in grade.available_probes()


def test_recording_keeps_only_classifier_4(ref, tmp_path):
    """The worker returns classifier.4 before and after train, nothing of the rest of the model."""
    evidence = _evidence(dict(ref), tmp_path)
    keys = set(evidence.step(PROBE).tensors)
    assert keys == {"initial/weight", "initial/bias", "final/weight", "final/bias"}
    assert Recording(1).put("x", torch.zeros(1000)) is False  # and within its budget


@pytest.mark.slow
def test_a_submission_graded_through_the_sandbox(stand_in_grader, monkeypatch, tmp_path):
    """End to end: the sandboxed worker gets the pictures in its inputs folder, returns classifier.4, and the parent
    decides; a train() that trains nothing fails with the parent's loss, whatever it reports."""
    from tests.corpus import Example, build

    monkeypatch.setattr(grade, "select_tier", lambda requested=None: TIER)
    from autograder.config import GraderConfig

    config = GraderConfig(tier="cpu")
    reference = build(Example("reference", "the reference"), tmp_path / "reference.ipynb")
    lazy_train = ("def train(model, train_loader, epochs=1, learn_rate=1e-3, device=\"cpu\"):\n"
                  "    return [0.01]\n")
    lazy = build(Example("lazy", "train() trains nothing", {"finetune_train": lazy_train}), tmp_path / "lazy.ipynb")
    outcomes = {}
    for name, path in (("reference", reference), ("lazy", lazy)):
        report = grade.grade_notebook(path, config, parts=("learning",))
        outcomes[name] = {r.name: r for r in report.parts[0].results}["finetune_learns"]
    assert outcomes["reference"].status == "passed", outcomes["reference"].message
    assert outcomes["lazy"].status == "failed" and "above the threshold" in outcomes["lazy"].message
