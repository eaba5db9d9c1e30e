"""Part C's training check, the part that runs student code: the student's ``freeze_and_replace`` and then ``train``
on the tier's COCO-pretrained DeepLabV3 (its checkpoint is mounted read-only for the worker) and on the training
pictures the parent wrote to the inputs folder, in an order drawn from the parent's seed.

What it records is data: ``classifier.4`` as ``freeze_and_replace`` left it (``initial/``) and as ``train`` left it
(``final/``), and the losses ``train`` returned (reported, never believed). The parent puts the returned
``classifier.4`` on its own copy of the pretrained model and measures the loss on its own copy of the pictures
(``autograder/learning.py``), so nothing computed here is trusted.

Calibration runs :func:`run_student` in the parent on the reference solution, so the reference and a submission
are measured the same way.
"""
import contextlib
import io
import random

import torch
import torch.nn as nn

from . import tiny_deeplab
from .cells import StepTimeout, error_facts, time_limit
from .recording import Recording

INPUTS_FILE = "finetune.safetensors"   # in the inputs folder: "images" (N, 3, S, S) float32, "masks" (N, S, S) int64
STAND_IN = "stand-in"                  # a tiny_deeplab model instead of a pretrained one (the grader's own tests)
STAND_IN_SEED = 0
HEAD = ("classifier", "4")
MAX_REPORTED = 64
_Module, _isinstance, _getattr = nn.Module, isinstance, getattr


def batch_order(count: int, batch_size: int, steps: int, seed: int) -> list:
    """``steps`` lists of ``batch_size`` picture indices out of ``count``, reshuffled on every pass."""
    generator = torch.Generator().manual_seed(int(seed))
    batches, order = [], []
    while len(batches) < steps:
        if len(order) < batch_size:
            order = order + torch.randperm(count, generator=generator).tolist()
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def build_model(arch: str):
    """The model the student's code is given: the pretrained DeepLabV3 of ``arch`` in eval mode, or None when its
    weights cannot be loaded here (the parent then reports the check as not run: a grader fault)."""
    if arch == STAND_IN:
        return tiny_deeplab.build(STAND_IN_SEED)
    from a2cnn.deeplab import ARCHITECTURES, load_deeplabv3

    model, info = load_deeplabv3(prefer=arch)
    if not info.pretrained or info.architecture != ARCHITECTURES[arch][2]:
        return None
    return model.eval()


def _head(model):
    for name in HEAD:
        model = dict(_getattr(model, "_modules", None) or {}).get(name)
        if model is None:
            return None
    return model if _isinstance(model, _Module) else None


def _floats(values) -> list | None:
    try:
        return [float(v) for v in list(values)[:MAX_REPORTED]]
    except Exception:  # noqa: BLE001 - whatever train() returned; it is only reported
        return None


def run_student(ns: dict, model, images, masks, args: dict, recording: Recording, limit: float) -> dict:
    """``freeze_and_replace(model)``, then ``train`` for one epoch of ``args["order"]`` batches; facts, with
    ``classifier.4``'s state recorded under ``initial/`` and ``final/``."""
    functions = {}
    for name in ("freeze_and_replace", "train"):
        func = ns.get(name)
        if not callable(func):
            return {"error": {"stage": "lookup", "type": "missing" if func is None else "not_callable", "name": name}}
        functions[name] = func
    seed = int(args["seed"])
    torch.manual_seed(seed)
    random.seed(seed)
    facts = {}
    try:
        with time_limit(limit):
            model = functions["freeze_and_replace"](model)
    except (Exception, StepTimeout, SystemExit, KeyboardInterrupt) as exc:
        return {"error": {"stage": "prepare", **error_facts(exc)}}
    if not _isinstance(model, _Module):
        return {"error": {"stage": "prepare", "type": "not_a_module", "found": type(model).__name__[:40]}}
    head = _head(model)
    if head is None:
        return {"error": {"stage": "prepare", "type": "no_head"}}
    recording.state("initial", head)
    batches = [(images[idx], masks[idx]) for idx in args["order"]]
    try:
        with time_limit(limit), contextlib.redirect_stderr(io.StringIO()):  # the loop's progress bar
            reported = functions["train"](model, batches, epochs=1, learn_rate=float(args["learn_rate"]),
                                          device=str(args.get("device", "cpu")))
        facts["reported"] = _floats(reported)
    except (Exception, StepTimeout, SystemExit, KeyboardInterrupt) as exc:
        return {"error": {"stage": "train", **error_facts(exc)}}
    head = _head(model)
    if head is None:
        return {"error": {"stage": "train", "type": "no_head"}}
    recording.state("final", head)
    return facts


def probe(ns, args, progress, limit, _layers_module=None):
    """Worker entry: the model and pictures, then :func:`run_student`; (facts, tensors)."""
    import safetensors.torch

    recording = Recording(args.get("budget_bytes", 2**20))
    progress({"stage": "setup"})
    try:
        model = build_model(str(args["arch"]))
        data = safetensors.torch.load_file(f"{args['inputs']}/{INPUTS_FILE}")
        images, masks = data["images"], data["masks"]
    except Exception as exc:  # noqa: BLE001 - the grader's own files: the parent reports a grader fault
        return {"error": {"stage": "setup", "type": "unavailable", "message": type(exc).__name__}}, {}
    if model is None:
        return {"error": {"stage": "setup", "type": "unavailable", "message": "no pretrained weights"}}, {}
    progress({"stage": "finetune"})
    facts = run_student(ns, model, images, masks, args, recording, limit)
    return facts, recording.tensors
