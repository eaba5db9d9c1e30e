"""IoU, confusion matrix and pixel accuracy against brute-force references."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from torchmetrics.functional import classification as tm

from a2cnn import seg_metrics


def label_pairs(num_classes):
    shapes = st.tuples(st.integers(1, 6), st.integers(1, 6))
    return shapes.flatmap(lambda shape: st.tuples(
        arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)),
        arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)),
    ))


def brute_iou(pred, target, cls):
    inter = union = 0
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        inter += (p == cls and t == cls)
        union += (p == cls or t == cls)
    return 1.0 if union == 0 else inter / union


def brute_accuracy(pred, target):
    pairs = list(zip(pred.ravel().tolist(), target.ravel().tolist()))
    return sum(p == t for p, t in pairs) / len(pairs)


@settings(max_examples=200, deadline=None)
@given(label_pairs(3), st.integers(0, 2))
def test_iou_properties(pair, cls):
    pred, target = (torch.from_numpy(a) for a in pair)
    value = seg_metrics.iou(pred, target, cls=cls)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(brute_iou(pair[0], pair[1], cls))
    assert value == pytest.approx(seg_metrics.iou(target, pred, cls=cls))  # symmetric
    assert seg_metrics.iou(pred, pred, cls=cls) == 1.0


@settings(max_examples=200, deadline=None)
@given(label_pairs(2))
def test_pixel_accuracy_and_confusion_match_brute_force(pair):
    pred, target = (torch.from_numpy(a) for a in pair)
    assert seg_metrics.pixel_accuracy(pred, target) == pytest.approx(brute_accuracy(*pair))
    assert seg_metrics.pixel_accuracy(pred, pred) == 1.0
    matrix = seg_metrics.confusion(pred, target, num_classes=2)
    for t in range(2):
        for p in range(2):
            assert matrix[t, p].item() == int(((pair[1] == t) & (pair[0] == p)).sum())
    assert seg_metrics.iou_from_confusion(matrix, cls=1) == pytest.approx(seg_metrics.iou(pred, target, cls=1))
    assert seg_metrics.mean_iou(pred, target) == pytest.approx(
        (brute_iou(*pair, cls=0) + brute_iou(*pair, cls=1)) / 2)


def test_known_values_and_empty_union():
    pred = torch.tensor([[1, 1, 0, 0]])
    target = torch.tensor([[1, 0, 1, 0]])
    assert seg_metrics.iou(pred, target) == pytest.approx(1 / 3)
    assert seg_metrics.iou(pred, target, cls=0) == pytest.approx(1 / 3)
    assert seg_metrics.pixel_accuracy(pred, target) == 0.5
    zeros = torch.zeros(3, 3, dtype=torch.long)
    assert seg_metrics.iou(zeros, zeros, cls=1) == 1.0  # documented empty-union convention
    assert seg_metrics.iou(zeros, torch.ones_like(zeros), cls=1) == 0.0


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        seg_metrics.iou(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError):
        seg_metrics.iou(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        seg_metrics.confusion(torch.tensor([2]), torch.tensor([0]), num_classes=2)


def test_agrees_with_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        pred = torch.randint(0, 2, (2, 8, 8), generator=generator)
        target = torch.randint(0, 2, (2, 8, 8), generator=generator)
        expected = tm.binary_jaccard_index(pred, target).item()
        assert seg_metrics.iou(pred, target) == pytest.approx(expected, abs=1e-6)
        assert seg_metrics.pixel_accuracy(pred, target) == pytest.approx(tm.binary_accuracy(pred, target).item())
