"""Re-derive, from one probed configuration of a student's CNN or UNet, what the model is and what it computes.

The worker reported (``autograder/worker/colouriser_probe.py``): the module tree, the state before (S0) and after
(S1) a training-mode pass, every call of the six groups with the tensor it got and the one it returned, the
gradients, and the outputs. Nothing of that is believed as such. Here the parent

1. rebuilds every group from its description with its own layer classes, loads the reported tensors and recomputes
   each recorded call, in training mode (batch statistics, running-statistics update) and in evaluation mode: a
   group is *verified* when every call gives what was reported;
2. explains every group's input, and the model's output, from tensors it already trusts: the input ``X`` (which the
   parent generated from its secret seed), outputs of verified calls, a concatenation of those along the channels
   (in any order), a constant block, or a group's function applied to one of those (a layer computed without
   calling the module). A call whose input is explained this way from ``X`` is *anchored*; an anchored output is a
   computation the parent could repeat from ``X`` alone;
3. checks the backward pass: the gradient that reached each anchored tensor must be the sum of what its consumers
   send back (recomputed by the parent), plus the loss weights ``R`` at the output; an edge whose share is missing
   is *detached*;
4. checks the convolution markers (``autograder/worker/marks.py``): a MyConv2d weight whose gradient is not its
   marker was used outside ``MyConv2d.forward``.

The result, :class:`ConfigFacts`, holds verified facts only, with the reason wherever something could not be
verified; :class:`GraphModel` turns a verified model back into a module the parent can train itself.
"""
from __future__ import annotations

import dataclasses
import itertools

import torch
import torch.nn as nn

from autograder.worker import inputs
from autograder.worker.colouriser_probe import GROUPS, X2_SCALE, X2_SHIFT, X_SCALE, X_SHIFT
from autograder.worker.marks import mark

from .rebuild import Unsupported, build, flat_layers, fresh_copy, load_state
from .tensors import close

MAX_APPLY_ATTEMPTS = 120


# ------------------------------------------------------------------------------------------------ data
@dataclasses.dataclass
class Part:
    """One channel block of an explained tensor: ``x``, the output of call ``index``, a constant, or ``group``'s
    function applied to an explained tensor ``inner``."""

    kind: str                 # "x", "call", "const", "apply"
    index: int | None = None  # call index (kind "call")
    value: float | None = None  # kind "const"
    channels: int = 0
    group: str | None = None  # kind "apply"
    inner: list | None = None  # kind "apply": list[Part]
    # kind "call": the call's output passed through a ReLU (``F.relu(self.downconv1(x))``: the group's ReLU
    # written outside it); the parent applies the ReLU itself, forward and backward
    relu: bool = False
    # Other trusted tensors with exactly the same value (kinds "x" and "call"): in a small configuration two groups
    # can give the same tensor (all zeros after a ReLU, say), and then either is an honest explanation.
    alternatives: list = dataclasses.field(default_factory=list)

    def sources(self) -> list:
        if self.kind == "apply":
            return [("apply", self.group)] + [s for p in self.inner for s in p.sources()]
        return [(self.kind, self.index)]


@dataclasses.dataclass
class GroupFacts:
    name: str
    present: bool = False
    node: dict | None = None
    layers: list = dataclasses.field(default_factory=list)
    rebuilt: bool = False
    calls: dict = dataclasses.field(default_factory=lambda: {"train": [], "eval": []})
    verified: bool = False
    problem: str = ""        # why the group is not verified (parent's words)
    # The parent's own float32 and float64 results differ by more than the tolerance (BatchNorm over a batch of
    # nearly equal values): float noise cannot be told from a lie here, so the configuration is judged elsewhere.
    ill_conditioned: bool = False
    module: nn.Module | None = dataclasses.field(default=None, repr=False)  # rebuilt, S0 state, marked convs


@dataclasses.dataclass
class Flow:
    """How each call's input and the output are explained in one mode."""

    inputs: dict = dataclasses.field(default_factory=dict)    # call index -> list[Part] or None
    anchored: dict = dataclasses.field(default_factory=dict)  # call index -> bool
    output: list | None = None
    output_anchored: bool = False
    problems: list = dataclasses.field(default_factory=list)
    # Some group's output in this mode is constant, or equals another's (a small configuration whose ReLUs zero a
    # whole group): the wiring cannot be told apart here, only in the other configurations.
    degenerate: bool = False


@dataclasses.dataclass
class ConfigFacts:
    config: dict
    error: dict | None = None           # the student's code failed (stage, type, message, line)
    description: dict | None = None
    groups: dict = dataclasses.field(default_factory=dict)
    calls: list = dataclasses.field(default_factory=list)
    flows: dict = dataclasses.field(default_factory=dict)   # "train"/"eval" -> Flow
    output_shape: tuple | None = None
    backward_ok: bool = False
    backward_problems: list = dataclasses.field(default_factory=list)
    detached: set = dataclasses.field(default_factory=set)  # (consumer, part position) edges without gradient
    marks_ok: bool = False
    marks_problems: list = dataclasses.field(default_factory=list)
    marked: int = 0
    conv_modules: list = dataclasses.field(default_factory=list)  # torch convolution modules found (names)
    parameters: list = dataclasses.field(default_factory=list)    # [name, requires_grad, shape]
    flags_ok: bool = True
    flags_problems: list = dataclasses.field(default_factory=list)
    extra_modules: list = dataclasses.field(default_factory=list)  # top-level children that are not the six groups
    relu_after: set = dataclasses.field(default_factory=set)  # groups whose every use is through a ReLU outside them
    outside_parameters: list = dataclasses.field(default_factory=list)  # parameters outside the groups in use
    incomplete: bool = False            # the worker's recording budget ran out

    def without_modules(self) -> "ConfigFacts":
        """These facts without the rebuilt modules (all :class:`GraphModel` needs, and plain data that another
        grader process can be sent: the marked convolutions are classes made at run time)."""
        groups = {name: dataclasses.replace(group, module=None) for name, group in self.groups.items()}
        return dataclasses.replace(self, groups=groups)

    @property
    def built(self) -> bool:
        return self.error is None or self.error.get("stage") not in ("lookup", "build", "describe", "invalid")

    @property
    def trainable_count(self) -> int:
        return sum(_numel(shape) for _name, requires_grad, shape in self.parameters if requires_grad)

    def anchored_output(self, mode: str = "eval") -> bool:
        flow = self.flows.get(mode)
        return bool(flow and flow.output_anchored)


def _with_alternatives(matches: list) -> "Part":
    """The first of several equally good parts, carrying the others as its alternatives."""
    first = dataclasses.replace(matches[0], alternatives=[])
    first.alternatives = [dataclasses.replace(p, alternatives=[]) for p in matches[1:]]
    return first


def _degenerate(values: list) -> bool:
    """Whether a trusted tensor is constant or two of them are equal (then explanations are ambiguous)."""
    if any(_constant(v) is not None for v in values):
        return True
    return any(a.shape == b.shape and close(a, b) for a, b in itertools.combinations(values, 2))


def _ill_conditioned(module: nn.Module, x: torch.Tensor, got: torch.Tensor) -> bool:
    """Whether ``module`` (training mode, state before the call) is so sensitive at ``x`` that float32 rounding
    alone moves its output beyond the tolerance: its float64 result, or its result on ``x`` perturbed at the level
    of float32 rounding (as another summation order would), is not close to ``got``."""
    generator = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            candidates = [fresh_copy(module).double().train()(x.double())]
            for _ in range(3):
                noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * 2.0 ** -22
                candidates.append(fresh_copy(module).train()(x * (1 + noise)))
    except Exception:  # noqa: BLE001 - a layer that cannot be replayed so: no evidence of instability
        return False
    return any(not close(got.double(), candidate.double()) for candidate in candidates)


def _numel(shape) -> int:
    total = 1
    for s in shape:
        total *= int(s)
    return total


# ------------------------------------------------------------------------------------------------ helpers
def _find(node: dict, dotted: str):
    for name in dotted.split(".") if dotted else ():
        node = dict(node.get("children") or ()).get(name)
        if node is None:
            return None
    return node


def _inputs_for(config: dict, mode: str, out_shape=None):
    shape = (config["batch"], config["num_in_channels"], config["height"], config["width"])
    if mode == "train":
        return inputs.normal(config["seed_x"], shape, X_SCALE, X_SHIFT)
    return inputs.normal(config["seed_x2"], shape, X2_SCALE, X2_SHIFT)


def _constant(tensor: torch.Tensor):
    """The value of a tensor whose elements are all equal (within float noise), else None."""
    if tensor.numel() == 0 or not tensor.is_floating_point():
        return None
    first = tensor.flatten()[0]
    if not torch.isfinite(first):
        return None
    return float(first) if close(tensor, torch.full_like(tensor, float(first))) else None


def _grad_of(module: nn.Module, x: torch.Tensor, grad_out: torch.Tensor):
    """(grad wrt x, {param name: grad}) of ``module`` (training mode, on a copy: no side effects)."""
    clone = fresh_copy(module).train()
    x = x.detach().clone().requires_grad_(True)
    out = clone(x)
    names = [n for n, p in clone.named_parameters() if p.requires_grad]
    params = [p for n, p in clone.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(out, [x] + params, grad_out, allow_unused=True)
    return grads[0], dict(zip(names, grads[1:]))


# ------------------------------------------------------------------------------------------------ verify
class _Verifier:
    def __init__(self, facts: dict, tensors: dict, config: dict, marks):
        self.raw, self.config, self.marks = facts, config, marks
        self.prefix = f"c{facts.get('index', 0)}"
        self.t = {k[len(self.prefix) + 1:]: v for k, v in tensors.items() if k.startswith(self.prefix + "/")}
        self.out = ConfigFacts(config=config, error=facts.get("error"), description=facts.get("description"),
                               parameters=[p for p in facts.get("parameters") or [] if _valid_param(p)],
                               incomplete=bool(facts.get("full")))
        self.calls = [c for c in facts.get("calls") or [] if isinstance(c, dict)]
        self.out.calls = self.calls
        self.apply_budget = MAX_APPLY_ATTEMPTS
        self.inputs_cache = {}

    # -- tensors
    def tensor(self, key):
        value = self.t.get(key)
        return value if isinstance(value, torch.Tensor) else None

    def state(self, which):
        return {k[len(which) + 1:]: v for k, v in self.t.items() if k.startswith(which + "/")}

    # -- 1. groups
    def groups(self):
        description = self.out.description or {}
        children = dict(description.get("children") or ())
        self.out.extra_modules = [name for name in children if name not in GROUPS]
        s0, s1 = self.state("S0"), self.state("S1")
        for name in GROUPS:
            group = GroupFacts(name)
            self.out.groups[name] = group
            node = children.get(name)
            if node is None:
                group.problem = "missing"
                continue
            group.present, group.node, group.layers = True, node, flat_layers(node)
            group.calls = {mode: [i for i, c in enumerate(self.calls) if c.get("group") == name
                                  and c.get("mode") == mode] for mode in ("train", "eval")}
            try:
                module = build(node, self.marks)
                load_state(module, s0, name + ".")
            except Unsupported as exc:
                group.problem = f"cannot be rebuilt: it has {exc}"
                continue
            group.rebuilt, group.module = True, module
            group.verified, group.problem = self.recompute(group, module, s1)

    def recompute(self, group, module, s1):
        """Replay the group's recorded calls with the rebuilt module; (verified, problem)."""
        if not group.calls["train"] and not group.calls["eval"]:
            return False, "never called"
        running = fresh_copy(module).train()
        for index in group.calls["train"]:
            call = self.calls[index]
            x, y = self.tensor(f"train/{index}/in"), self.tensor(f"train/{index}/out")
            if call.get("args") != 1 or call.get("kwargs") or x is None or y is None:
                return False, "is called with something other than one tensor, or returns something else"
            before = fresh_copy(running)
            with torch.no_grad():
                got = running(x)
            if not close(y, got):
                group.ill_conditioned = _ill_conditioned(before, x, got)
                return False, "in training mode returns something other than what its layers compute"
        if group.calls["train"]:
            expected = running.state_dict()
            for key, value in expected.items():
                reported = s1.get(f"{group.name}.{key}")
                if reported is None or not close(reported, value):
                    return False, "updates its running statistics differently from what its layers do"
        evaluating = fresh_copy(module).eval()
        if any(key.startswith(group.name + ".") for key in s1):
            try:
                load_state(evaluating, s1, group.name + ".")
            except Unsupported:
                return False, "has tensors after training that do not match its layers"
        for index in group.calls["eval"]:
            call = self.calls[index]
            x, y = self.tensor(f"eval/{index}/in"), self.tensor(f"eval/{index}/out")
            if call.get("args") != 1 or call.get("kwargs") or x is None or y is None:
                return False, "is called with something other than one tensor, or returns something else"
            with torch.no_grad():
                got = evaluating(x)
            if not close(y, got):
                return False, "in evaluation mode returns something other than what its layers compute"
        return True, ""

    # -- 2. dataflow
    def flows(self):
        for mode in ("train", "eval"):
            self.out.flows[mode] = self.flow(mode)

    def x(self, mode):
        if mode not in self.inputs_cache:
            self.inputs_cache[mode] = _inputs_for(self.config, mode)
        return self.inputs_cache[mode]

    def available(self, mode, flow, before):
        x = self.x(mode)
        found = [(Part("x", channels=x.shape[1]), x)]
        for index in range(before):
            call = self.calls[index]
            if call.get("mode") != mode or not flow.anchored.get(index):
                continue
            y = self.tensor(f"{mode}/{index}/out")
            if y is not None and y.dim() == 4:
                found.append((Part("call", index=index, channels=y.shape[1]), y))
                if y.is_floating_point() and bool((y < 0).any()):
                    found.append((Part("call", index=index, channels=y.shape[1], relu=True), torch.relu(y)))
        return found

    def flow(self, mode) -> Flow:
        flow = Flow()
        indices = [i for i, c in enumerate(self.calls) if c.get("mode") == mode]
        for index in indices:
            call = self.calls[index]
            group = self.out.groups.get(call.get("group"))
            x = self.tensor(f"{mode}/{index}/in")
            parts = None
            if x is not None and x.dim() == 4:
                parts = self.explain(x, self.available(mode, flow, index), mode)
            flow.inputs[index] = parts
            flow.anchored[index] = bool(parts is not None and group is not None and group.verified)
            if parts is None and x is not None:
                flow.problems.append(f"the input of {call.get('group')} is not made of the input x and the outputs "
                                     f"of the groups before it")
        flow.degenerate = _degenerate([value for part, value in self.available(mode, flow, len(self.calls))
                                       if part.kind == "call" and not part.relu])
        output = self.tensor(f"{mode}/output")
        if output is not None and output.dim() == 4:
            flow.output = self.explain(output, self.available(mode, flow, len(self.calls)), mode)
            flow.output_anchored = flow.output is not None
        if mode == "train" and output is not None:
            self.out.output_shape = tuple(output.shape)
        return flow

    def explain(self, target, available, mode, depth=0, allow_apply=True):
        """List of Parts whose channel-wise concatenation equals ``target``, or None."""
        channels = target.shape[1]
        matches = [part for part, value in available if value.shape == target.shape and close(target, value)]
        if matches:
            return [_with_alternatives(matches)]
        if allow_apply and depth == 0:
            found = self.explain(target, available, mode, depth, allow_apply=False)
            if found is None or any(p.kind == "const" for p in found):
                # a constant block may still be a group's function of its input (e.g. a ReLU that zeroes it all)
                return self.explain_by_apply(target, available, mode) or found
            return found
        value = _constant(target)
        if value is not None:
            return [Part("const", value=value, channels=channels)]
        if depth < 3:
            for part, value in available:
                c = value.shape[1]
                if c >= channels or value.shape[0] != target.shape[0] or value.shape[2:] != target.shape[2:]:
                    continue
                if close(target[:, :c], value):
                    rest = self.explain(target[:, c:], available, mode, depth + 1, allow_apply=False)
                    if rest is not None:
                        same = [p for p, v in available if v.shape == value.shape and close(target[:, :c], v)]
                        return [_with_alternatives(same)] + rest
            for c in range(channels - 1, 0, -1):  # a constant block, then the rest
                value = _constant(target[:, :c])
                if value is not None:
                    rest = self.explain(target[:, c:], available, mode, depth + 1, allow_apply=False)
                    if rest is not None:
                        return [Part("const", value=value, channels=c)] + rest
                    break
        return None

    def explain_by_apply(self, target, available, mode):
        """``target`` = a group's function (its module not called) applied to an explained tensor."""
        candidates = [([part], value) for part, value in available]
        for (p1, v1), (p2, v2) in itertools.permutations(available, 2):
            if v1.shape[0] == v2.shape[0] and v1.shape[2:] == v2.shape[2:]:
                candidates.append(([p1, p2], None))
        groups = sorted(self.out.groups.values(), key=lambda g: bool(g.calls[mode]))  # groups never called first
        for group in groups:
            name = group.name
            if group.module is None:
                continue
            wanted = _input_channels(group)
            fitting = [(parts, value) for parts, value in candidates
                       if wanted is None or sum(p.channels for p in parts) == wanted]
            module = fresh_copy(group.module).train(mode == "train")  # batch statistics in training mode
            s1 = self.state("S1")
            if mode == "eval" and any(key.startswith(name + ".") for key in s1):
                try:
                    load_state(module, s1, name + ".")
                except Unsupported:
                    continue
            by_part = {id(p): v for p, v in available}
            for parts, value in fitting:
                if self.apply_budget <= 0:
                    return None
                if value is None:
                    value = torch.cat([by_part[id(p)] for p in parts], dim=1)
                self.apply_budget -= 1
                try:
                    with torch.no_grad():
                        got = module(value)
                except Exception:  # noqa: BLE001 - wrong channel count for this group
                    continue
                if got.shape == target.shape and close(target, got):
                    return [Part("apply", group=name, inner=parts, channels=target.shape[1])]
        return None

    # -- 3. backward
    def backward(self):
        flow = self.out.flows.get("train")
        output = self.tensor("train/output")
        if flow is None or flow.output is None or output is None:
            self.out.backward_problems.append("the output could not be traced back to the input")
            return
        weights = inputs.normal(self.config["seed_r"], output.shape)
        contributions = {}  # source key -> list of (edge, tensor)

        def send(parts, grad, consumer):
            start = 0
            for position, part in enumerate(parts):
                piece = grad[:, start:start + part.channels]
                start += part.channels
                if part.kind == "call" and part.relu:
                    out = self.tensor(f"train/{part.index}/out")
                    piece = piece * (out > 0).to(piece.dtype) if out is not None else torch.zeros_like(piece)
                if part.kind == "call":
                    contributions.setdefault(("call", part.index), []).append(((consumer, position), piece))
                elif part.kind == "x":
                    contributions.setdefault(("x", None), []).append(((consumer, position), piece))
                elif part.kind == "apply":
                    self.backward_apply(part, piece, send, consumer, position)

        send(flow.output, weights, "output")
        ok = True
        for index in sorted(flow.inputs, reverse=True):
            if not flow.anchored.get(index):
                continue
            reported = self.tensor(f"train/{index}/gout")
            out = self.tensor(f"train/{index}/out")
            if reported is None and out is not None:
                reported = torch.zeros_like(out)
            received = contributions.get(("call", index), [])
            kept = _matching_subset(received, reported)
            group = self.calls[index].get("group")
            if kept is None:
                ok = False
                self.out.backward_problems.append(f"the gradient reaching {group}'s output is not what the "
                                                  "layers after it send back")
                continue
            self.out.detached |= {edge for edge, _ in received if edge not in kept}
            module = self.out.groups[group].module
            x = self.tensor(f"train/{index}/in")
            try:
                grad_x, _ = _grad_of(module, x, reported)
            except Exception:  # noqa: BLE001
                ok = False
                continue
            if grad_x is not None:
                send(flow.inputs[index], grad_x, index)
        xgrad = self.tensor("train/xgrad")
        received = contributions.get(("x", None), [])
        if xgrad is not None or received:
            reported = xgrad if xgrad is not None else torch.zeros_like(_inputs_for(self.config, "train"))
            kept = _matching_subset(received, reported)
            if kept is None:
                ok = False
                self.out.backward_problems.append("the gradient reaching the input x is not what the layers send back")
            else:
                self.out.detached |= {edge for edge, _ in received if edge not in kept}
        self.out.backward_ok = ok

    def backward_apply(self, part, grad, send, consumer, position):
        try:
            inner_value = torch.cat([self.value_of(p) for p in part.inner], dim=1)
            grad_x, _ = _grad_of(self.out.groups[part.group].module, inner_value, grad)
        except Exception:  # noqa: BLE001 - nothing more to trace through this application
            return
        send(part.inner, grad_x, (consumer, position, part.group))

    def value_of(self, part):
        if part.kind == "x":
            return self.x("train")
        if part.kind == "call":
            value = self.tensor(f"train/{part.index}/out")
            return torch.relu(value) if part.relu and value is not None else value
        raise Unsupported(f"a {part.kind} inside an application")

    # -- 4. markers, parameters
    def markers(self):
        description = self.out.description or {}
        s0 = self.state("S0")
        problems, marked = [], 0
        conv_modules = []

        def walk(node, path):
            if node.get("type") == "Conv2d":
                conv_modules.append(path or "the model")
            for child_name, child in node.get("children") or ():
                walk(child, f"{path}.{child_name}" if path else child_name)

        walk(description, "")
        # the reported parameters must be the model's own tensors, and include every MyConv2d weight and bias (a
        # parameter renamed or left out of the report would escape the marker check)
        reported = {name for name, _requires_grad, _shape in self.out.parameters}
        problems += [f"{name} is reported as a parameter but is not among the model's tensors"
                     for name in sorted(reported - set(s0))[:2]]
        # a group computed without calling its module (its function matched) shows that its MyConv2d ran inside
        # MyConv2d.forward only through the markers: its weights must have received them
        applied = {name for name, group in self.out.groups.items()
                   if not group.calls["train"] and any(p.kind == "apply" and p.group == name
                                                       for flow in self.out.flows.values() for p in _all_parts(flow))}
        for path in _myconv_paths(description):
            for leaf in ("weight", "bias"):
                key = f"{path}.{leaf}"
                if key in s0 and key not in reported:
                    problems.append(f"{key} (of a MyConv2d) is missing from the reported parameters")
                elif key in s0 and path.split(".")[0] in applied and self.tensor(f"grad/{key}") is None:
                    problems.append(f"{key} received no gradient in a training-mode pass")
        for name, requires_grad, shape in self.out.parameters:
            grad = self.tensor(f"grad/{name}")
            owner = _find(description, name.rpartition(".")[0])
            owner_type = owner.get("type") if owner else None
            leaf = name.rpartition(".")[2]
            weight = s0.get(name)
            if grad is None or weight is None:
                continue
            if owner_type == "MyConv2d" and leaf in ("weight", "bias"):
                expected = mark(weight, *self.marks)
                times = _multiple(grad, expected)
                if times is None:
                    problems.append(f"{name} is used outside MyConv2d's forward")
                elif times > 1:
                    problems.append(f"{name}: its MyConv2d layer runs {times} times in one forward pass")
                else:
                    marked += 1
            elif len(shape) >= 2:
                problems.append(f"{name} (a {len(shape)}-D weight of a {owner.get('class') if owner else 'module'}) "
                                "takes part in the computation outside any MyConv2d")
        self.out.conv_modules = conv_modules
        self.out.marked = marked
        self.out.marks_problems = problems
        self.out.marks_ok = not problems and not conv_modules and marked > 0

    def flags(self):
        for name, requires_grad, _shape in self.out.parameters:
            has_grad = self.tensor(f"grad/{name}") is not None
            if has_grad and not requires_grad:
                self.out.flags_ok = False
                self.out.flags_problems.append(f"{name} reports requires_grad=False but received a gradient")

    def applied(self):
        """A group computed without calling its module (its function matched) is verified when it holds no
        running statistics (those could not be checked)."""
        for name, group in self.out.groups.items():
            if group.verified or group.module is None or group.problem != "never called":
                continue
            used = all(any(p.kind == "apply" and p.group == name for p in _all_parts(flow))
                       for flow in self.out.flows.values())
            if used and not list(group.module.buffers()):
                group.verified, group.problem = True, ""

    def relu_after(self):
        """Groups whose output is used, everywhere and in both modes, only through a ReLU written outside them
        (such a ReLU is the group's last layer, as the handout's architecture counts layers)."""
        uses = {}
        for mode, flow in self.out.flows.items():
            for part in _all_parts(flow):
                if part.kind == "call" and isinstance(part.index, int) and part.index < len(self.calls):
                    kind = part.relu
                    if not kind:  # an output without negative values is its own ReLU: either reading holds
                        out = self.tensor(f"{mode}/{part.index}/out")
                        kind = "either" if out is not None and not bool((out < 0).any()) else False
                    uses.setdefault(self.calls[part.index].get("group"), set()).add(kind)
        self.out.relu_after = {group for group, kinds in uses.items() if True in kinds and False not in kinds}

    def outside_parameters(self):
        """Parameters outside the six groups that received a gradient: the groups do not explain the output."""
        for name, _requires_grad, _shape in self.out.parameters:
            if name.split(".")[0] in GROUPS:
                continue
            grad = self.tensor(f"grad/{name}")
            if grad is not None and grad.abs().max() > 0:
                self.out.outside_parameters.append(name)

    def run(self) -> ConfigFacts:
        if not self.out.built or self.out.description is None:
            return self.out
        self.groups()
        self.flows()
        self.relu_after()
        self.applied()
        self.outside_parameters()
        if self.marks is not None:
            self.markers()
        self.flags()
        self.backward()
        return self.out


def _myconv_paths(node: dict, path: str = "") -> list:
    """Dotted paths of the MyConv2d layers of a module description."""
    found = [path] if node.get("type") == "MyConv2d" and path else []
    for name, child in node.get("children") or ():
        found += _myconv_paths(child, f"{path}.{name}" if path else name)
    return found


def _all_parts(flow: Flow):
    for parts in list(flow.inputs.values()) + [flow.output]:
        for part in parts or ():
            yield part
            if part.inner:
                yield from part.inner


def _input_channels(group: GroupFacts):
    """Channels the group's first layer takes, when it is a convolution (else None: any)."""
    if group.layers and group.layers[0][0] in ("MyConv2d", "Conv2d"):
        value = group.layers[0][1].get("in_channels")
        return value if isinstance(value, int) else None
    return None


def _valid_param(entry) -> bool:
    return (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and isinstance(entry[1], bool)
            and isinstance(entry[2], list) and all(isinstance(s, int) and s >= 0 for s in entry[2]))


def _multiple(grad: torch.Tensor, marker: torch.Tensor):
    """k if ``grad`` equals k times ``marker`` for a whole k >= 1, else None."""
    if grad.shape != marker.shape or not grad.is_floating_point():
        return None
    if not (torch.isfinite(grad).all() and torch.isfinite(marker).all()):
        return None  # NaN or infinite values (a forged report, or weights that are): no marker is in them
    scale = float((marker * marker).sum())
    if scale == 0:
        return None
    k = round(float((grad * marker).sum()) / scale)
    if k >= 1 and close(grad, marker * k):
        return k
    return None


def _matching_subset(received, reported):
    """The edges whose gradients add up to ``reported`` (all of them if possible; else the largest subset that
    does), or None when no subset does. ``received``: [(edge, tensor)]."""
    if reported is None:
        return None
    edges = [edge for edge, _ in received]
    for size in range(len(received), -1, -1):
        for subset in itertools.combinations(range(len(received)), size):
            total = torch.zeros_like(reported)
            for i in subset:
                total = total + received[i][1]
            if close(reported, total):
                return {edges[i] for i in subset}
    return None


def _valid_call(call) -> bool:
    return (isinstance(call, dict) and isinstance(call.get("group"), str) and call.get("mode") in ("train", "eval")
            and isinstance(call.get("args"), int) and isinstance(call.get("kwargs"), int))


def _valid_node(node, depth: int = 0) -> bool:
    """A module description as ``worker/describe.py`` writes it (types checked all the way down)."""
    if not isinstance(node, dict) or depth > 16 or not isinstance(node.get("type"), str):
        return False
    if not isinstance(node.get("attrs", {}), dict) or not isinstance(node.get("class", ""), str):
        return False
    for key in ("params", "buffers"):
        names = node.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return False
    children = node.get("children", [])
    return isinstance(children, list) and all(
        isinstance(child, list) and len(child) == 2 and isinstance(child[0], str) and _valid_node(child[1], depth + 1)
        for child in children)


MALFORMED = ("the report is not an object", "its error is not an object", "its list of group calls is malformed",
             "its model description is malformed", "its list of parameters is malformed")


def malformed(facts) -> str | None:
    """What in one configuration's facts is not in the form the worker writes (then none of them is used), or
    None. Checked before anything is read from them, so that forged facts are invalid output, not a grader crash."""
    if not isinstance(facts, dict):
        return MALFORMED[0]
    if facts.get("error") is not None and not isinstance(facts["error"], dict):
        return MALFORMED[1]
    calls = facts.get("calls", [])
    if not isinstance(calls, list) or not all(_valid_call(c) for c in calls):
        return MALFORMED[2]
    if facts.get("description") is not None and not _valid_node(facts["description"]):
        return MALFORMED[3]
    if not isinstance(facts.get("parameters", []), list):
        return MALFORMED[4]
    return None


def verify_config(facts: dict, tensors: dict, config: dict, marks) -> ConfigFacts:
    """What one probed configuration proves (see the module docstring); malformed facts prove nothing."""
    problem = malformed(facts)
    if problem:
        return ConfigFacts(config=config, error={"stage": "invalid", "type": "invalid_output", "message": problem})
    return _Verifier(facts, tensors, config, marks).run()


# ------------------------------------------------------------------------------------------------ training
class GraphModel(nn.Module):
    """A verified model rebuilt by the parent: the described groups, wired as the verified dataflow (detached edges
    included), with no code of the student's in it."""

    def __init__(self, facts: ConfigFacts):
        super().__init__()
        flow = facts.flows["train"]
        order = [name for name, _node in (facts.description or {}).get("children") or () if name in GROUPS]
        for name in order:
            self.add_module(name, build(facts.groups[name].node))
        self.steps = [(index, facts.calls[index]["group"], flow.inputs[index]) for index in sorted(flow.inputs)]
        self.output_parts = flow.output
        self.detached = set(facts.detached)

    def _materialise(self, parts, values, consumer):
        pieces, reference = [], None
        for position, part in enumerate(parts):
            if part.kind == "x":
                piece = values["x"]
            elif part.kind == "call":
                piece = torch.relu(values[part.index]) if part.relu else values[part.index]
            elif part.kind == "apply":
                piece = getattr(self, part.group)(self._materialise(part.inner, values, None))
            else:
                piece = None
            if piece is not None and (consumer, position) in self.detached:
                piece = piece.detach()
            pieces.append(piece)
            reference = piece if piece is not None else reference
        for position, part in enumerate(parts):
            if pieces[position] is None:
                n, _c, h, w = reference.shape
                pieces[position] = reference.new_full((n, part.channels, h, w), part.value)
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)

    def forward(self, x):
        values = {"x": x}
        for index, group, parts in self.steps:
            values[index] = getattr(self, group)(self._materialise(parts, values, index))
        return self._materialise(self.output_parts, values, "output")


def trainable_graph_problem(facts: ConfigFacts) -> str | None:
    """Why the verified model cannot be rebuilt for training, or None."""
    if not facts.built:
        return "the model could not be built"
    if facts.incomplete:
        return ("it holds or computes more tensor data than the grader accepts from a model (a model of this "
                "assignment needs well under 1 MB; keep no tables or extra tensors in it)")
    if facts.outside_parameters:
        return (f"parameters outside the six groups ({', '.join(facts.outside_parameters[:3])}) take part in the "
                "computation")
    train, evaluation = facts.flows.get("train"), facts.flows.get("eval")
    if train is None or not train.output_anchored or not facts.backward_ok:
        return "its forward and backward passes could not be traced from the input to the output"
    if any(not train.anchored.get(i) for i in train.inputs):
        return "some group is called with a tensor that could not be traced back to the input"
    unverified = [g.name for g in facts.groups.values() if g.present and g.calls["train"] and not g.verified]
    if unverified:
        return f"{', '.join(unverified)} does not compute what its layers say"
    if evaluation is None or not evaluation.output_anchored:
        return "in evaluation mode its output could not be traced from the input"
    def structure(flow):
        return ([(facts.calls[i]["group"], _shape(p, facts.calls)) for i, p in sorted(flow.inputs.items())],
                _shape(flow.output, facts.calls))

    if structure(train) != structure(evaluation):
        return "it wires its groups differently in training and in evaluation mode"
    for parts in list(train.inputs.values()) + [train.output]:
        if parts and all(p.kind == "const" for p in parts):
            return "a group receives only a constant"
    return None


def _shape(parts, calls):
    """The wiring of an explanation without the call indices (which differ between the two modes)."""
    if parts is None:
        return None
    return [(p.kind, p.channels, p.value if p.kind == "const" else None, p.group,
             calls[p.index]["group"] if p.kind == "call" else None, p.relu,
             _shape(p.inner, calls) if p.inner else None) for p in parts]
