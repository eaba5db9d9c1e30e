"""(Parent side.) Checks of the CNN (Part A) and the UNet (Part B), decided from verified facts only.

The worker built the student's class under secret seeds, ran it in training and evaluation mode on secret inputs
and reported what happened; ``autograder/verify/colouriser.py`` re-derived from that which groups compute what
their layers say, how the groups are wired (from the input ``x`` to the output), whether gradients flow back along
that wiring, and whether every convolution ran inside ``MyConv2d.forward``. Each check here compares those facts
with the architecture of the handout. Any legitimate way of writing the model yields the same facts (helper
functions, nested ``nn.Sequential``, ``torch.cat`` in either order, ``forward`` called directly, in-place ReLU).
"""
from __future__ import annotations

import itertools

from .. import closed_forms
from ..verify.colouriser import ConfigFacts
from ..worker.colouriser_probe import GROUPS
from .base import failed, passed
from .evidence import Evidence, call_text, error_text

# The wiring of the handout: the tensors each group receives (concatenated along the channels, in any order).
WIRING = {
    "cnn": {"downconv1": ("x",), "downconv2": ("downconv1",), "rfconv": ("downconv2",), "upconv1": ("rfconv",),
            "upconv2": ("upconv1",), "finalconv": ("upconv2",)},
    "unet": {"downconv1": ("x",), "downconv2": ("downconv1",), "rfconv": ("downconv2",),
             "upconv1": ("downconv2", "rfconv"), "upconv2": ("downconv1", "upconv1"),
             "finalconv": ("upconv2", "x")},
}
CLASS = {"cnn": "CNN", "unet": "UNet"}
CELL = {"cnn": "cnn_model", "unet": "unet_model"}
PROBE = {"cnn": "cnn_structure", "unet": "unet_structure"}
MAX_SHOWN = 4


# ------------------------------------------------------------------------------------------------ layers
def expected_layers(model: str, kernel: int, nf: int, nc: int, c_in: int) -> dict:
    """group -> [(kind, args, symbolic text)] of the handout's table."""
    if model == "unet":
        cat = closed_forms.unet_concat_channels(nf, nc, c_in)
        into = {"upconv1": (cat["upconv1"], "4NF"), "upconv2": (cat["upconv2"], "2NF"),
                "finalconv": (cat["finalconv"], "NC+C_in")}
    else:
        into = {"upconv1": (2 * nf, "2NF"), "upconv2": (nf, "NF"), "finalconv": (nc, "NC")}

    def conv(a, b):
        return ("conv", (a[0], b[0], kernel), f"MyConv2d({a[1]}->{b[1]})")

    def bn(c):
        return ("bn", (c[0],), f"BatchNorm2d({c[1]})")

    pool, relu, up = ("pool", (), "MaxPool2d(2)"), ("relu", (), "ReLU"), ("up", (), "Upsample(x2)")
    NF, NF2, NC, CIN = (nf, "NF"), (2 * nf, "2NF"), (nc, "NC"), (c_in, "C_in")
    return {
        "downconv1": [conv(CIN, NF), pool, bn(NF), relu],
        "downconv2": [conv(NF, NF2), pool, bn(NF2), relu],
        "rfconv": [conv(NF2, NF2), bn(NF2), relu],
        "upconv1": [conv(into["upconv1"], NF), up, bn(NF), relu],
        "upconv2": [conv(into["upconv2"], NC), up, bn(NC), relu],
        "finalconv": [conv(into["finalconv"], NC)],
    }


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _is_two(value) -> bool:
    try:
        return all(float(v) == 2.0 for v in _pair(value))
    except (TypeError, ValueError):
        return False


def layer_matches(layer, kind, args) -> bool:
    name, attrs, _cls = layer
    if kind == "conv":
        a, b, k = args
        return (name == "MyConv2d" and attrs.get("in_channels") == a and attrs.get("out_channels") == b
                and _pair(attrs.get("kernel_size")) == (k, k))
    if kind == "pool":
        stride = attrs.get("stride")
        return (name == "MaxPool2d" and _is_two(attrs.get("kernel_size")) and (stride is None or _is_two(stride))
                and _pair(attrs.get("padding", 0)) == (0, 0) and _pair(attrs.get("dilation", 1)) == (1, 1))
    if kind == "bn":
        return name == "BatchNorm2d" and attrs.get("num_features") == args[0] and attrs.get("affine") is True
    if kind == "relu":
        return name == "ReLU"
    if kind == "up":
        return name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d") and attrs.get("size") is None \
            and _is_two(attrs.get("scale_factor"))
    raise ValueError(kind)


def concrete(kind, args) -> str:
    if kind == "conv":
        return f"MyConv2d({args[0]}->{args[1]}, kernel {args[2]})"
    if kind == "bn":
        return f"BatchNorm2d({args[0]})"
    return {"pool": "MaxPool2d(2)", "relu": "ReLU", "up": "Upsample(x2)"}[kind]


def describe_layer(layer) -> str:
    name, attrs, cls = layer
    if name in ("MyConv2d", "Conv2d"):
        prefix = "MyConv2d" if name == "MyConv2d" else "nn.Conv2d"
        return f"{prefix}({attrs.get('in_channels')}->{attrs.get('out_channels')}, kernel " \
               f"{_pair(attrs.get('kernel_size'))[0]})"
    if name == "MaxPool2d":
        return f"MaxPool2d({attrs.get('kernel_size')})"
    if name == "BatchNorm2d":
        return f"BatchNorm2d({attrs.get('num_features')})"
    if name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        if attrs.get("size") is not None:
            return f"Upsample(size={attrs.get('size')})"
        return f"Upsample(x{attrs.get('scale_factor')})"
    if name == "other":
        return f"{cls} (a layer of its own class)" if cls != "MyConv2d" else \
            "MyConv2d defined in your notebook (use the one imported from a2cnn.layers)"
    return name


def layer_problems(facts: ConfigFacts, model: str) -> list[str]:
    c = facts.config
    problems = []
    for group, expected in expected_layers(model, c["kernel"], c["num_filters"], c["num_colours"],
                                           c["num_in_channels"]).items():
        symbolic = ", ".join(text for _, _, text in expected)
        wanted = ", ".join(concrete(kind, args) for kind, args, _ in expected)
        found = facts.groups.get(group)
        if found is None or not found.present:
            problems.append(f"{group} is missing: it should be {symbolic} = {wanted}")
            continue
        layers = found.layers
        if group in facts.relu_after:  # F.relu applied to the group's output wherever it is used: its last layer
            layers = layers + [("ReLU", {"inplace": False}, "ReLU")]
        if len(layers) != len(expected) or not all(layer_matches(layer, kind, args)
                                                   for layer, (kind, args, _) in zip(layers, expected)):
            shown = ", ".join(describe_layer(layer) for layer in layers[:8]) or "no layers"
            problems.append(f"{group} should be {symbolic} = {wanted}; found {shown}")
    return problems


# ------------------------------------------------------------------------------------------------ wiring
def _symbol(part, facts: ConfigFacts, spec: dict) -> str:
    if part.kind == "x":
        return "x"
    if part.kind == "call":
        return facts.calls[part.index].get("group", "?")
    if part.kind == "const":
        return "a constant"
    inner = tuple(sorted(_symbol(p, facts, spec) for p in part.inner or ()))
    # a group's layers applied without calling the module: the same as calling it, when applied to its input
    return part.group if inner == tuple(sorted(spec.get(part.group, ()))) else f"{part.group} applied elsewhere"


def _closest_symbols(parts, facts: ConfigFacts, spec: dict, wanted: list) -> list:
    """The sources of an explained tensor, sorted: ``wanted`` when some choice among equal-valued alternatives
    gives it (the model computes the same thing either way), else the first choice's."""
    options = [[p] + list(getattr(p, "alternatives", ()) or ()) for p in parts]
    first = None
    for combo in itertools.islice(itertools.product(*options), 256):
        symbols = sorted(_symbol(p, facts, spec) for p in combo)
        if symbols == wanted:
            return symbols
        first = symbols if first is None else first
    return first if first is not None else []


def wiring_problems(facts: ConfigFacts, model: str) -> list[str]:
    """How the verified dataflow differs from the handout's, in both modes (empty when it matches)."""
    spec = WIRING[model]
    problems = []
    for mode in ("train", "eval"):
        flow = facts.flows.get(mode)
        words = "training" if mode == "train" else "evaluation"
        if flow is None:
            return [f"the model could not be run in {words} mode"]
        if flow.degenerate:
            continue  # judged in the other configurations (wiring() requires most of them to be judged)
        called = {}
        for index, parts in sorted(flow.inputs.items()):
            group = facts.calls[index].get("group")
            called[group] = called.get(group, 0) + 1
            if parts is None or not flow.anchored.get(index):
                problems.append(f"in {words} mode {group} receives a tensor that is not made of the input and the "
                                "outputs of the groups (or the group does not compute what its layers say)")
                continue
            got = _closest_symbols(parts, facts, spec, sorted(spec.get(group, ())))
            if got != sorted(spec.get(group, ())):
                problems.append(f"in {words} mode {group} receives {' + '.join(got)}; it should receive "
                                f"{' + '.join(spec.get(group, ('nothing',)))}")
        for group in GROUPS:
            n = called.get(group, 0)
            applied = any(p.kind == "apply" and p.group == group and _symbol(p, facts, spec) == group
                          for parts in list(flow.inputs.values()) + [flow.output] for p in parts or ())
            if n > 1:
                problems.append(f"{group} is called {n} times in one {words}-mode pass; it should run once")
            elif n == 0 and not applied:
                problems.append(f"{group} is never used in {words} mode")
        output = _closest_symbols(flow.output or (), facts, spec, ["finalconv"]) if flow.output_anchored else None
        if output != ["finalconv"]:
            problems.append(f"in {words} mode the output is not finalconv's output"
                            + (f" (it is {' + '.join(output)})" if output else ""))
        if problems:
            return problems
    if facts.flows["train"].degenerate:
        return problems  # the gradients are judged in the configurations whose wiring is
    for consumer, position in sorted(facts.detached, key=str):
        parts = facts.flows["train"].output if consumer == "output" else (
            facts.flows["train"].inputs.get(consumer) if isinstance(consumer, int) else None)
        source = _symbol(parts[position], facts, spec) if parts and position < len(parts) else "a tensor"
        if source == "x":
            continue  # detaching the input itself changes no gradient of any layer
        target = "the output" if consumer == "output" else (
            facts.calls[consumer].get("group") if isinstance(consumer, int) else "a group")
        problems.append(f"no gradient flows from {target} back to {source} (detached or multiplied by zero)")
    if not facts.backward_ok:
        problems.append("the gradients do not flow back through the groups as their forward pass says")
    return problems


# ------------------------------------------------------------------------------------------------ checks
def _configs_or_failure(evidence: Evidence, model: str):
    probe = PROBE[model]
    failure = evidence.failure(probe, f"your {CLASS[model]}")
    if failure:
        return None, failed(failure)
    return evidence.configs(probe), None


def _all_configs_or_failure(evidence: Evidence, model: str):
    """(configs, None), or (None, failed Outcome) when the probe failed or a configuration holds an error."""
    configs, failure = _configs_or_failure(evidence, model)
    if failure:
        return None, failure
    error = _first_error(configs, model)
    return (None, failed(error)) if error else (configs, None)


def _first_error(configs, model):
    for facts in configs:
        if facts.error is not None:
            return error_text(facts, CLASS[model])
        if facts.incomplete:
            return f"{call_text(CLASS[model], facts.config)} produced more data than the grader can check"
    return None


NOT_TIED = ("no group receives the input the grader gave the model (in training mode), so what the groups computed "
            "cannot be tied to this grading run")


def _unstable(facts: ConfigFacts) -> bool:
    """Some group's computation is too unstable in float32 to be checked here (see verify/colouriser.py)."""
    return any(g.ill_conditioned for g in facts.groups.values())


def _not_judged(facts: ConfigFacts) -> bool:
    """A configuration whose wiring cannot be judged: some group's output is constant or equals another's, or a
    group is unstable."""
    return any(flow.degenerate for flow in facts.flows.values()) or _unstable(facts)


def _tied_to_this_run(facts: ConfigFacts) -> bool:
    """Whether some group's training-mode input is explained by this run's secret input x: a report recorded
    with other inputs (replayed from another run) is not."""
    flow = facts.flows.get("train")
    return flow is not None and any(
        parts and any(source == ("x", None) for p in parts for source in p.sources())
        for parts in flow.inputs.values())


def layers(model: str):
    def decide(evidence: Evidence):
        configs, failure = _configs_or_failure(evidence, model)
        if failure:
            return failure
        facts = configs[0]
        call = call_text(CLASS[model], facts.config)
        if not facts.built or facts.description is None:
            return failed(error_text(facts, CLASS[model]))
        problems = layer_problems(facts, model)
        if not problems:
            unverified = [f"{g.name} {g.problem}" for g in facts.groups.values() if not g.verified]
            problems = unverified
        if not problems and facts.error is not None:
            problems = [error_text(facts, CLASS[model])]
        if not problems and not _tied_to_this_run(facts):
            problems = [NOT_TIED]
        if problems:
            return failed(f"with {call}: " + "; ".join(problems[:MAX_SHOWN]))
        return passed(f"all six groups have the layers and channel numbers of the architecture and compute what "
                      f"those layers compute, in training and evaluation mode (checked with {call})")
    return decide


def unexplained(facts: ConfigFacts) -> list[str]:
    """Where the model computes, between its groups, something the parent cannot re-derive from the input and the
    verified groups' outputs (in either mode): a convolution could hide there (an unregistered module, say), so
    no MyConv2d-only verdict can rest on that data."""
    places = []
    for mode in ("train", "eval"):
        flow = facts.flows.get(mode)
        words = "training" if mode == "train" else "evaluation"
        if flow is None:
            places.append(f"the model's {words}-mode pass")
            continue
        for index, parts in sorted(flow.inputs.items()):
            if parts is None or not flow.anchored.get(index):
                text = f"in {words} mode the input of {facts.calls[index].get('group', 'a group')}"
                if text not in places:
                    places.append(text)
        if not flow.output_anchored:
            places.append(f"in {words} mode the output")
    return places


def only_myconv(model: str):
    def decide(evidence: Evidence):
        configs, failure = _configs_or_failure(evidence, model)
        if failure:
            return failure
        facts = configs[0]
        if facts.error is not None:
            return failed(f"the convolutions could not be checked: {error_text(facts, CLASS[model])}")
        if facts.conv_modules:
            return failed(f"use MyConv2d, not torch's convolution modules: found nn.Conv2d at "
                          f"{', '.join(facts.conv_modules[:MAX_SHOWN])}")
        if facts.marks_problems:
            return failed("every convolution must run inside MyConv2d.forward: "
                          + "; ".join(facts.marks_problems[:MAX_SHOWN]))
        if not facts.marks_ok:
            return failed("no MyConv2d of the model took part in the computation")
        unverified = [g.name for g in facts.groups.values() if g.present and not g.verified]
        if unverified:
            return failed(f"the convolutions of {', '.join(unverified)} could not be verified "
                          f"({facts.groups[unverified[0]].problem})")
        hidden = unexplained(facts)
        if hidden:
            return failed(f"{'; '.join(hidden[:2])} is computed outside the six groups by something the "
                          "grader cannot re-derive (a layer not registered in the model, or an operation of your "
                          "own), so it cannot tell that no other convolution is used; every convolution must run "
                          "inside a MyConv2d registered in the model")
        return passed(f"all {facts.marked} MyConv2d weights and biases reach the output only through "
                      "MyConv2d.forward, and no other convolution is used")
    return decide


def wiring(model: str, with_shapes: bool):
    """The handout's dataflow over every configuration (CNN: with the output shape; UNet: the skips)."""
    def decide(evidence: Evidence):
        configs, failure = _all_configs_or_failure(evidence, model)
        if failure:
            return failure
        degenerate = [f for f in configs if _not_judged(f)]
        if len(degenerate) * 2 > len(configs):
            return failed(f"some groups of your {CLASS[model]} give a constant output (or the same output as another "
                          f"group) in {len(degenerate)} of {len(configs)} configurations, so the grader cannot see "
                          "how the groups are connected")
        for facts in configs:
            c = facts.config
            call = call_text(CLASS[model], c)
            expected = (c["batch"], c["num_colours"], c["height"], c["width"])
            if with_shapes and tuple(facts.output_shape or ()) != expected:
                return failed(f"{call} on an input of shape ({c['batch']}, {c['num_in_channels']}, {c['height']}, "
                              f"{c['width']}) returned shape {tuple(facts.output_shape or ())}; expected {expected}")
            if _unstable(facts):
                continue  # float noise hides the wiring here; the majority rule above bounds how often
            problems = wiring_problems(facts, model)
            if problems:
                return failed(f"with {call}: " + "; ".join(problems[:MAX_SHOWN]))
        what = "output shape (N, NC, H, W) and the chain of groups" if with_shapes else \
            "three torch.cat skips (x, downconv1 and downconv2 reach the decoder, with their gradients)"
        return passed(f"{what} verified over {len(configs)} configurations, in training and evaluation mode")
    return decide


def parameter_counts(model: str, with_shapes: bool):
    formula = closed_forms.unet_parameter_count if model == "unet" else closed_forms.cnn_parameter_count
    shape = closed_forms.unet_output_shape if model == "unet" else closed_forms.cnn_output_shape

    def decide(evidence: Evidence):
        configs, failure = _all_configs_or_failure(evidence, model)
        if failure:
            return failure
        unstable = [f for f in configs if _unstable(f)]
        if unstable and len(unstable) * 2 > len(configs):
            return failed(f"the groups of your {CLASS[model]} compute too unstably to be checked in {len(unstable)} of "
                          f"{len(configs)} configurations")
        for facts in configs:
            c = facts.config
            call = call_text(CLASS[model], c)
            args = (c["kernel"], c["num_filters"], c["num_colours"], c["num_in_channels"])
            if with_shapes:
                expected = shape(c["batch"], *args, c["height"], c["width"])
                if tuple(facts.output_shape or ()) != expected:
                    return failed(f"{call} on an input of shape ({c['batch']}, {c['num_in_channels']}, "
                                  f"{c['height']}, {c['width']}) returned shape {tuple(facts.output_shape or ())}; "
                                  f"expected {expected}")
            if not facts.flags_ok:
                return failed(f"with {call}: " + "; ".join(facts.flags_problems[:MAX_SHOWN]))
            unverified = [g.name for g in facts.groups.values() if not g.verified and not g.ill_conditioned]
            if unverified:
                return failed(f"with {call}: the parameters of {', '.join(unverified)} could not be verified "
                              f"({facts.groups[unverified[0]].problem})")
            if facts.outside_parameters:
                return failed(f"with {call}: parameters outside the six groups take part in the computation "
                              f"({', '.join(facts.outside_parameters[:3])})")
            if not _tied_to_this_run(facts):
                return failed(f"with {call}: {NOT_TIED}")
            got, want = facts.trainable_count, formula(*args)
            if got != want:
                return failed(f"{call} has {got} trainable parameters; the architecture has {want}")
        return passed(f"trainable parameter counts{' and output shapes' if with_shapes else ''} match the closed "
                      f"forms over {len(configs)} configurations")
    return decide
