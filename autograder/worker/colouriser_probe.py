"""Probe a student's colourisation model class (``CNN`` or ``UNet``): build it in given configurations and record
what it computes on given inputs, in training and evaluation mode, forward and backward.

For each configuration the worker records: the model description (``describe``); its state before (``S0``) and
after (``S1``) a training-mode pass; for every call of one of the six named groups, in order, the tensor it
received and the tensor it returned (and, in training mode, the gradient that reached that output); the model's
output; the gradients of the input and of every parameter after ``(output * R).sum().backward()``; then the same
calls and output for an evaluation-mode pass. Inputs ``X``, ``X2`` and ``R`` come from seeds the parent keeps, so the
parent can regenerate them. While the model runs, ``MyConv2d`` convolves through the marked convolution
(``marks.py``). Any error of the student's code is recorded with the stage it happened in, never raised.
"""
import contextlib

import torch
import torch.nn as nn

from . import inputs
from .cells import StepTimeout, error_facts, time_limit
from .describe import describe
from .marks import MarkedFunctional
from .recording import Recording

GROUPS = ("downconv1", "downconv2", "rfconv", "upconv1", "upconv2", "finalconv")
_Module, _Tensor, _BatchNorm2d = nn.Module, torch.Tensor, nn.BatchNorm2d  # bound before any student code runs
_isinstance, _issubclass, _type, _getattr, _len = isinstance, issubclass, type, getattr, len
X_SCALE, X_SHIFT = 1.5, 0.3          # training-mode input: shift + scale * N(0, 1)
X2_SCALE, X2_SHIFT = 1.0, -0.2       # evaluation-mode input


@contextlib.contextmanager
def marked_convolutions(layers_module, marks):
    if marks is None or layers_module is None:
        yield
        return
    previous = layers_module.__dict__.get("F")
    layers_module.F = MarkedFunctional(*marks)
    try:
        yield
    finally:
        layers_module.F = previous


class CallRecorder:
    """Forward hooks on the six groups: every call's input and output (and later the output's gradient)."""

    def __init__(self, model, recording: Recording, prefix: str):
        self.recording, self.prefix = recording, prefix
        self.calls, self.handles, self.mode = [], [], "train"
        try:
            modules = dict(_getattr(model, "_modules", {}))
        except Exception:  # noqa: BLE001
            modules = {}
        for name in GROUPS:
            module = modules.get(name)
            if _isinstance(module, _Module):
                self.handles.append(module.register_forward_pre_hook(self._before(name), with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._after(name)))

    def _key(self, index, what):
        return f"{self.prefix}/{self.mode}/{index}/{what}"

    def _before(self, name):
        def hook(_module, args, kwargs):
            index = _len(self.calls)
            call = {"group": name, "mode": self.mode, "args": _len(args), "kwargs": _len(kwargs)}
            if args and _isinstance(args[0], _Tensor):
                self.recording.put(self._key(index, "in"), args[0])
            self.calls.append(call)
        return hook

    def _after(self, name):
        def hook(_module, _args, output):
            index = next((i for i in range(_len(self.calls) - 1, -1, -1) if self.calls[i]["group"] == name
                          and "out" not in self.calls[i]), None)
            if index is None:
                return
            call = self.calls[index]
            call["out"] = _isinstance(output, _Tensor)
            if call["out"]:
                self.recording.put(self._key(index, "out"), output)
                if self.mode == "train" and output.requires_grad:
                    key = self._key(index, "gout")
                    output.register_hook(self._keep_gradient(key))
        return hook

    def _keep_gradient(self, key):
        def hook(grad):
            self.recording.put(key, grad)  # returns None whatever put says: a tensor hook's value replaces grad
        return hook

    def remove(self):
        for handle in self.handles:
            handle.remove()


def randomise_batchnorm(model, seed):
    """Give every BatchNorm2d non-trivial affine parameters and running statistics (so that evaluation mode shows
    where each one is)."""
    g = inputs.generator(seed)
    with torch.no_grad():
        for module in model.modules():
            if _type(module) is not _BatchNorm2d:
                continue
            for name, low, high in (("weight", 0.5, 1.5), ("bias", -0.5, 0.5), ("running_var", 0.5, 2.0)):
                tensor = _getattr(module, name, None)
                if _isinstance(tensor, _Tensor) and tensor.is_floating_point():
                    tensor.copy_(torch.rand(tensor.shape, generator=g) * (high - low) + low)
            mean = _getattr(module, "running_mean", None)
            if _isinstance(mean, _Tensor) and mean.is_floating_point():
                mean.copy_(torch.randn(mean.shape, generator=g) * 0.5)


def _config_kwargs(config):
    return {key: int(config[key]) for key in ("kernel", "num_filters", "num_colours", "num_in_channels")}


def probe_config(ns, class_name, config, index, recording, layers_module, marks, randomise, progress, limit):
    """Facts about one configuration (tensors go into ``recording`` under ``c<index>/...``)."""
    prefix = f"c{index}"
    facts = {"index": index}

    def fail(stage, exc):
        facts["error"] = {"stage": stage, **error_facts(exc)}
        return facts

    cls = ns.get(class_name)
    if cls is None:
        # the names the notebook did define (data: the parent says which looks like the expected one)
        names = [str(name)[:40] for name in list(ns)[:2000] if isinstance(name, str) and not name.startswith("_")]
        facts["error"] = {"stage": "lookup", "type": "missing", "names": names[:200]}
        return facts
    if not (_isinstance(cls, _type) and _issubclass(cls, _Module)):
        facts["error"] = {"stage": "lookup", "type": "not_a_module_class", "found": str(_type(cls).__name__)[:40]}
        return facts
    progress({"config": index, "stage": "build"})
    try:
        with time_limit(limit):
            torch.manual_seed(int(config["seed_model"]))
            model = cls(**_config_kwargs(config))
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return fail("build", exc)
    if not _isinstance(model, _Module):
        facts["error"] = {"stage": "build", "type": "not_a_module", "found": str(_type(model).__name__)[:40]}
        return facts
    try:
        facts["description"] = describe(model)
        if randomise:
            randomise_batchnorm(model, config["seed_bn"])
        facts["parameters"] = [[str(n)[:200], bool(p.requires_grad), list(p.shape)]
                               for n, p in list(model.named_parameters())[:512]]
        facts["S0"] = recording.state(f"{prefix}/S0", model)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return fail("describe", exc)
    recorder = CallRecorder(model, recording, prefix)
    facts["calls"] = recorder.calls
    shape = (int(config["batch"]), int(config["num_in_channels"]), int(config["height"]), int(config["width"]))
    try:
        progress({"config": index, "stage": "train"})
        with time_limit(limit), marked_convolutions(layers_module, marks):
            model.train()
            x = inputs.normal(config["seed_x"], shape, X_SCALE, X_SHIFT).requires_grad_(True)
            out = model(x)
            if not _isinstance(out, _Tensor):
                facts["error"] = {"stage": "train", "type": "not_a_tensor", "found": str(_type(out).__name__)[:40]}
                return facts
            recording.put(f"{prefix}/train/output", out)
            facts["output_shape"] = list(out.shape)
            if out.requires_grad and out.is_floating_point():
                weights = inputs.normal(config["seed_r"], out.shape)
                (out * weights).sum().backward()
                recording.put(f"{prefix}/train/xgrad", x.grad) if x.grad is not None else None
                for name, parameter in model.named_parameters():
                    if parameter.grad is not None:
                        recording.put(f"{prefix}/grad/{name}", parameter.grad)
            facts["S1"] = recording.state(f"{prefix}/S1", model)
        progress({"config": index, "stage": "eval"})
        recorder.mode = "eval"
        with time_limit(limit), marked_convolutions(layers_module, marks), torch.no_grad():
            model.eval()
            out = model(inputs.normal(config["seed_x2"], shape, X2_SCALE, X2_SHIFT))
            if _isinstance(out, _Tensor):
                recording.put(f"{prefix}/eval/output", out)
    except StepTimeout as exc:
        return fail(recorder.mode, exc)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        return fail(recorder.mode, exc)
    finally:
        recorder.remove()
    facts["full"] = recording.full
    return facts


def probe(ns, args, progress, limit, layers_module):
    """``args``: class, configs (kernel, num_filters, num_colours, num_in_channels, batch, height, width and the
    seeds seed_model, seed_x, seed_x2, seed_r, seed_bn), marks ([a, c] or None), randomise, budget_bytes."""
    recording = Recording(args.get("budget_bytes", 48 * 2**20))
    marks = tuple(args["marks"]) if args.get("marks") else None
    configs = []
    for index, config in enumerate(args["configs"]):
        configs.append(probe_config(ns, args["class"], config, index, recording, layers_module, marks,
                                    bool(args.get("randomise", True)), progress, limit))
        if recording.full:
            break
    return {"configs": configs, "full": recording.full}, recording.tensors
