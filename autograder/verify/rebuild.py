"""Rebuild layers from a worker's description with the parent's own classes, and load reported tensors into them.

``build(node, marks)`` returns a module that mirrors the described tree (same child names, so a state_dict with
the student's keys loads with ``strict=True``), or raises :class:`Unsupported` for a type outside the vocabulary.
With ``marks`` = (a, c), every MyConv2d convolves through the marked convolution, as it did in the worker.
"""
import copy

import torch.nn as nn

from autograder.worker.marks import MarkedConv
from autograder.worker.vocabulary import LAYERS, layer_class

MAX_CHANNELS = 4096
MAX_KERNEL = 15


class Unsupported(ValueError):
    """The description names a layer the grader cannot rebuild (its own class, an unreadable attribute, ...)."""


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def _check_sizes(name, attrs):
    for key in ("in_channels", "out_channels", "num_features"):
        value = attrs.get(key)
        if value is not None and not (isinstance(value, int) and 0 < value <= MAX_CHANNELS):
            raise Unsupported(f"{name} with {key}={value!r}")
    kernel = attrs.get("kernel_size")
    for k in (kernel if isinstance(kernel, tuple) else (kernel,)):
        if k is not None and not (isinstance(k, int) and 0 < k <= MAX_KERNEL):
            raise Unsupported(f"{name} with kernel_size={kernel!r}")


def _marked_myconv(marks):
    base = layer_class("MyConv2d")

    class MarkedMyConv2d(base):
        def forward(self, x):
            return MarkedConv.apply(x, self.weight, self.bias, self.padding, *marks)

    return MarkedMyConv2d


def build_layer(node: dict, marks=None) -> nn.Module:
    name = node.get("type")
    if name not in LAYERS or name == "Sequential":
        raise Unsupported(f"a layer of its own class ({node.get('class', '?')})")
    attrs = {key: _tuple(value) for key, value in (node.get("attrs") or {}).items()}
    if set(attrs) != set(LAYERS[name][2]):
        raise Unsupported(f"{name} whose attributes could not be read")
    _check_sizes(name, attrs)
    params = set(node.get("params") or ())
    try:
        if name == "MyConv2d":
            cls = _marked_myconv(marks) if marks else layer_class(name)
            padding = attrs.pop("padding")
            layer = cls(**attrs, padding=padding)
        elif name == "Conv2d":
            layer = layer_class(name)(**attrs, bias="bias" in params)
        elif name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
            layer = layer_class(name)(**attrs)
        else:
            layer = layer_class(name)(**attrs)
    except Exception as exc:  # noqa: BLE001 - attributes the constructor refuses
        raise Unsupported(f"{name} with attributes it does not accept ({type(exc).__name__})") from None
    return layer


def build(node: dict, marks=None) -> nn.Module:
    """The described module (a Sequential tree of vocabulary layers)."""
    if node.get("truncated"):
        raise Unsupported("a module nested too deeply")
    if node.get("type") == "Sequential":
        if node.get("params") or node.get("buffers"):
            raise Unsupported("a Sequential with tensors of its own")
        sequential = nn.Sequential()
        for child_name, child in node.get("children") or ():
            sequential.add_module(child_name, build(child, marks))
        return sequential
    if node.get("children"):
        raise Unsupported(f"a {node.get('type')} with submodules")
    return build_layer(node, marks)


def flat_layers(node: dict) -> list:
    """The leaf layers of a described tree, in order: [(vocabulary name or 'other', attrs, class name)]."""
    if node.get("type") == "Sequential":
        layers = []
        for _name, child in node.get("children") or ():
            layers += flat_layers(child)
        return layers
    attrs = {key: _tuple(value) for key, value in (node.get("attrs") or {}).items()}
    return [(node.get("type"), attrs, node.get("class", "?"))]


def load_state(module: nn.Module, tensors: dict, prefix: str) -> None:
    """Load ``tensors[prefix + name]`` for every entry of ``module.state_dict()``; Unsupported if any is missing,
    extra or of another shape."""
    state = module.state_dict()
    found = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
    if set(found) != set(state):
        missing, extra = sorted(set(state) - set(found)), sorted(set(found) - set(state))
        raise Unsupported(f"tensors that do not match its layers (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, value in state.items():
        if found[key].shape != value.shape:
            raise Unsupported(f"a tensor {key} of shape {tuple(found[key].shape)} where its layer has "
                              f"{tuple(value.shape)}")
    module.load_state_dict({key: found[key].clone() for key in state}, strict=True)


def fresh_copy(module: nn.Module) -> nn.Module:
    """An independent copy of a module ``build`` made (vocabulary layers, no hooks), as ``copy.deepcopy`` gives,
    without its generic walk over every attribute: the parent copies each group several times per configuration,
    and deepcopy was a third of its verification time. Parameters, buffers and children are new; the rest of the
    instance's attributes (numbers, tuples, strings, empty hook tables that nothing here fills) are shared."""
    new = copy.copy(module)
    new._parameters = {name: None if p is None else nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
                       for name, p in module._parameters.items()}
    new._buffers = {name: None if b is None else b.clone() for name, b in module._buffers.items()}
    new._modules = {name: None if m is None else fresh_copy(m) for name, m in module._modules.items()}
    return new
