"""Checks of Part B (class ``UNet``): layers, skip channels, real dependence on every skip, shapes and counts."""
import torch

from autograder import closed_forms
from autograder.checks.base import CheckFailed, describe_exception, guarded, passed
from autograder.checks.cnn import (
    LAYER_CONFIG,
    LAYER_INPUT,
    UNET_FORMULA,
    build_model,
    call_text,
    first_count_problem,
    first_shape_problem,
    SEED,
    make_input,
    one_thread,
    random_configs,
    structure_outcome,
)

CLASS, CELL = "UNet", "unet_model"

# skip -> (group whose output is skipped or None for the input x, receiving group, main-path group to cut, text)
SKIPS = (
    ("downconv2", "upconv1", "rfconv", "downconv2's output (concatenated into upconv1's input)"),
    ("downconv1", "upconv2", "downconv2", "downconv1's output (concatenated into upconv2's input)"),
    (None, "finalconv", "downconv1", "the input x (concatenated into finalconv's input)"),
)
DEPENDENCE_SEEDS = (SEED, SEED + 1, SEED + 2)
CAT_TEXT = {
    "upconv1": "4NF = rfconv's 2NF + downconv2's 2NF",
    "upconv2": "2NF = upconv1's NF + downconv1's NF",
    "finalconv": "NC + C_in = upconv2's NC + the input's C_in",
}


def _first_tensor(args):
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg
    return None


def _group(model, name):
    module = getattr(model, name, None)
    if not isinstance(module, torch.nn.Module):
        raise CheckFailed(f"UNet has no module {name} (the groups are downconv1, downconv2, rfconv, upconv1, "
                          f"upconv2, finalconv)")
    return module


@guarded
@one_thread
def unet_layers(ns):
    """Groups with the architecture's layers and concatenated input channels; no torch convolution modules."""
    return structure_outcome(ns, CLASS, CELL, unet=True)


@guarded
@one_thread
def unet_skip_channels(ns):
    """Channels upconv1, upconv2 and finalconv actually receive in a forward pass."""
    kwargs = dict(LAYER_CONFIG)
    model = build_model(ns, CLASS, kwargs, CELL)
    expected = closed_forms.unet_concat_channels(kwargs["num_filters"], kwargs["num_colours"],
                                                 kwargs["num_in_channels"])
    received, handles = {}, []

    def recorder(name):
        def hook(module, args):
            tensor = _first_tensor(args)
            received.setdefault(name, tensor.shape[1] if tensor is not None and tensor.dim() > 1 else None)
        return hook

    try:
        for name in expected:
            handles.append(_group(model, name).register_forward_pre_hook(recorder(name)))
        x = make_input(LAYER_INPUT)
        error = None
        try:
            with torch.no_grad():
                model(x)
        except (Exception, SystemExit) as exc:
            error = exc
    finally:
        for handle in handles:
            handle.remove()
    problems = []
    for name, want in expected.items():
        if name not in received:
            if error is None:
                problems.append(f"{name} was never called in forward")
            continue
        if received[name] != want:
            problems.append(f"{name} received {received[name]} channels, expected {want} ({CAT_TEXT[name]}, "
                            f"joined with torch.cat(..., dim=1))")
    where = f"a forward pass of {call_text(CLASS, kwargs)} on an input of shape {LAYER_INPUT}"
    if problems:
        raise CheckFailed(f"in {where}: " + "; ".join(problems))
    if error is not None:
        raise CheckFailed(f"{where} raised {describe_exception(error)}")
    return passed("upconv1, upconv2 and finalconv receive 4NF, 2NF and NC + C_in channels")


def _skip_gradient(model, source, cut, x):
    """Gradient reaching ``source``'s output when the main path after it is cut (its input detached) at ``cut``."""
    kept, handles = [], []

    def cut_hook(module, args):
        return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)

    def keep_hook(module, args, output):
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.retain_grad()
            kept.append(output)

    try:
        handles.append(_group(model, cut).register_forward_pre_hook(cut_hook))
        handles.append(_group(model, source).register_forward_hook(keep_hook))
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"UNet's forward returned a {type(out).__name__}, not a tensor")
    if not out.requires_grad:
        return 0.0
    out.sum().backward()
    return max((t.grad.abs().sum().item() for t in kept if t.grad is not None), default=0.0)


def _input_change(model, cut, x):
    """How much the output moves when x changes but ``cut`` (the main path's first group) still sees the old x.

    The input is data, so a detached copy of x in the skip is as good as x itself: a perturbation, not a
    gradient, decides this one.
    """
    pinned = x.detach().clone()

    def pin_hook(module, args):
        return (pinned,) + tuple(args[1:])

    generator = torch.Generator().manual_seed(SEED + 1)
    moved = pinned + torch.randn(pinned.shape, generator=generator)
    handle = _group(model, cut).register_forward_pre_hook(pin_hook)
    try:
        with torch.no_grad():
            a, b = model(pinned), model(moved)
    finally:
        handle.remove()
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        raise CheckFailed(f"UNet's forward returned a {type(a).__name__}, not a tensor")
    return (a - b).abs().sum().item()


@guarded
@one_thread
def unet_skip_dependence(ns):
    """The output depends on every skipped tensor through its skip, not only through the main path."""
    kwargs = dict(LAYER_CONFIG)
    problems = []
    for source, receiver, cut, text in SKIPS:
        # A skip that is really used can still show no gradient for one random initialisation, when every ReLU
        # after it happens to be inactive; a few seeds rule that out (a missing skip is zero for all of them).
        for seed in DEPENDENCE_SEEDS:
            model = build_model(ns, CLASS, kwargs, CELL, seed=seed)  # fresh model per attempt, eval mode
            x = make_input(LAYER_INPUT, requires_grad=True, seed=seed)
            try:
                if source is None:
                    magnitude = _input_change(model, cut, x)
                else:
                    magnitude = _skip_gradient(model, source, cut, x)
            except CheckFailed:
                raise
            except (Exception, SystemExit) as error:
                raise CheckFailed(f"{call_text(CLASS, kwargs)} raised {describe_exception(error)} in a "
                                  f"forward/backward pass on an input of shape {LAYER_INPUT}") from None
            if magnitude > 0:
                break
        else:
            problems.append(text)
    if problems:
        raise CheckFailed(
            "the output does not depend on " + " nor on ".join(problems) + " through its skip connection (checked "
            "with the main path cut just after the skipped tensor: no gradient, or for x no change, reaches the "
            "output). Concatenate the tensor itself, torch.cat([decoder tensor, skipped tensor], dim=1), not zeros, "
            "a constant, a detached copy or another tensor")
    return passed("the output depends on downconv1's and downconv2's outputs and on the input through the skips")


@guarded
@one_thread
def unet_shapes_and_parameters(ns):
    """Output shape (N, NC, H, W) and trainable parameter count equal the closed forms for many configs."""
    configs = random_configs()
    problem = first_shape_problem(ns, CLASS, CELL, closed_forms.unet_output_shape, configs)
    if problem is None:
        problem = first_count_problem(ns, CLASS, CELL, closed_forms.unet_parameter_count,
                                      closed_forms.unet_group_parameter_counts, UNET_FORMULA, configs)
    if problem:
        raise CheckFailed(problem)
    return passed(f"output shape (N, NC, H, W) and trainable parameter count {UNET_FORMULA} correct for "
                  f"{len(configs)} configurations")
