"""Re-derive the Part C facts from the worker's report (``autograder/worker/finetune_probe.py``).

The parent rebuilds the same stand-in DeepLabV3 (``tiny_deeplab``) from the same secret seeds, so it knows every
tensor the model held before the student's code ran, and the batch it was given. From that it recomputes what each
reported state must be: the head's output, the harness's SGD step, and the loss before and after ``train``. Each
function returns a student-visible problem, or None when the report is verified.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.worker import tiny_deeplab
from autograder.worker.finetune_probe import HARNESS_LR, harness_weights

from .tensors import close

HEAD = "classifier.4."
HEAD_KEYS = (HEAD + "weight", HEAD + "bias")


def _state(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}


def _head_from(state: dict) -> nn.Conv2d | None:
    weight, bias = state.get(HEAD_KEYS[0]), state.get(HEAD_KEYS[1])
    if weight is None or bias is None or tuple(weight.shape) != (2, 256, 1, 1) or tuple(bias.shape) != (2,):
        return None
    head = nn.Conv2d(256, 2, 1)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head


def _with_head(seed: int, head: nn.Conv2d, freeze: bool = True):
    model = tiny_deeplab.build(seed)
    if freeze:
        model.requires_grad_(False)
    model.classifier[4] = head
    return model.eval()


def _loss(model, images, masks) -> torch.Tensor:
    return F.cross_entropy(model(images)["out"], masks)


def _changed(before: dict, after: dict, keys) -> list:
    return [k for k in keys if k not in after or after[k].shape != before[k].shape or not torch.equal(after[k],
                                                                                                      before[k])]


def head_problem(facts: dict, tensors: dict, args: dict) -> str | None:
    """``freeze_and_replace`` gave the model a new Conv2d(256, 2, 1) with bias at classifier.4 and left the rest."""
    head = facts.get("head")
    if not isinstance(head, dict):
        return "classifier.4 is missing from the model freeze_and_replace returned"
    attrs = head.get("attrs") or {}
    if head.get("type") != "Conv2d":
        return f"classifier.4 should be an nn.Conv2d(256, 2, kernel_size=1); found a {str(head.get('class'))[:40]}"
    shape = (attrs.get("in_channels"), attrs.get("out_channels"), tuple(attrs.get("kernel_size") or ()))
    if shape != (256, 2, (1, 1)) or tuple(attrs.get("stride") or ()) != (1, 1) or attrs.get("groups") != 1:
        return (f"classifier.4 should be nn.Conv2d(256, 2, kernel_size=1); found Conv2d({shape[0]}, {shape[1]}, "
                f"kernel_size={shape[2]})")
    if "bias" not in (head.get("params") or ()):
        return "classifier.4 should have a bias (nn.Conv2d's default)"
    original = tiny_deeplab.build(args["seed_model"])
    expected_modules = {name: type(m).__name__ for name, m in original.named_modules() if name != "classifier.4"}
    found = {str(n): str(t) for n, t in facts.get("modules") or [] if n != "classifier.4"}
    if found != expected_modules:
        changed = sorted(set(found.items()) ^ set(expected_modules.items()))
        return f"freeze_and_replace changed other modules than classifier.4 ({', '.join(n for n, _ in changed[:3])})"
    s0 = _state(tensors, "prepare/S0")
    reference = original.state_dict()
    others = [k for k in reference if not k.startswith(HEAD)]
    if _changed(reference, s0, others):
        return f"freeze_and_replace changed tensors other than classifier.4's ({_changed(reference, s0, others)[0]})"
    new = _head_from(s0)
    if new is None:
        return "classifier.4's weight and bias are not those of a Conv2d(256, 2, 1)"
    if torch.equal(new.weight.detach(), reference[HEAD_KEYS[0]][:2]):
        return "classifier.4 reuses two rows of the old 21-class layer; it should be a new, freshly initialised layer"
    images, _masks = tiny_deeplab.batch(args["seed_batch"])
    with torch.no_grad():
        expected = _with_head(args["seed_model"], new, freeze=False)(images)["out"]
    out = tensors.get("prepare/out")
    if out is None or out.shape != expected.shape or not close(out, expected):
        return "the model's output is not what its layers with the new classifier.4 compute"
    return None


def frozen_problem(facts: dict, tensors: dict, args: dict) -> str | None:
    """After ``freeze_and_replace``, one SGD step over every parameter that requires a gradient changes exactly
    classifier.4, by the step the parent computes."""
    if not facts.get("stepped"):
        return "no parameter requires a gradient after freeze_and_replace: classifier.4 must stay trainable"
    s0, s1 = _state(tensors, "prepare/S0"), _state(tensors, "prepare/S1")
    if not s0 or set(s1) != set(s0):
        return "the model's state after a training step could not be read"
    moved = [k for k in _changed(s0, s1, s0) if not k.startswith(HEAD)]
    if moved:
        shown = ", ".join(sorted({k.rsplit(".", 1)[0] for k in moved})[:3])
        return f"layers other than classifier.4 still learn after freeze_and_replace ({shown})"
    head = _any_head_from(s0)
    if head is None:
        return "classifier.4 is not a convolution the grader can check"
    model = _with_head(args["seed_model"], head)
    images, _masks = tiny_deeplab.batch(args["seed_batch"])
    logits = model(images)["out"]
    (logits * harness_weights(args["seed_batch"], logits.shape)).sum().backward()
    for name, parameter in head.named_parameters():
        expected = parameter.detach() - HARNESS_LR * parameter.grad
        if not close(s1[HEAD + name], expected):
            return f"{HEAD + name} does not learn as a trainable parameter would (does it require a gradient?)"
    return None


def _any_head_from(state: dict) -> nn.Conv2d | None:
    """classifier.4 as a 1x1 Conv2d of whatever number of outputs, with or without bias."""
    weight, bias = state.get(HEAD_KEYS[0]), state.get(HEAD_KEYS[1])
    if weight is None or weight.dim() != 4 or tuple(weight.shape[1:]) != (256, 1, 1):
        return None
    head = nn.Conv2d(256, weight.shape[0], 1, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(weight)
        if bias is not None:
            if bias.shape != head.bias.shape:
                return None
            head.bias.copy_(bias)
    return head


def train_problem(facts: dict, tensors: dict, args: dict, frozen: bool) -> str | None:
    """The student's ``train`` for one epoch on one batch, on a model the grader prepared: only classifier.4 may
    change (running statistics included), and the loss on that batch must go down."""
    key = "frozen" if frozen else "unfrozen"
    error = facts.get("error")
    if isinstance(error, dict):
        from ..feedback import error_excerpt

        return f"train() raised {error_excerpt(error)}"
    reference = tiny_deeplab.build(args["seed_model"])
    reference.classifier[4] = tiny_deeplab.new_head(args["seed_head"])
    before = reference.state_dict()
    after = _state(tensors, f"{key}/S1")
    if set(after) != set(before):
        return "the model's state after train() could not be read"
    # with the model not frozen, only what the optimiser holds is judged (buffers are one_step's business)
    judged = before if frozen else dict(reference.named_parameters())
    moved = [k for k in _changed(before, after, judged) if not k.startswith(HEAD)]
    if moved:
        buffers = [k for k in moved if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        if buffers and len(buffers) == len(moved):
            return ("train() changes the BatchNorm running statistics of the frozen layers: keep the model in "
                    "eval() mode while fine-tuning")
        shown = ", ".join(sorted({k.rsplit(".", 1)[0] for k in moved})[:3])
        return f"train() changes layers other than classifier.4 ({shown})"
    if not _changed(before, after, HEAD_KEYS):
        return "train() did not change classifier.4 (is it in the optimizer, and does the loop take a step?)"
    head = _head_from(after)
    if head is None:
        return "classifier.4 is no longer a Conv2d(256, 2, 1) after train()"
    images, masks = tiny_deeplab.batch(args["seed_batch"])
    with torch.no_grad():
        start = _loss(_with_head(args["seed_model"], tiny_deeplab.new_head(args["seed_head"])), images, masks)
        end = _loss(_with_head(args["seed_model"], head), images, masks)
    if frozen and not bool(end < start):
        return f"one epoch of train() did not lower the loss on its batch ({float(start):.4f} -> {float(end):.4f})"
    return None
