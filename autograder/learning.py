"""(Parent side and calibration; never in a worker.) How much a model learns under the grader's own training.

The same code measures the reference (calibration) and a submission (grading), in every tier; only the budget
(:class:`autograder.tiers.Tier`) differs.

Parts A/B, :func:`measure_colouriser`: build ``model_class(kernel=3, num_filters=tier.num_filters, num_colours=24,
num_in_channels=1)`` after seeding, train it with the course's loop :func:`a2cnn.training.train_colourizer` (Adam,
per-pixel cross-entropy, the grader's data, order and seed, deterministic kernels, a fixed number of torch threads)
on the first ``tier.train_images`` training horses, and report the mean per-pixel cross-entropy on the first
``tier.val_images`` test horses after the last epoch. The loop calls the model only through ``model(x)``: the
submission cannot choose the optimizer, the learning rate, the data, the number of epochs or the loss it is graded
on.

Part C, :func:`measure_finetune`: with the COCO-pretrained DeepLabV3 of the mirror (``TORCH_HOME``) and the official
Oxford-17 masks, run the student's ``freeze_and_replace`` and then the student's ``train`` for
``tier.finetune_steps`` optimizer steps, and measure the loss on those training pictures with the grader's own
evaluation (the losses ``train`` returns are reported, never trusted). Without pretrained weights or masks the
measurement is *not run*, with the reason: a random backbone or made-up masks would grade nothing.

Both functions return a ``dict`` of numbers, or an :class:`~autograder.checks.base.Outcome` (failed, or not run)
when there is nothing to compare: a model that cannot be built, returns the wrong shape or a non-finite loss fails
with a message; it never crashes the caller.
"""
import contextlib
import dataclasses
import hashlib
import io
import math
import os
import time
import traceback

import numpy as np
import torch
import torch.nn as nn

from .checks.base import failed, not_run
from .reference import ensure_helper_on_path
from .worker.finetune_learning_probe import INPUTS_FILE, STAND_IN, batch_order, build_model, run_student
from .worker.recording import Recording

ensure_helper_on_path()
from a2cnn import oxford17  # noqa: E402  (the pristine helper package, put on sys.path just above)
from a2cnn.colour_data import load_colour_data  # noqa: E402
from a2cnn.deeplab import ARCHITECTURES, load_deeplabv3  # noqa: E402
from a2cnn.download import DataUnavailableError  # noqa: E402
from a2cnn.finetune import evaluate as evaluate_segmentation  # noqa: E402
from a2cnn.finetune import run_finetune_epochs  # noqa: E402
from a2cnn.training import TrainConfig, seed_everything, train_colourizer  # noqa: E402

NUM_COLOURS = 24
KERNEL = 3
IN_CHANNELS = 1
_FULL_DATA = {}


# ------------------------------------------------------------------------------------------------ helpers
def short_error(exc, limit=300):
    """``Type: message (where)`` of an exception raised by student code, kept short for feedback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<")]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    text = " ".join((str(exc).strip() or type(exc).__name__).split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(exc).__name__}: {text}{where}"


@contextlib.contextmanager
def torch_threads(count):
    """Run with ``count`` torch CPU threads (0: leave as is); restore the previous number afterwards."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def offline():
    """The grader never downloads during a check: A2_OFFLINE=1 for the duration."""
    previous = os.environ.get("A2_OFFLINE")
    os.environ["A2_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("A2_OFFLINE", None)
        else:
            os.environ["A2_OFFLINE"] = previous


def _prepare_device(device):
    device = torch.device(device)
    if device.type == "cuda":
        # cuBLAS is only deterministic with a fixed workspace; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return device


# ------------------------------------------------------------------------------------------- Parts A and B
def full_colour_data():
    """All horses (never the fast-mode subset), loaded once per process and data folder."""
    key = os.environ.get("A2_DATA_DIR", "")
    if key not in _FULL_DATA:
        _FULL_DATA[key] = load_colour_data(fast=False)
    return _FULL_DATA[key]


def tier_data(tier, data=None):
    """The tier's subset of ``data`` (default: all horses): the first N training and first M test horses."""
    data = full_colour_data() if data is None else data
    n, m = tier.train_images, tier.val_images
    return dataclasses.replace(
        data, x_train=data.x_train[:n], y_train=data.y_train[:n], x_test=data.x_test[:m], y_test=data.y_test[:m],
        rgb_train=data.rgb_train[:n], rgb_test=data.rgb_test[:m])


def data_fingerprint(data):
    """SHA-256 (first 16 hex digits) of the exact inputs and labels a tier trains and validates on.

    Recorded by calibration and compared before grading: thresholds calibrated on other pixels (the course mirror
    against the official CIFAR-10 files, another palette, another subset) would not mean anything.
    """
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def describe_data(data):
    return f"{data.source or 'CIFAR-10 horses'}; first {len(data.x_train)} training / first {len(data.x_test)} test horses"


def _probe(model, data, device, label):
    """Shape and finiteness of ``model`` on two validation pictures (eval mode, no gradient); None when fine."""
    x = torch.as_tensor(data.x_test[:2], dtype=torch.float32, device=device)
    expected = (len(x), NUM_COLOURS) + tuple(x.shape[2:])
    try:
        model.eval()
        with torch.no_grad():
            out = model(x)
    except Exception as exc:
        return f"{label}.forward failed on a batch of shape {tuple(x.shape)}: {short_error(exc)}"
    if not isinstance(out, torch.Tensor):
        return f"{label}.forward returned {type(out).__name__}, not a tensor of logits of shape {expected}"
    if tuple(out.shape) != expected:
        return (f"{label}.forward returned shape {tuple(out.shape)} for an input of shape {tuple(x.shape)}; "
                f"expected {expected} (batch, colours, height, width)")
    if not out.is_floating_point():
        return f"{label}.forward returned {out.dtype} values; logits must be floating point"
    if not torch.isfinite(out).all():
        return f"{label}.forward returned NaN or infinite values before any training"
    return None


def measure_colouriser(model_class, tier, seed, data=None, device=None, label=None):
    """Train ``model_class`` with the grader's loop in ``tier`` and ``seed``; dict of losses, or a failed Outcome.

    dict keys: ``val_loss`` (compared with the threshold), ``train_loss`` (last epoch), ``val_accuracy``,
    ``seconds`` (training and validation), ``train_images``, ``val_images``, ``epochs``, ``seed``.
    ``data``: a ColourData to take the subset from (default: all horses of the data mirror / download).
    """
    label = label or getattr(model_class, "__name__", "model")
    data = tier_data(tier, data)
    device = _prepare_device(device or tier.device)
    config = TrainConfig(learn_rate=tier.learn_rate, batch_size=tier.batch_size, epochs=tier.epochs, seed=seed,
                         kernel=KERNEL, num_filters=tier.num_filters, deterministic=True)
    with torch_threads(tier.threads):
        seed_everything(seed, deterministic=True)
        signature = (f"{label}(kernel={KERNEL}, num_filters={tier.num_filters}, num_colours={NUM_COLOURS}, "
                     f"num_in_channels={IN_CHANNELS})")
        try:
            model = model_class(kernel=KERNEL, num_filters=tier.num_filters, num_colours=NUM_COLOURS,
                                num_in_channels=IN_CHANNELS)
        except Exception as exc:
            return failed(f"could not build {signature}: {short_error(exc)}")
        if not isinstance(model, nn.Module):
            return failed(f"{signature} is a {type(model).__name__}, not a torch.nn.Module")
        try:
            model = model.to(device)
        except Exception as exc:
            return failed(f"could not move {label} to {device}: {short_error(exc)}")
        problem = _probe(model, data, device, label)
        if problem:
            return failed(problem)
        started = time.perf_counter()
        try:
            history = train_colourizer(model, data, config, device=device, progress=False, log=None, cache=False)
        except Exception as exc:
            return failed(f"training {label} with the grader's loop failed: {short_error(exc)}")
        seconds = time.perf_counter() - started
    if not history.val_loss:
        return failed(f"training {label} ran no epoch")
    losses = (history.train_loss[-1], history.val_loss[-1])
    if not all(math.isfinite(v) for v in losses):
        return failed(f"{label}'s loss became NaN or infinite during training "
                      f"(last training loss {losses[0]}, validation loss {losses[1]})")
    return {
        "seed": int(seed),
        "val_loss": float(history.val_loss[-1]),
        "train_loss": float(history.train_loss[-1]),
        "val_accuracy": float(history.val_accuracy[-1]),
        "val_loss_per_epoch": [float(v) for v in history.val_loss],
        "seconds": round(seconds, 3),
        "train_images": len(data.x_train),
        "val_images": len(data.x_test),
        "epochs": tier.epochs,
    }


def measure_graph(facts, tier, seed, data=None, device=None, label="model"):
    """:func:`measure_colouriser` of the model the parent rebuilds from verified ``facts`` (a
    :class:`~autograder.verify.colouriser.ConfigFacts`): its own layer classes, wired as verified, initialised
    under ``seed``. Grading (a submission's facts) and calibration (the reference's) both measure this way."""
    from .verify.colouriser import GraphModel  # the verifier imports the worker's vocabulary: only when needed

    return measure_colouriser(lambda **_kwargs: GraphModel(facts), tier, seed, data=data, device=device,
                              label=label)


# ------------------------------------------------------------------------------------------------- Part C
def architecture_name(tier):
    """Display name (as in LoadInfo.architecture) of the tier's DeepLabV3 backbone."""
    if tier.finetune_arch == STAND_IN:
        return "a small stand-in DeepLabV3 (the grader's own tests)"
    return ARCHITECTURES[tier.finetune_arch][2]


def finetune_error_text(error, tier) -> str:
    """What went wrong in the student's Part C functions, from a worker's (untrusted) error facts: one sentence."""
    from .feedback import error_excerpt, identifier

    error = error if isinstance(error, dict) else {}
    kind, stage = error.get("type"), error.get("stage")
    call = ("freeze_and_replace(model)" if stage == "prepare" else
            f"train(model, loader, epochs=1, learn_rate={tier.finetune_learn_rate:g})")
    if stage == "lookup":
        name = "train" if error.get("name") == "train" else "freeze_and_replace"
        return f"{name} is not defined as a function"
    if kind == "not_a_module":
        return f"freeze_and_replace returned a {identifier(error.get('found'))}, not the model"
    if kind == "no_head":
        return f"the model has no classifier[4] after {call.split('(')[0]}"
    if kind == "StepTimeout":
        return f"{call} did not finish within its time limit"
    return f"{call} raised {error_excerpt(error)}"


def finetune_unavailable(tier):
    """Why the Part C measurement cannot run here (no official masks, no cached pretrained weights), or None.

    Cheap: looks for files only, loads no model and downloads nothing. Every missing piece is named.
    """
    from a2cnn.deeplab import checkpoint_path, hash_matches

    reasons = []
    with offline():
        try:
            oxford17.locate_images(download=False)
            oxford17.locate_trimaps(download=False)
            oxford17.locate_splits(download=False)
        except DataUnavailableError as exc:
            reasons.append(f"the official Oxford-17 masks are not available: {exc}")
    if tier.finetune_arch == STAND_IN:
        return "; ".join(reasons) or None
    path = checkpoint_path(tier.finetune_arch)
    if not path.is_file():
        reasons.append(f"no pretrained {architecture_name(tier)} (COCO) weights: {path} is absent "
                       "(set TORCH_HOME to the mirror holding hub/checkpoints)")
    elif not hash_matches(path):
        reasons.append(f"the cached {path.name} does not match the SHA-256 prefix in its name")
    return "; ".join(reasons) or None


def finetune_data(tier):
    """``(images, masks)`` tensors of the first ``tier.finetune_images`` official training pictures.

    Raises DataUnavailableError (or MissingOfficialDataError) when the photos, trimaps or split are absent; never
    downloads and never uses synthetic masks.
    """
    with offline():
        oxford17.locate_images(download=False)
        oxford17.locate_trimaps(download=False)
        oxford17.locate_splits(download=False)
        dataset = oxford17.FlowerSegmentation("train", size=tier.finetune_size, mask_source="official",
                                              limit=tier.finetune_images)
        items = [dataset[i] for i in range(len(dataset))]
    if not items:
        raise DataUnavailableError("the official Oxford-17 training split has no picture with a trimap")
    return torch.stack([image for image, _ in items]), torch.stack([mask for _, mask in items])


def finetune_probe_args(tier, seed, count, inputs_dir) -> dict:
    """What the worker's Part C probe is given (``worker/finetune_learning_probe.py``): the backbone, the batches
    (indices into the ``count`` pictures of the inputs file), the learning rate and the seed."""
    return {"arch": tier.finetune_arch, "seed": int(seed), "learn_rate": tier.finetune_learn_rate,
            "order": batch_order(count, tier.finetune_batch_size, tier.finetune_steps, seed), "device": "cpu",
            "inputs": inputs_dir}


def write_finetune_inputs(folder, images, masks) -> None:
    """The training pictures for the worker, in a file that loads without running code."""
    import safetensors.torch

    safetensors.torch.save_file({"images": images.contiguous(), "masks": masks.contiguous()},
                                os.path.join(folder, INPUTS_FILE))


def finetune_model(tier):
    """(Parent) A pristine pretrained DeepLabV3 of the tier, in eval mode, loaded without running any student code;
    an Outcome (not run) when its weights are not here."""
    if tier.finetune_arch == STAND_IN:
        return build_model(STAND_IN)
    with offline():
        model, info = load_deeplabv3(prefer=tier.finetune_arch)
    if not info.pretrained or info.architecture != architecture_name(tier):
        return not_run(f"Part C cannot be measured meaningfully here, so it is not graded: no pretrained "
                       f"{architecture_name(tier)} weights ({info.reason})")
    return model.eval()


def returned_head(tensors: dict, prefix: str):
    """``classifier.4`` as a worker returned it under ``prefix/``: a Conv2d(256, 2, 1) with finite values, or a
    student-visible problem (str)."""
    weight, bias = tensors.get(f"{prefix}/weight"), tensors.get(f"{prefix}/bias")
    keys = {k for k in tensors if k.startswith(prefix + "/")}
    if weight is None or keys - {f"{prefix}/weight", f"{prefix}/bias"}:
        return "classifier.4 is not a single convolution (expected Conv2d(256, 2, kernel_size=1))"
    if tuple(weight.shape) != (2, 256, 1, 1) or (bias is not None and tuple(bias.shape) != (2,)):
        return f"classifier.4 has weights of shape {tuple(weight.shape)}, not those of Conv2d(256, 2, kernel_size=1)"
    if weight.dtype != torch.float32 or not torch.isfinite(weight).all() or (
            bias is not None and (bias.dtype != torch.float32 or not torch.isfinite(bias).all())):
        return "classifier.4 holds values that are not finite float32 numbers"
    head = nn.Conv2d(256, 2, kernel_size=1, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(weight)
        if bias is not None:
            head.bias.copy_(bias)
    return head


def head_loss(model, head, images, masks, tier, device):
    """(Parent) The grader's per-pixel cross-entropy of ``model`` with ``head`` as classifier.4 on the pictures."""
    model.classifier[4] = head.to(device)
    batches = [(images[i: i + tier.finetune_batch_size], masks[i: i + tier.finetune_batch_size])
               for i in range(0, len(images), tier.finetune_batch_size)]
    return float(evaluate_segmentation(model, batches, device)["loss"])


def judge_finetune(tensors, facts, tier, model, images, masks, device=None):
    """(Parent) From what the worker returned, the loss of its classifier.4 before and after ``train`` on the
    parent's own model and pictures; dict, or Outcome (failed) when the returned head is not usable."""
    device = _prepare_device(device or tier.device)
    heads = {}
    for when in ("initial", "final"):
        head = returned_head(tensors, when)
        if isinstance(head, str):
            stage = "after freeze_and_replace" if when == "initial" else "after train"
            return failed(f"{head} ({stage})")
        heads[when] = head
    with torch_threads(tier.threads), torch.no_grad():
        model.to(device)
        initial = head_loss(model, heads["initial"], images, masks, tier, device)
        loss = head_loss(model, heads["final"], images, masks, tier, device)
    if not math.isfinite(loss):
        return failed(f"the fine-tuning loss became NaN or infinite (initial loss {initial:.4f})")
    reported = facts.get("reported")
    return {"loss": loss, "initial_loss": initial,
            "reported_losses": reported if isinstance(reported, list) else None,
            "images": len(images), "steps": tier.finetune_steps}


def measure_finetune(ns, tier, seed, device=None):
    """Run ``freeze_and_replace`` and ``train`` of ``ns`` (trusted code: the reference, for calibration) exactly as
    a worker runs a submission's, then measure the returned classifier.4 exactly as grading does; dict or Outcome.

    Not run (with the reason) without the official masks or without pretrained weights of the tier's backbone.
    dict keys: ``loss`` (the grader's mean per-pixel cross-entropy on the training pictures after the steps,
    compared with the threshold), ``initial_loss`` (same, with classifier.4 as ``freeze_and_replace`` made it),
    ``reported_losses`` (what ``train`` returned), ``seconds``, ``architecture``, ``images``, ``steps``.
    """
    # The notebook imports run_finetune_epochs in a locked cell before the answer cells; the grader's copy.
    ns.setdefault("run_finetune_epochs", run_finetune_epochs)
    reasons, images, masks = [], None, None
    try:
        images, masks = finetune_data(tier)
    except DataUnavailableError as exc:
        reasons.append(f"the official Oxford-17 masks are not available: {exc}")
    student_model, judge_model = finetune_model(tier), finetune_model(tier)
    if not isinstance(student_model, nn.Module):
        reasons.append(student_model.message)
    if reasons:
        return not_run("Part C cannot be measured meaningfully here, so it is not graded: " + "; ".join(reasons))
    recording = Recording(2**20)
    args = finetune_probe_args(tier, seed, len(images), "")
    with torch_threads(tier.threads):
        seed_everything(seed, deterministic=True)
        started = time.perf_counter()
        facts = run_student(ns, student_model, images, masks, args, recording, limit=3600.0)
        seconds = time.perf_counter() - started
    if "error" in facts:
        return failed(finetune_error_text(facts["error"], tier))
    result = judge_finetune(recording.tensors, facts, tier, judge_model, images, masks, device)
    if isinstance(result, dict):
        result.update(seed=int(seed), seconds=round(seconds, 3), architecture=architecture_name(tier))
    return result
