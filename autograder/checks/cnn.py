"""Checks of Part A (class ``CNN``), and the architecture helpers the UNet checks share.

Every check builds small models (NF <= 8) with fixed seeds and runs them in ``eval()`` mode under
``torch.no_grad()`` where no gradient is needed, so a part's checks take a few seconds on two CPU cores.
``MyConv2d`` is always the pristine ``a2cnn.layers.MyConv2d`` (the module the grader imported), never the
name in the namespace, which a submission could have shadowed.
"""
import functools
import importlib
import random

import torch
import torch.nn as nn

from autograder import closed_forms
from autograder.checks.base import CheckFailed, describe_exception, guarded, passed

GROUPS = ("downconv1", "downconv2", "rfconv", "upconv1", "upconv2")
ALL_GROUPS = GROUPS + ("finalconv",)

# The configuration structure checks use: every channel count is distinct, so a swapped argument shows.
# NF=4, 2NF=8, 4NF=16, NC=7, C_in=3, NC+C_in=10, kernel 5.
LAYER_CONFIG = {"kernel": 5, "num_filters": 4, "num_colours": 7, "num_in_channels": 3}
LAYER_INPUT = (2, 3, 32, 32)  # the assignment's size: a hard-coded size costs only the shape checks

SEED = 0
CONFIG_SEED = 20240917
CONFIG_COUNT = 25
# (kernel, NF, NC, C_in, batch, H, W): the notebook's own configuration, a non-square one, the smallest one.
FIXED_CONFIGS = [(3, 8, 24, 1, 2, 32, 32), (5, 4, 7, 3, 1, 16, 24), (1, 1, 1, 1, 1, 4, 4)]

CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
# torch functions that convolve, or build the patches of a convolution (besides every name containing "conv").
_PATCH_OPS = {"im2col", "col2im", "unfold", "fold"}


def one_thread(func):
    """Run a check on one torch thread (restored afterwards). On a busy machine two threads cost far more in
    hand-offs than they gain (measured under load ~5 on 2 cores: 25 CNN configurations 0.3-0.6 s on one thread
    vs 6-10 s on two; one DeepLab fine-tuning step 0.5-1.3 s vs 8-9 s), and the models here are small."""
    @functools.wraps(func)
    def wrapper(ns):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return func(ns)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def pristine_myconv():
    """The MyConv2d class of the pristine helper library imported by the grader."""
    return importlib.import_module("a2cnn.layers").MyConv2d


# --------------------------------------------------------------------------------------------- configurations
def random_configs(count=CONFIG_COUNT, seed=CONFIG_SEED):
    """Fixed configurations first, then seeded random ones: (kernel, NF, NC, C_in, batch, H, W)."""
    rng = random.Random(seed)
    configs = list(FIXED_CONFIGS)
    while len(configs) < count:
        configs.append((rng.choice((1, 3, 5)), rng.randint(1, 8), rng.randint(1, 8), rng.randint(1, 3),
                        rng.randint(1, 3), 4 * rng.randint(1, 12), 4 * rng.randint(1, 12)))
    return configs


def config_kwargs(config):
    kernel, nf, nc, c_in = config[:4]
    return {"kernel": kernel, "num_filters": nf, "num_colours": nc, "num_in_channels": c_in}


def call_text(class_name, kwargs):
    return f"{class_name}(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


# ------------------------------------------------------------------------------------------ building models
def build_model(ns, class_name, kwargs, cell, seed=SEED):
    """``ns[class_name](**kwargs)`` with a fixed seed, in eval mode; CheckFailed with a clear message."""
    cls = ns.get(class_name)
    if cls is None:
        raise CheckFailed(f"no class {class_name} is defined (it belongs in the cell '{cell}')")
    if not isinstance(cls, type):
        raise CheckFailed(f"{class_name} should be a class (an nn.Module subclass), found {type(cls).__name__}")
    torch.manual_seed(seed)
    try:
        model = cls(**kwargs)
    except (Exception, SystemExit) as error:
        raise CheckFailed(f"{call_text(class_name, kwargs)} raised {describe_exception(error)}") from None
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{class_name} should subclass nn.Module; {call_text(class_name, kwargs)} "
                          f"is a {type(model).__name__}")
    model.eval()
    return model


def make_input(shape, requires_grad=False, seed=SEED):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator)
    return x.requires_grad_(requires_grad)


def forward(model, x, class_name, kwargs):
    try:
        with torch.no_grad():
            return model(x)
    except (Exception, SystemExit) as error:
        raise CheckFailed(f"{call_text(class_name, kwargs)} raised {describe_exception(error)} on an input of "
                          f"shape {tuple(x.shape)}") from None


def trainable_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# -------------------------------------------------------------------------------------------- layer structure
def expected_layers(unet, kernel, nf, nc, c_in):
    """group -> [(kind, args, symbolic text)], kind in conv/pool/bn/relu/up; finalconv is a single conv."""
    if unet:
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


def _is_two(value):
    try:
        return all(float(v) == 2.0 for v in _pair(value))
    except (TypeError, ValueError):
        return False


def layer_matches(layer, kind, args):
    if kind == "conv":
        a, b, k = args
        return (isinstance(layer, pristine_myconv()) and layer.in_channels == a and layer.out_channels == b
                and _pair(layer.kernel_size) == (k, k))
    if kind == "pool":
        return isinstance(layer, nn.MaxPool2d) and _is_two(layer.kernel_size) and _is_two(layer.stride)
    if kind == "bn":
        return isinstance(layer, nn.BatchNorm2d) and layer.num_features == args[0]
    if kind == "relu":
        return isinstance(layer, nn.ReLU)
    if kind == "up":
        return isinstance(layer, nn.Upsample) and layer.size is None and _is_two(layer.scale_factor)
    raise ValueError(kind)


def concrete(kind, args):
    if kind == "conv":
        return f"MyConv2d({args[0]}->{args[1]}, kernel {args[2]})"
    if kind == "bn":
        return f"BatchNorm2d({args[0]})"
    return {"pool": "MaxPool2d(2)", "relu": "ReLU", "up": "Upsample(x2)"}[kind]


def describe_layer(layer):
    """Short description of a found layer, in the same words as the expected ones."""
    name = type(layer).__name__
    try:
        if isinstance(layer, pristine_myconv()):
            return f"MyConv2d({layer.in_channels}->{layer.out_channels}, kernel {layer.kernel_size})"
        if name == "MyConv2d":
            return "MyConv2d defined in your notebook (use the one imported from a2cnn.layers)"
        if isinstance(layer, CONV_MODULES):
            return f"nn.{name}({layer.in_channels}->{layer.out_channels}, kernel {layer.kernel_size[0]})"
        if isinstance(layer, nn.MaxPool2d):
            k = layer.kernel_size
            return f"MaxPool2d({k})" if _pair(layer.stride) == _pair(k) else f"MaxPool2d({k}, stride={layer.stride})"
        if isinstance(layer, nn.BatchNorm2d):
            return f"BatchNorm2d({layer.num_features})"
        if isinstance(layer, nn.Upsample):
            if layer.size is not None:
                return f"Upsample(size={layer.size})"
            return "Upsample(x2)" if _is_two(layer.scale_factor) else f"Upsample(x{layer.scale_factor})"
        if isinstance(layer, nn.Sequential):
            return "nn.Sequential(" + ", ".join(describe_layer(sub) for sub in layer) + ")"
    except Exception:  # a strange student layer: fall back to its class name
        pass
    return name


def structure_problems(model, unet, kernel, nf, nc, c_in):
    """Human-readable problems of the six groups of ``model`` (empty when it matches the architecture)."""
    problems = []
    for group, expected in expected_layers(unet, kernel, nf, nc, c_in).items():
        symbolic = ", ".join(text for _, _, text in expected)
        wanted = ", ".join(concrete(kind, args) for kind, args, _ in expected)
        module = getattr(model, group, None)
        if group == "finalconv":
            kind, args, text = expected[0]
            if module is None:
                problems.append(f"finalconv is missing: it should be a {text} = {wanted}")
            elif not layer_matches(module, kind, args):
                problems.append(f"finalconv should be a {text} = {wanted}; found {describe_layer(module)}")
            continue
        if module is None:
            problems.append(f"{group} is missing: it should be nn.Sequential({symbolic})")
            continue
        if not isinstance(module, nn.Sequential):
            problems.append(f"{group} should be an nn.Sequential of {symbolic}; found {describe_layer(module)}")
            continue
        layers = list(module)
        if len(layers) == len(expected) and all(layer_matches(layer, kind, args)
                                                for layer, (kind, args, _) in zip(layers, expected)):
            continue
        found = ", ".join(describe_layer(layer) for layer in layers) or "an empty nn.Sequential"
        problems.append(f"{group} should be {symbolic} = {wanted}; found {found}")
    return problems


def structure_outcome(ns, class_name, cell, unet):
    kwargs = dict(LAYER_CONFIG)
    model = build_model(ns, class_name, kwargs, cell)
    problems = structure_problems(model, unet, kwargs["kernel"], kwargs["num_filters"], kwargs["num_colours"],
                                  kwargs["num_in_channels"])
    convs = [f"nn.{type(m).__name__} at {name or 'the model'}" for name, m in model.named_modules()
             if isinstance(m, CONV_MODULES)]
    if unet and convs:  # (the CNN has a check of its own for this)
        problems.append(f"use MyConv2d, not torch's convolution modules: found {', '.join(convs[:5])}")
    if problems:
        shown = problems[:6]
        raise CheckFailed(f"with {call_text(class_name, kwargs)}: " + "; ".join(shown))
    return passed(f"all six groups have the layers and channel numbers of the architecture "
                  f"(checked with {call_text(class_name, kwargs)})")


# ------------------------------------------------------------------------------------ shapes and parameters
def first_shape_problem(ns, class_name, cell, shape_formula, configs):
    for config in configs:
        kwargs = config_kwargs(config)
        n, h, w = config[4:]
        model = build_model(ns, class_name, kwargs, cell)
        x = make_input((n, kwargs["num_in_channels"], h, w))
        out = forward(model, x, class_name, kwargs)
        expected = shape_formula(n, *config[:4], h, w)
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        if got != expected:
            what = f"shape {got}" if got is not None else f"a {type(out).__name__}, not a tensor"
            hint = ""
            if got is not None and len(got) == 4 and got[:2] == expected[:2]:
                hint = (": height and width must follow the input (keep MyConv2d's default padding k // 2, "
                        "MaxPool2d(2) and Upsample(scale_factor=2); no hard-coded sizes such as 32)")
            return (f"{call_text(class_name, kwargs)} on an input of shape {tuple(x.shape)} returned {what}; "
                    f"expected {expected} (N, NC, H, W){hint}")
    return None


def first_count_problem(ns, class_name, cell, total_formula, group_formula, formula_text, configs):
    for config in configs:
        kwargs = config_kwargs(config)
        model = build_model(ns, class_name, kwargs, cell)
        got, expected = trainable_parameters(model), total_formula(*config[:4])
        if got == expected:
            continue
        details = []
        groups = group_formula(*config[:4])
        seen = set()
        for group, want in groups.items():
            module = getattr(model, group, None)
            have = trainable_parameters(module) if isinstance(module, nn.Module) else 0
            if isinstance(module, nn.Module):
                seen.update(id(p) for p in module.parameters())
            if have != want:
                details.append(f"{group} has {have}, expected {want}")
        other = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in seen)
        if other:
            details.append(f"{other} more outside the six groups")
        detail = f" ({'; '.join(details)})" if details else ""
        return (f"{call_text(class_name, kwargs)} has {got} trainable parameters, expected {expected} = "
                f"{formula_text}{detail}")
    return None


CNN_FORMULA = "k²(C_in·NF + 8NF² + NF·NC + NC²) + 18NF + 4NC"
UNET_FORMULA = "k²(C_in·NF + 10NF² + 2NF·NC + NC² + C_in·NC) + 18NF + 4NC"


# ----------------------------------------------------------------------------------- convolutions in forward
def _conv_op_name(func):
    name = getattr(func, "__name__", "") or ""
    if ("conv" in name and "convert" not in name) or name in _PATCH_OPS:
        return name
    return None


def convolution_calls(model, x):
    """Run ``model(x)``; return (calls inside MyConv2d.forward, [functions called outside], error or None).

    MyConv2d.forward is wrapped at class level (so ``layer(x)`` and ``layer.forward(x)`` both count), and every
    torch function is observed through a ``TorchFunctionMode``, which sees the function itself whatever name,
    alias or module the code used to reach it (``F.conv2d``, ``torch.conv2d``, ``from torch.nn.functional import
    conv2d as c``, ``nn.Conv2d``, ``F.unfold``, ``Tensor.unfold``). (A ``TorchDispatchMode`` would also see
    ``torch.ops.aten`` calls, but its first use imports sympy: seconds, for no realistic gain.)
    """
    from torch.overrides import TorchFunctionMode

    MyConv2d = pristine_myconv()
    original = MyConv2d.__dict__["forward"]
    depth, inside, outside = [0], [0], []

    def counted_forward(self, *args, **kwargs):
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    class ConvolutionObserver(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = _conv_op_name(func)
            if name is not None:
                if depth[0] > 0:
                    inside[0] += 1
                else:
                    outside.append(name)
            return func(*args, **(kwargs or {}))

    error = None
    MyConv2d.forward = counted_forward
    try:
        with torch.no_grad(), ConvolutionObserver():
            model(x)
    except (Exception, SystemExit) as exc:
        error = exc
    finally:
        MyConv2d.forward = original
    return inside[0], outside, error


def only_myconv_outcome(ns, class_name, cell):
    kwargs = dict(LAYER_CONFIG)
    model = build_model(ns, class_name, kwargs, cell)
    modules = [(name or "the model", type(m).__name__) for name, m in model.named_modules() if isinstance(m, CONV_MODULES)]
    if modules:
        listed = ", ".join(f"nn.{kind} at {name}" for name, kind in modules[:5])
        raise CheckFailed(f"use MyConv2d for every convolution, not torch's convolution modules: found {listed}")
    x = make_input(LAYER_INPUT)
    inside, outside, error = convolution_calls(model, x)
    if outside:
        names = sorted(set(outside))
        raise CheckFailed(
            f"{len(outside)} convolution call(s) ({', '.join(names)}) ran outside any MyConv2d layer during a forward "
            f"pass of {call_text(class_name, kwargs)}: convolve only by calling your MyConv2d layers, never "
            f"F.conv2d / torch.conv2d / unfold yourself")
    if error is not None:
        raise CheckFailed(f"{call_text(class_name, kwargs)} raised {describe_exception(error)} on an input of shape "
                          f"{tuple(x.shape)}, so its convolutions could not be checked")
    if inside == 0:
        raise CheckFailed(f"no MyConv2d convolution ran during a forward pass of {call_text(class_name, kwargs)}")
    return passed(f"no nn.Conv modules, and all {inside} convolutions of a forward pass ran inside MyConv2d layers")


# -------------------------------------------------------------------------------------------------- checks
@guarded
@one_thread
def cnn_layers(ns):
    """The five nn.Sequential groups and finalconv have exactly the architecture's layers, in order."""
    return structure_outcome(ns, "CNN", "cnn_model", unet=False)


@guarded
@one_thread
def cnn_only_myconv(ns):
    """No torch convolution module, and every convolution of a forward pass happens inside MyConv2d."""
    return only_myconv_outcome(ns, "CNN", "cnn_model")


@guarded
@one_thread
def cnn_output_shapes(ns):
    """Output shape (N, NC, H, W) for many configurations and input sizes."""
    configs = random_configs()
    problem = first_shape_problem(ns, "CNN", "cnn_model", closed_forms.cnn_output_shape, configs)
    if problem:
        raise CheckFailed(problem)
    return passed(f"output shape (N, NC, H, W) correct for {len(configs)} configurations and input sizes")


@guarded
@one_thread
def cnn_parameter_counts(ns):
    """Trainable parameter count equals the closed form for many configurations."""
    configs = random_configs()
    problem = first_count_problem(ns, "CNN", "cnn_model", closed_forms.cnn_parameter_count,
                                  closed_forms.cnn_group_parameter_counts, CNN_FORMULA, configs)
    if problem:
        raise CheckFailed(problem)
    return passed(f"trainable parameter count equals {CNN_FORMULA} for {len(configs)} configurations")
