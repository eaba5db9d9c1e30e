"""Training checks: tiers, calibration file, thresholds, and the verdicts on the reference and on weaker variants.

Tests marked ``slow`` train in the real cpu tier (the budget CI grades with), because they are about the calibrated
thresholds; the others use tiny budgets or recorded measurements.
"""
import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import learning_variants as lv
from autograder import calibrate, learning, tiers
from autograder.checks import learning as checks
from autograder.checks.base import Outcome
from autograder.checks.registry import check_named, checks_for
from autograder.reference import load_reference
from autograder.in_process import learning_graphs
from evidence import collect

CPU = tiers.TIERS["cpu"]
GPU = tiers.TIERS["gpu"]
TINY = dataclasses.replace(CPU, train_images=50, val_images=20, epochs=1, num_filters=4, batch_size=25)


@pytest.fixture(autouse=True)
def _grading_env(monkeypatch, request):
    """Grade in the cpu tier with the committed calibration, the data mirror and no download."""
    monkeypatch.setenv(tiers.TIER_ENV, "cpu")
    monkeypatch.delenv(calibrate.CALIBRATION_ENV, raising=False)
    monkeypatch.setenv("A2_OFFLINE", "1")


@pytest.fixture
def mirror_env(mirror_dir, monkeypatch):
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    return mirror_dir


@pytest.fixture
def generated_horses(monkeypatch):
    """Horses made up from a seed in the layout of the real ones (the grader's loop, determinism and failure
    messages do not depend on which pictures it trains on): these tests run without the data mirror."""
    from a2cnn.colour_data import ColourData

    generator = np.random.default_rng(0)
    palette = generator.random((24, 3), dtype=np.float32)

    def pictures(count):
        coarse = generator.random((count, 3, 8, 8), dtype=np.float32)
        rgb = np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)  # smooth enough to be learnable
        labels = ((rgb[:, None] - palette[None, :, :, None, None]) ** 2).sum(axis=2).argmin(axis=1)
        return rgb.mean(axis=1, keepdims=True), labels.astype(np.int64), rgb

    x_train, y_train, rgb_train = pictures(60)
    x_test, y_test, rgb_test = pictures(20)
    data = ColourData(x_train, y_train, x_test, y_test, palette, rgb_train, rgb_test, source="generated horses")
    monkeypatch.setattr(learning, "full_colour_data", lambda: data)
    return data


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.fixture(scope="module")
def cpu_record():
    return json.loads((calibrate.CALIBRATION_DIR / "cpu.json").read_text())


def _check(model, ns, tier=CPU):
    """Decide ``<model>_learns`` on what the worker's probe reports for ``ns`` (the grader trains the rebuilt model)."""
    probes = (checks.PROBE[model],) if model in checks.PROBE else ()
    outcome = check_named(f"{model}_learns").decide(collect(ns, probes, tier=tier))
    assert isinstance(outcome, Outcome)
    print(f"{model}_learns: {outcome.status}: {outcome.message}")
    return outcome


def _with(ref, **classes):
    return {**ref, **classes}


# ------------------------------------------------------------------------------------------------ tiers
def test_every_tier_field_has_a_default_and_a_description():
    for f in dataclasses.fields(tiers.Tier):
        assert f.default is not dataclasses.MISSING, f.name
        assert f.metadata.get("description"), f.name
    assert tiers.Tier() == CPU


def test_gpu_tier_uses_the_handout_settings_and_cpu_tier_is_smaller():
    assert (GPU.train_images, GPU.val_images, GPU.epochs, GPU.batch_size, GPU.num_filters, GPU.learn_rate) == \
        (5000, 1000, 25, 100, 32, 1e-3)
    assert (GPU.finetune_size, GPU.finetune_arch, GPU.device) == (224, "resnet101", "cuda")
    assert CPU.device == "cpu" and CPU.threads >= 1  # fixed thread count: results depend on it
    assert CPU.train_images * CPU.epochs < GPU.train_images * GPU.epochs
    assert CPU.time_budget_s <= 60
    for tier in (CPU, GPU):
        assert len(set(tier.calibration_seeds)) >= 5


def test_select_tier_rules(monkeypatch):
    monkeypatch.setattr(tiers, "cuda_available", lambda: False)
    assert tiers.select_tier("cpu") is CPU
    assert tiers.select_tier("auto") is CPU
    assert tiers.select_tier(" CPU ") is CPU
    with pytest.raises(tiers.TierError, match="needs a CUDA device"):
        tiers.select_tier("gpu")
    with pytest.raises(tiers.TierError, match="unknown tier"):
        tiers.select_tier("tpu")
    monkeypatch.setenv(tiers.TIER_ENV, "gpu")
    with pytest.raises(tiers.TierError, match="--tier cpu"):
        tiers.select_tier()
    monkeypatch.delenv(tiers.TIER_ENV)
    assert tiers.select_tier() is CPU  # default: auto
    monkeypatch.setattr(tiers, "cuda_available", lambda: True)
    assert tiers.select_tier() is GPU
    assert tiers.select_tier("gpu") is GPU
    assert tiers.select_tier("cpu") is CPU  # the cpu tier can still be asked for on a GPU machine


def test_an_uncalibrated_gpu_tier_is_not_run_not_failed_and_not_passed(ref, monkeypatch, tmp_path):
    monkeypatch.setenv(calibrate.CALIBRATION_ENV, str(tmp_path))  # a checkout without gpu.json
    monkeypatch.setattr(checks, "measure_graph", lambda *a, **k: pytest.fail("must not train"))
    outcome = _check("cnn", ref, tier=GPU)
    assert outcome.status == "not run" and not outcome.passed
    assert "gpu.json is missing" in outcome.message


# ------------------------------------------------------------------------------------- the rule, the file
def test_threshold_rule():
    stats = calibrate.threshold_from([2.0, 2.1, 2.2])
    assert stats["max"] == 2.2 and stats["std"] == pytest.approx(0.1)
    assert stats["threshold"] == pytest.approx(2.2 + 0.3)          # 3 std > 2 % of the mean
    stats = calibrate.threshold_from([2.0, 2.0, 2.0])
    assert stats["threshold"] == pytest.approx(2.0 * 1.02)           # no spread: the 2 % floor
    with pytest.raises(ValueError):
        calibrate.threshold_from([2.0])


def test_committed_cpu_calibration_has_its_provenance(cpu_record):
    record = cpu_record
    assert record["schema_version"] == calibrate.SCHEMA_VERSION and record["tier"] == "cpu"
    assert record["rule"] == calibrate.RULE
    assert len(record["seeds"]) >= 5 and len(set(record["seeds"])) == len(record["seeds"])
    assert CPU.grade_seed in record["seeds"]
    for key in ("torch_device", "cpu_model", "torch", "platform"):
        assert record["device"][key], key
    assert record["date"]
    assert "horse mirror" in record["data"] or "CIFAR" in record["data"]
    assert f"first {CPU.train_images} training / first {CPU.val_images} test" in record["data"]
    settings = dict(record["settings"])
    assert settings == CPU.settings(), "cpu tier changed since calibration: rerun `python -m autograder calibrate --tier cpu`"
    for name in ("cnn", "unet"):
        model = record["models"][name]
        losses = [run["val_loss"] for run in model["runs"]]
        assert [run["seed"] for run in model["runs"]] == record["seeds"]
        assert all(math.isfinite(v) for v in losses)
        # the threshold in the file is the documented rule applied to the recorded losses
        assert record["thresholds"][name] == pytest.approx(calibrate.threshold_from(losses)["threshold"], abs=1e-12)
        assert all(run["seconds"] > 0 for run in model["runs"])
    # Part C: calibrated, or its reason recorded (this machine: no pretrained weights, no trimaps)
    finetune = record["models"]["finetune"]
    assert (record["thresholds"]["finetune"] is None) == (not finetune["runs"])
    if record["thresholds"]["finetune"] is None:
        assert "not run" in finetune["not_run"] and ("weights" in finetune["not_run"] or "masks" in finetune["not_run"])
    assert record["determinism"]["bit_identical"] is True
    assert record["timing"]["within_budget"] is True
    assert record["timing"]["mean_training_seconds_per_submission"] < CPU.time_budget_s


def test_the_unet_calibration_is_clearly_below_the_cnn(cpu_record):
    """Otherwise 'the CNN graded as the UNet' could not fail."""
    thresholds = cpu_record["thresholds"]
    assert thresholds["unet"] < min(run["val_loss"] for run in cpu_record["models"]["cnn"]["runs"])


def test_no_model_that_ignores_its_input_can_pass(cpu_record, mirror_env):
    """The best possible input-ignoring predictor on the validation subset (its own per-pixel colour frequencies,
    an oracle no trained model can beat) has a loss far above both thresholds."""
    data = learning.tier_data(CPU)
    labels = data.y_test
    counts = np.stack([(labels == c).sum(axis=0) for c in range(24)]).astype(float)
    probs = counts / counts.sum(axis=0)
    oracle = -np.mean(np.log(np.take_along_axis(probs[None], labels[:, None], axis=1)))
    print(f"best input-ignoring loss {oracle:.4f}; thresholds {cpu_record['thresholds']}")
    assert cpu_record["thresholds"]["cnn"] < oracle - 0.3
    assert cpu_record["thresholds"]["unet"] < oracle - 0.3


def test_missing_and_stale_calibrations_are_refused(tmp_path, monkeypatch, ref):
    with pytest.raises(calibrate.CalibrationError, match="calibrate --tier cpu"):
        calibrate.load_thresholds(CPU, directory=tmp_path)
    record = json.loads((calibrate.CALIBRATION_DIR / "cpu.json").read_text())
    record["settings"]["epochs"] += 1
    (tmp_path / "cpu.json").write_text(json.dumps(record))
    with pytest.raises(calibrate.CalibrationError, match="stale.*epochs"):
        calibrate.load_thresholds(CPU, directory=tmp_path)
    # a check never passes without a usable calibration: it says why it did not run
    monkeypatch.setenv(calibrate.CALIBRATION_ENV, str(tmp_path))
    outcome = _check("unet", ref)
    assert outcome.status == "not run" and "stale" in outcome.message


def test_the_committed_gpu_calibration_is_the_handout_settings_on_a_gpu(mirror_env):
    """The gpu tier grades with a calibration made on a GPU at the handout's settings, from at least 5 seeds, on the
    data this checkout reads and the reference the master holds now."""
    record = calibrate.load_calibration(GPU)
    assert record["status"] == "calibrated" and len(record["seeds"]) >= calibrate.MIN_SEEDS
    assert record["device"]["torch_device"].startswith("cuda") and record["device"]["gpu_model"]
    assert record["settings"]["epochs"] == 25 and record["settings"]["batch_size"] == 100
    assert record["settings"]["train_images"] == 5000 and record["settings"]["num_filters"] == 32
    assert record["data_fingerprint"] == learning.data_fingerprint(learning.tier_data(GPU))
    assert record["reference_fingerprint"] == calibrate.reference_fingerprint()
    thresholds = calibrate.load_thresholds(GPU)
    for name in ("cnn", "unet"):
        losses = [run["val_loss"] for run in record["models"][name]["runs"]]
        assert max(losses) < thresholds[name] == pytest.approx(calibrate.threshold_from(losses)["threshold"])
    assert thresholds["finetune"] is None and "weights" in thresholds["finetune_reason"]


def test_thresholds_are_read_from_the_file(tmp_path, monkeypatch, ref, cpu_record, mirror_env):
    """Same measurement, edited copy of the calibration: the verdict follows the file."""
    recorded = next(run for run in cpu_record["models"]["cnn"]["runs"] if run["seed"] == CPU.grade_seed)
    monkeypatch.setattr(checks, "measure_graph", lambda *args, **kwargs: dict(recorded))
    assert _check("cnn", ref).passed
    edited = copy.deepcopy(cpu_record)
    edited["thresholds"]["cnn"] = recorded["val_loss"] - 0.001
    (tmp_path / "cpu.json").write_text(json.dumps(edited))
    monkeypatch.setenv(calibrate.CALIBRATION_ENV, str(tmp_path))
    outcome = _check("cnn", ref)
    assert outcome.status == "failed"
    assert f"{recorded['val_loss']:.4f}" in outcome.message and f"{edited['thresholds']['cnn']:.4f}" in outcome.message
    assert "tier cpu" in outcome.message


def test_thresholds_calibrated_on_other_images_are_not_used(tmp_path, monkeypatch, ref, cpu_record, mirror_env):
    """E.g. a calibration on the course mirror, graded against the official CIFAR-10 files: not run, not judged."""
    assert cpu_record["data_fingerprint"] == learning.data_fingerprint(learning.tier_data(CPU))
    monkeypatch.setattr(checks, "measure_graph", lambda *a, **k: pytest.fail("must not train"))
    edited = copy.deepcopy(cpu_record)
    edited["data_fingerprint"] = "0" * 16
    (tmp_path / "cpu.json").write_text(json.dumps(edited))
    monkeypatch.setenv(calibrate.CALIBRATION_ENV, str(tmp_path))
    outcome = _check("cnn", ref)
    assert outcome.status == "not run" and "calibrated on" in outcome.message


def test_learning_checks_are_declared_for_the_registry():
    assert [c.name for c in checks_for("learning")] == ["cnn_learns", "unet_learns", "finetune_learns"]
    for check in checks_for("learning"):
        assert check.points == 1.0 and check.title


# ------------------------------------------------------------------------------ measuring: guards, tiny
def test_reference_is_read_from_the_master_notebook(ref):
    for name in ("CNN", "UNet", "train", "freeze_and_replace"):
        assert callable(ref[name])
    out = ref["UNet"](3, 4, 24, 1)(torch.zeros(2, 1, 32, 32))
    assert tuple(out.shape) == (2, 24, 32, 32)


class _WrongShape(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        self.conv = nn.Conv2d(num_in_channels, num_colours, 3, padding=1)

    def forward(self, x):
        return self.conv(x)[:, :, ::2, ::2]


class _NaNAfterTraining(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        super().__init__()
        self.conv = nn.Conv2d(num_in_channels, num_colours, 3, padding=1)

    def forward(self, x):
        out = self.conv(x)
        return out * float("nan") if self.training else out


class _BadInit(nn.Module):
    def __init__(self, kernel, num_filters, num_colours, num_in_channels):
        raise TypeError("forgot something")


class _ForwardRaises(_WrongShape):
    def forward(self, x):
        return self.conv(x).view(-1, 7, 3)


@pytest.mark.parametrize("model_class, words", [
    (_WrongShape, "returned shape (2, 24, 16, 16)"),
    (_NaNAfterTraining, "NaN"),
    (_BadInit, "could not build"),
    (_ForwardRaises, "forward failed"),
])
def test_broken_models_fail_with_a_message_and_never_crash(model_class, words, generated_horses):
    outcome = learning.measure_colouriser(model_class, TINY, seed=0)
    assert isinstance(outcome, Outcome) and outcome.status == "failed", outcome
    assert words in outcome.message


def test_measurement_is_deterministic_and_uses_the_tier_subset(ref, generated_horses):
    first = learning.measure_colouriser(ref["CNN"], TINY, seed=3)
    again = learning.measure_colouriser(ref["CNN"], TINY, seed=3)
    other = learning.measure_colouriser(ref["CNN"], TINY, seed=4)
    assert (first["train_images"], first["val_images"], first["epochs"]) == (50, 20, 1)
    assert first["val_loss"] == again["val_loss"] and first["train_loss"] == again["train_loss"]
    assert first["val_loss"] != other["val_loss"]


@pytest.mark.parametrize("seed", [0, 5])
def test_the_rebuilt_reference_learns_exactly_as_the_reference_class(ref, generated_horses, seed):
    """The parent trains the graph it rebuilt from a worker's report, never the student's class. For the reference
    that graph is the class, bit for bit (same layers created in the same order, same dataflow), so thresholds
    calibrated on it grade what the reference does."""
    tier = dataclasses.replace(TINY, num_filters=8, epochs=2)
    graphs = learning_graphs(dict(ref), tier)
    for key, name in (("cnn", "CNN"), ("unet", "UNet")):
        rebuilt = learning.measure_graph(graphs[key], tier, seed)
        direct = learning.measure_colouriser(ref[name], tier, seed)
        assert rebuilt["val_loss_per_epoch"] == direct["val_loss_per_epoch"], name
        assert rebuilt["train_loss"] == direct["train_loss"], name


def test_a_rebuilt_graph_is_initialised_by_the_grader_not_by_the_submission(ref, generated_horses):
    """Whatever weights the student's constructor chose (pretrained ones, say), the parent's model starts from its
    own seeded initialisation: the reported tensors never reach training."""
    class Pretrained(ref["CNN"]):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.fill_(0.5)

    tier = dataclasses.replace(TINY, num_filters=8)
    honest = learning.measure_graph(learning_graphs(dict(ref), tier)["cnn"], tier, 2)
    tampered = learning.measure_graph(learning_graphs(_with(ref, CNN=Pretrained), tier)["cnn"], tier, 2)
    assert tampered["val_loss_per_epoch"] == honest["val_loss_per_epoch"]


def test_the_tier_thread_count_is_used_and_restored(ref, generated_horses, monkeypatch):
    seen = []
    real = learning.train_colourizer
    monkeypatch.setattr(learning, "train_colourizer", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    before = torch.get_num_threads()
    learning.measure_colouriser(ref["CNN"], dataclasses.replace(TINY, threads=1), seed=0)
    assert seen == [1] and torch.get_num_threads() == before


def test_calibrate_end_to_end_on_a_tiny_tier(tmp_path, mirror_env):
    out = tmp_path / "cpu.json"
    record = calibrate.calibrate(TINY, seeds=[0, 1], out=out, min_seeds=2, log=None)
    assert json.loads(out.read_text())["thresholds"] == record["thresholds"]
    assert record["determinism"]["bit_identical"] is True
    assert [r["seed"] for r in record["models"]["unet"]["runs"]] == [0, 1]
    with pytest.raises(ValueError, match="at least 5"):
        calibrate.calibrate(TINY, seeds=[0, 1], out=False)


def test_an_interrupted_calibration_resumes_and_equals_an_uninterrupted_one(tmp_path, mirror_env, monkeypatch):
    """The file is written after every seed; a rerun measures only the missing seeds, and the result is the one an
    uninterrupted run gives. A partial file never grades."""
    whole = calibrate.calibrate(TINY, seeds=[0, 1, 2], out=tmp_path / "whole.json", min_seeds=3, log=None)

    out = tmp_path / "cpu.json"
    real, measured = learning.measure_graph, []

    def stopped_during_the_second_seed(facts, tier, seed, **kwargs):
        if seed == 1 and kwargs.get("label") == "reference UNet":
            raise KeyboardInterrupt  # the session ended mid-seed
        measured.append(seed)
        return real(facts, tier, seed, **kwargs)

    monkeypatch.setattr(learning, "measure_graph", stopped_during_the_second_seed)
    with pytest.raises(KeyboardInterrupt):
        calibrate.calibrate(TINY, seeds=[0, 1, 2], out=out, min_seeds=3, log=None)
    partial = json.loads(out.read_text())
    assert partial["status"] == "partial" and partial["seeds"] == [0]
    assert partial["thresholds"]["cnn"] is None
    monkeypatch.setenv(calibrate.CALIBRATION_ENV, str(tmp_path))
    with pytest.raises(calibrate.CalibrationError, match="1 of the 3 seeds"):
        calibrate.load_thresholds(TINY)

    measured.clear()
    monkeypatch.setattr(learning, "measure_graph", lambda *a, **k: (measured.append(a[2]), real(*a, **k))[1])
    resumed = calibrate.calibrate(TINY, seeds=[0, 1, 2], out=out, min_seeds=3, log=None)
    # seed 0 kept; seed 1's CNN was measured before the stop but not the UNet: a seed counts only when complete,
    # so both colourisers of seeds 1 and 2 are measured, then the rerun of seed 0
    assert measured.count(0) == 2 and measured.count(1) == 2 and measured.count(2) == 2
    assert resumed["status"] == "calibrated" and resumed["seeds"] == [0, 1, 2]
    assert resumed["thresholds"] == whole["thresholds"]
    assert [r["val_loss"] for r in resumed["models"]["unet"]["runs"]] == \
        [r["val_loss"] for r in whole["models"]["unet"]["runs"]]
    assert calibrate.load_thresholds(TINY)["cnn"] == whole["thresholds"]["cnn"]

    # nothing left to measure: a third run measures nothing
    measured.clear()
    again = calibrate.calibrate(TINY, seeds=[0, 1, 2], out=out, min_seeds=3, log=None)
    assert measured == [] and again["thresholds"] == whole["thresholds"]


def test_verify_says_whether_this_machine_reproduces_the_calibrated_band(tmp_path, mirror_env):
    """--verify on a GPU runner: the reference trained here must land inside the committed band."""
    record = calibrate.calibrate(TINY, seeds=[0, 1], out=tmp_path / "cpu.json", min_seeds=2, log=None, rerun=False)
    outcome = calibrate.verify(TINY, seeds=[0], directory=tmp_path, log=None)
    assert outcome["ok"] and [r["model"] for r in outcome["runs"]] == ["cnn", "unet"]
    assert outcome["runs"][0]["val_loss"] == record["models"]["cnn"]["runs"][0]["val_loss"]

    elsewhere = copy.deepcopy(record)  # as if calibrated on a machine whose reference learns much better
    for model in elsewhere["models"].values():
        if model.get("threshold") is not None:
            model["min"], model["margin"] = model["min"] / 2, 0.01
            model["threshold"] = model["min"] + 0.05
    (tmp_path / "cpu.json").write_text(json.dumps(elsewhere))
    outcome = calibrate.verify(TINY, seeds=[0], directory=tmp_path, log=None)
    assert not outcome["ok"] and not any(run["inside"] for run in outcome["runs"])


def test_calibration_starts_over_when_what_it_measured_changed(tmp_path, mirror_env):
    """Seeds measured under other tier settings are never pooled with new ones."""
    out = tmp_path / "cpu.json"
    calibrate.calibrate(TINY, seeds=[0, 1], out=out, min_seeds=2, log=None, rerun=False)
    other = dataclasses.replace(TINY, learn_rate=2e-3)
    logged = []
    record = calibrate.calibrate(other, seeds=[0, 1], out=out, min_seeds=2, log=logged.append, rerun=False)
    assert any("starting over" in line and "other tier settings" in line for line in logged)
    assert record["settings"]["learn_rate"] == 2e-3 and record["seeds"] == [0, 1]


# ----------------------------------------------------------------------------------------------- Part C
def test_finetune_is_not_run_without_pretrained_weights(tmp_path, monkeypatch, ref, mirror_env):
    """This machine has no COCO weights (and no trimaps): the check says so and never passes."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    outcome = _check("finetune", dict(ref))
    assert outcome.status == "not run" and not outcome.passed
    assert "weights" in outcome.message
    direct = learning.measure_finetune(dict(ref), CPU, seed=0)
    assert isinstance(direct, Outcome) and direct.status == "not run"
    assert "no pretrained DeepLabV3 weights" in direct.message


def _stand_in_finetune(monkeypatch):
    """Part C mechanics without the real files: a RANDOM MobileNetV3 DeepLabV3 flagged as pretrained and
    synthetic ellipse masks. This checks the plumbing only; it calibrates nothing real."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    from a2cnn.deeplab import LoadInfo
    from a2cnn.oxford17 import synthetic_demo_mask

    def fake_load(prefer="resnet101", **kwargs):
        torch.manual_seed(0)
        model = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).eval()
        return model, LoadInfo(True, learning.architecture_name(tier), "stand-in", None, "random stand-in (test)")

    def fake_data(tier):
        generator = torch.Generator().manual_seed(0)
        masks = torch.stack([torch.from_numpy(synthetic_demo_mask(64, 64, i).astype(np.int64)) for i in range(8)])
        images = torch.randn(8, 3, 64, 64, generator=generator) + 2.0 * masks[:, None].float()
        return images, masks

    tier = dataclasses.replace(CPU, finetune_size=64, finetune_learn_rate=5e-2, finetune_steps=12)
    monkeypatch.setattr(learning, "load_deeplabv3", fake_load)
    monkeypatch.setattr(learning, "finetune_data", fake_data)
    return tier


def _frozen_head(ns):
    def freeze_and_replace(model):
        model = ns["freeze_and_replace"](model)
        return model.requires_grad_(False)  # the new classifier is frozen too
    return {**ns, "freeze_and_replace": freeze_and_replace}


def _wrong_parameters(ns):
    def train(model, train_loader, epochs=1, learn_rate=1e-3, device="cpu"):
        learned = [p for name, p in model.named_parameters() if name.startswith("classifier.0")]
        optimizer = torch.optim.Adam(learned or [torch.zeros(1, requires_grad=True)], lr=learn_rate)
        return ns["run_finetune_epochs"](model, train_loader, optimizer, epochs, device)
    return {**ns, "train": train}


def test_finetune_mechanics_with_a_stand_in_model(monkeypatch, ref):
    tier = _stand_in_finetune(monkeypatch)
    runs = [learning.measure_finetune(dict(ref), tier, seed) for seed in (0, 1, 2)]
    for run in runs:
        assert isinstance(run, dict), run
        assert run["loss"] < run["initial_loss"] and len(run["reported_losses"]) == 1
    threshold = calibrate.threshold_from([r["loss"] for r in runs])["threshold"]
    assert runs[0]["loss"] <= threshold
    frozen = learning.measure_finetune(_frozen_head(ref), tier, 0)
    assert isinstance(frozen, Outcome) and frozen.status == "failed"
    assert "requires a gradient" in frozen.message
    wrong = learning.measure_finetune(_wrong_parameters(ref), tier, 0)
    assert isinstance(wrong, dict) and wrong["loss"] == pytest.approx(wrong["initial_loss"])
    print(f"stand-in: reference {[round(r['loss'], 4) for r in runs]}, threshold {threshold:.4f}, "
          f"wrong parameters {wrong['loss']:.4f}")
    # the threshold rejects it: its loss is the untrained head's
    assert wrong["loss"] > threshold


# ------------------------------------------------------------------ the real cpu tier: calibrated verdicts
@pytest.mark.slow
@pytest.mark.mirror
def test_reference_passes_its_own_calibration(ref, cpu_record, monkeypatch, mirror_env):
    measured = {}
    real = learning.measure_graph

    def recording(facts, tier, seed, **kwargs):
        measured[kwargs.get("label")] = result = real(facts, tier, seed, **kwargs)
        return result

    monkeypatch.setattr(checks, "measure_graph", recording)
    for label, key in (("CNN", "cnn"), ("UNet", "unet")):
        outcome = _check(key, ref)
        assert outcome.passed and outcome.status == "passed"
        recorded = next(r for r in cpu_record["models"][key]["runs"] if r["seed"] == CPU.grade_seed)
        # same run as in the calibration: identical on the calibration machine, close anywhere else
        assert measured[label]["val_loss"] == pytest.approx(recorded["val_loss"], abs=0.02)
    # the tier's time budget is judged on the calibration's own timing (an idle machine), not on this run's clock
    assert cpu_record["timing"]["within_budget"] is True
    assert cpu_record["timing"]["mean_training_seconds_per_submission"] <= CPU.time_budget_s


@pytest.mark.slow
@pytest.mark.mirror
def test_reference_passes_with_a_seed_it_was_not_calibrated_on(ref, cpu_record, mirror_env):
    seed = 1000
    assert seed not in cpu_record["seeds"]
    thresholds = calibrate.load_thresholds(CPU)
    graphs = learning_graphs(dict(ref), CPU)
    for name, key in (("CNN", "cnn"), ("UNet", "unet")):
        result = learning.measure_graph(graphs[key], CPU, seed)
        print(f"{name} seed {seed}: {result['val_loss']:.4f} (threshold {thresholds[key]:.4f})")
        assert result["val_loss"] <= thresholds[key]


# A model the grader cannot rebuild from its six groups (its output is not finalconv's, or it has parameters
# outside the groups) is not trained at all; that fails the check too, with its own message.
NOT_REBUILT = "could not rebuild"


def _assert_falls_short(outcome, words=("above the threshold", NOT_REBUILT)):
    assert outcome.status == "failed" and not outcome.passed
    assert any(w in outcome.message for w in words), outcome.message


@pytest.mark.slow
@pytest.mark.mirror
def test_the_cnn_submitted_as_the_unet_falls_short(ref, mirror_env):
    _assert_falls_short(_check("unet", _with(ref, UNet=ref["CNN"])))


@pytest.mark.slow
@pytest.mark.mirror
@pytest.mark.parametrize("name", ["CNN", "UNet"])
def test_models_without_batchnorm_fall_short(name, ref, mirror_env):
    _assert_falls_short(_check(name.lower(), _with(ref, **{name: lv.without_batchnorm(ref, name)})))


@pytest.mark.slow
@pytest.mark.mirror
def test_a_model_that_ignores_its_input_falls_short(ref, mirror_env):
    _assert_falls_short(_check("cnn", _with(ref, CNN=lv.ConstantMap)))


@pytest.mark.slow
@pytest.mark.mirror
def test_probabilities_instead_of_logits_fall_short(ref, mirror_env):
    """softmax in forward: cross-entropy then treats probabilities as logits (a wrong learning target)."""
    _assert_falls_short(_check("unet", _with(ref, UNet=lv.softmax_output(ref["UNet"]))))


@pytest.mark.slow
@pytest.mark.mirror
def test_a_transposed_output_falls_short(ref, mirror_env):
    """Colours predicted for the transposed picture: a wrong learning target the loss cannot fully fit."""
    _assert_falls_short(_check("cnn", _with(ref, CNN=lv.transposed_output(ref["CNN"]))))


@pytest.mark.slow
@pytest.mark.mirror
def test_a_fixed_permutation_of_the_colour_channels_is_refused_with_its_reason(ref, mirror_env):
    """The grader trains only the handout's graph (the output is finalconv's output): a model that permutes the
    channels after finalconv is not trained, and the message says the graph could not be traced (a structure
    problem the UNet checks report as well), rather than blaming the model's learning."""
    outcome = _check("unet", _with(ref, UNet=lv.permuted_channels(ref["UNet"])))
    assert not outcome.passed and NOT_REBUILT in outcome.message and "traced" in outcome.message

# ---- the UNet trained in a second grader process (training_processes = 2) while the CNN trains in this one
def _background_evidence(tier):
    import types

    return types.SimpleNamespace(tier=tier, background={})


def test_the_unet_trained_in_a_second_process_gives_the_figures_of_training_here(ref, generated_horses, monkeypatch):
    tier = dataclasses.replace(TINY, num_filters=8, epochs=2)
    facts = learning_graphs(dict(ref), tier)["unet"]
    data = learning.tier_data(tier)
    evidence = _background_evidence(tier)
    monkeypatch.setattr(checks, "_training_inputs", lambda _evidence, _model: (facts, data, {}))
    with checks.training_helper(2) as helper, checks.training_in_background(evidence, helper):
        inputs, future = evidence.background["unet"]
        here = learning.measure_graph(facts, tier, tier.grade_seed, data=data, label="UNet")
        there = checks._measure(evidence, "unet", facts, data, evidence.background.pop("unet")[1])
    assert inputs == (facts, data, {})  # looked up once, for the background and the check alike
    assert future.done() and future.exception() is None  # measured there, not here after a failure
    assert there == {**here, "seconds": there["seconds"]}
    assert evidence.background == {}


def test_one_training_process_or_nothing_to_train_starts_nothing(monkeypatch):
    evidence = _background_evidence(TINY)
    monkeypatch.setattr(checks, "_training_inputs", lambda _evidence, _model: pytest.fail("asked with 1 process"))
    with checks.training_helper(1) as helper, checks.training_in_background(evidence, helper):
        assert helper is None and evidence.background == {}
    monkeypatch.setattr(checks, "_training_inputs", lambda _evidence, _model: checks.failed("no UNet"))
    with checks.training_helper(2) as helper, checks.training_in_background(evidence, helper):
        assert helper is not None and evidence.background == {}


def test_a_second_process_that_dies_leaves_the_measurement_to_this_one(monkeypatch):
    import concurrent.futures

    dead = concurrent.futures.Future()
    dead.set_exception(concurrent.futures.process.BrokenProcessPool("killed"))
    evidence = _background_evidence(TINY)
    monkeypatch.setattr(checks, "measure_graph", lambda facts, tier, seed, data, label: {"measured": "here"})
    assert checks._measure(evidence, "unet", "facts", "data", dead) == {"measured": "here"}


def test_the_unets_check_takes_the_inputs_and_the_measurement_started_in_the_background(monkeypatch):
    import concurrent.futures

    measured = concurrent.futures.Future()
    measured.set_result({"val_loss": 1.5, "epochs": 4, "train_images": 1000, "val_images": 200,
                         "val_accuracy": 0.4})
    evidence = _background_evidence(TINY)
    evidence.background["unet"] = (("facts", "data", {"unet": 1.6, "provenance": "test"}), measured)
    monkeypatch.setattr(checks, "_training_inputs", lambda *_args: pytest.fail("looked up a second time"))
    monkeypatch.setattr(checks, "measure_graph", lambda *_args, **_kwargs: pytest.fail("trained a second time"))
    outcome = checks.colouriser_learns("unet")(evidence)
    assert outcome.status == "passed" and "1.5000" in outcome.message and "threshold 1.6000" in outcome.message
    assert evidence.background == {}
