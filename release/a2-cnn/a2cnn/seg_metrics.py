"""IoU and pixel accuracy for segmentation label maps (plain torch).

All functions take integer label maps of the same shape (any number of dimensions,
e.g. (H, W) or (N, H, W)); ``pred`` holds predicted labels (the argmax of the logits,
not the logits) and ``target`` the ground-truth labels.

Convention for an empty union: when neither ``pred`` nor ``target`` contains class ``c``
anywhere, the IoU of ``c`` is defined as 1.0 -- the prediction agrees perfectly with the
ground truth that the class is absent. (The alternative, NaN, would poison averages over
images such as a background-only crop.)
"""
import torch

__all__ = ["confusion", "iou", "iou_from_confusion", "mean_iou", "pixel_accuracy"]


def _check(pred, target):
    pred = torch.as_tensor(pred)
    target = torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise TypeError("pred and target must be integer label maps (take argmax over the class logits first)")
    return pred.reshape(-1).long(), target.reshape(-1).to(pred.device).long()


def confusion(pred, target, num_classes=2):
    """Confusion matrix of shape (num_classes, num_classes): entry [t, p] counts pixels with target t, prediction p."""
    pred, target = _check(pred, target)
    if pred.numel() and (min(pred.min(), target.min()) < 0 or max(pred.max(), target.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu()


def iou_from_confusion(matrix, cls=1):
    """IoU of class ``cls`` from a confusion matrix (e.g. one summed over a whole data set)."""
    matrix = torch.as_tensor(matrix)
    intersection = matrix[cls, cls].item()
    union = matrix[cls, :].sum().item() + matrix[:, cls].sum().item() - intersection
    return 1.0 if union == 0 else intersection / union


def iou(pred, target, cls=1):
    """Intersection over union of class ``cls`` (default 1 = flower); 1.0 when the union is empty."""
    pred, target = _check(pred, target)
    p = pred == cls
    t = target == cls
    union = (p | t).sum().item()
    if union == 0:
        return 1.0
    return (p & t).sum().item() / union


def mean_iou(pred, target, num_classes=2):
    """Mean over classes 0..num_classes-1 of :func:`iou` (each class with the empty-union rule)."""
    return sum(iou(pred, target, cls=c) for c in range(num_classes)) / num_classes


def pixel_accuracy(pred, target):
    """Fraction of pixels whose predicted label equals the target label."""
    pred, target = _check(pred, target)
    if pred.numel() == 0:
        raise ValueError("pixel_accuracy of an empty label map is undefined")
    return (pred == target).sum().item() / pred.numel()
