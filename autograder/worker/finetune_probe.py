"""Probe a student's Part C functions on stand-in DeepLabV3 models (``tiny_deeplab``) and record the results.

* ``prepare``: ``freeze_and_replace`` on a fresh model: what it returned, the module types, every parameter's
  ``requires_grad``, the whole state, the model's output on an image, and the state after one plain SGD step over
  *all* parameters (which shows what can still learn).
* ``frozen``: the student's ``train`` for one batch on a model the grader froze and re-headed itself: the state after.
* ``unfrozen``: the same on a model whose other layers still require gradients: the state after.

The parent rebuilds the same models from the same seeds and re-derives what each state must be.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import inputs, tiny_deeplab
from .cells import StepTimeout, error_facts, time_limit
from .describe import describe
from .recording import Recording

HEAD = ("classifier", "4")
_Module, _Tensor = nn.Module, torch.Tensor
_isinstance, _type, _getattr, _callable = isinstance, type, getattr, callable
HARNESS_LR = 0.5


def harness_weights(seed, shape):
    """The harness's loss is sum(logits * weights): defined for a head of any shape (unlike cross-entropy)."""
    return inputs.normal(int(seed) + 2, tuple(shape)) / 100.0


def _function(ns, name):
    func = ns.get(name)
    if func is None:
        return None, {"stage": "lookup", "type": "missing", "name": name}
    if not _callable(func):
        return None, {"stage": "lookup", "type": "not_callable", "name": name, "found": str(_type(func).__name__)[:40]}
    return func, None


def _child(module, path):
    for name in path:
        children = dict(_getattr(module, "_modules", {}))
        module = children.get(name)
        if module is None:
            return None
    return module


def _logits(model, images):
    out = model(images)
    return out["out"] if _isinstance(out, dict) else out


def prepare(ns, args, recording, limit):
    func, error = _function(ns, "freeze_and_replace")
    if error:
        return {"error": error}
    model = tiny_deeplab.build(args["seed_model"])
    facts = {}
    try:
        with time_limit(limit):
            torch.manual_seed(int(args["seed_call"]))
            result = func(model)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return {"error": {"stage": "call", **error_facts(exc)}}
    facts["returned"] = ("none" if result is None else "same" if result is model else
                         "module" if _isinstance(result, _Module) else "other")
    target = model if result is None else result
    if not _isinstance(target, _Module):
        facts["found"] = str(_type(target).__name__)[:40]
        return facts
    try:
        head = _child(target, HEAD)
        facts["head"] = describe(head) if _isinstance(head, _Module) else None
        facts["modules"] = [[str(name)[:120], str(_type(m).__name__)[:40]] for name, m in
                            list(target.named_modules())[:300]]
        facts["parameters"] = [[str(n)[:200], bool(p.requires_grad), list(p.shape)]
                               for n, p in list(target.named_parameters())[:512]]
        facts["S0"] = recording.state("prepare/S0", target)
        images, masks = tiny_deeplab.batch(args["seed_batch"])
        with time_limit(limit):
            with torch.no_grad():
                target.eval()
                recording.put("prepare/out", _logits(target, images))
            trainable = [p for p in target.parameters() if p.requires_grad]
            facts["stepped"] = bool(trainable)
            if trainable:
                optimizer = torch.optim.SGD(trainable, lr=HARNESS_LR)
                logits = _logits(target, images)
                loss = (logits * harness_weights(args["seed_batch"], logits.shape)).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            facts["S1"] = recording.state("prepare/S1", target)
    except StepTimeout as exc:
        facts["error"] = {"stage": "run", **error_facts(exc)}
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        facts["error"] = {"stage": "run", **error_facts(exc)}
    return facts


def run_train(ns, args, recording, limit, frozen):
    func, error = _function(ns, "train")
    if error:
        return {"error": error}
    model = tiny_deeplab.build(args["seed_model"])
    if frozen:
        model.requires_grad_(False)
    model.classifier[4] = tiny_deeplab.new_head(args["seed_head"])
    images, masks = tiny_deeplab.batch(args["seed_batch"])
    key = "frozen" if frozen else "unfrozen"
    facts = {}
    try:
        with time_limit(limit):
            torch.manual_seed(int(args["seed_call"]))
            returned = func(model, [(images, masks)], epochs=1, learn_rate=float(args["learn_rate"]), device="cpu")
        facts["returned"] = str(_type(returned).__name__)[:40]
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        facts["error"] = {"stage": "call", **error_facts(exc)}
    try:
        facts["S1"] = recording.state(f"{key}/S1", model)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        facts.setdefault("error", {"stage": "state", **error_facts(exc)})
    return facts


def probe(ns, args, progress, limit, _layers_module=None):
    recording = Recording(args.get("budget_bytes", 64 * 2**20))
    facts = {}
    progress({"stage": "prepare"})
    facts["prepare"] = prepare(ns, args["prepare"], recording, limit)
    progress({"stage": "frozen"})
    facts["frozen"] = run_train(ns, args["frozen"], recording, limit, frozen=True)
    progress({"stage": "unfrozen"})
    facts["unfrozen"] = run_train(ns, args["unfrozen"], recording, limit, frozen=False)
    facts["full"] = recording.full
    return facts, recording.tensors
