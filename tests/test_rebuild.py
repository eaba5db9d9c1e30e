"""The parent's copies of rebuilt groups: as independent as copy.deepcopy's, so replaying one (training mode moves
BatchNorm's running statistics, a gradient pass fills .grad) never changes the group the next check starts from."""
import copy

import torch
import torch.nn as nn

from autograder.verify.rebuild import build, fresh_copy, load_state
from autograder.worker.marks import draw

GROUP = {"type": "Sequential", "children": [
    ["0", {"type": "MyConv2d", "attrs": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1},
           "params": ["weight", "bias"]}],
    ["1", {"type": "BatchNorm2d", "attrs": {"num_features": 4, "eps": 1e-5, "momentum": 0.1, "affine": True,
                                            "track_running_stats": True}, "params": ["weight", "bias"]}],
    ["2", {"type": "ReLU", "attrs": {"inplace": False}}],
]}


def _group():
    torch.manual_seed(0)
    module = build(GROUP, draw(7))
    state = {f"g.{k}": torch.randn_like(v) if v.is_floating_point() else v for k, v in module.state_dict().items()}
    state["g.1.running_var"] = state["g.1.running_var"].abs() + 0.5
    load_state(module, state, "g.")
    return module


def test_a_copy_computes_what_deepcopy_computes_in_both_modes():
    module, x = _group(), torch.randn(2, 3, 8, 8)
    for train in (True, False):
        ours, theirs = fresh_copy(module).train(train), copy.deepcopy(module).train(train)
        out_ours, out_theirs = ours(x), theirs(x)
        assert torch.equal(out_ours, out_theirs)
        out_ours.sum().backward()
        out_theirs.sum().backward()
        for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert torch.equal(p.grad, q.grad), name
        for (name, b), (_, c) in zip(ours.named_buffers(), theirs.named_buffers()):
            assert torch.equal(b, c), name


def test_replaying_a_copy_leaves_the_original_as_it_was():
    module = _group()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clone = fresh_copy(module).train()
    clone(torch.randn(2, 3, 8, 8) * 5 + 3).sum().backward()  # running statistics move, gradients appear
    with torch.no_grad():
        clone[0].weight.add_(1.0)
    clone.double()
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in module.parameters())
    assert module.training is True and not clone[1].running_mean.equal(module[1].running_mean)
    assert isinstance(clone[1].weight, nn.Parameter) and clone[1].weight.requires_grad
    assert module[0].weight.dtype == torch.float32


def test_the_mode_of_a_copy_is_its_own():
    module = _group().train()
    fresh_copy(module).eval()
    assert all(m.training for m in module.modules())
