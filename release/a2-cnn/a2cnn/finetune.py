"""Part C: the fine-tuning loop behind the student's ``train``, evaluation and prediction.

Why the whole model stays in ``eval()`` mode while fine-tuning
----------------------------------------------------------------
"Frozen" must mean that nothing but the new last layer changes. ``requires_grad_(False)`` only stops
gradients; in ``train()`` mode every BatchNorm layer would still overwrite its running mean and variance
with statistics of the flower batches (buffers, not parameters, so no optimizer is involved), and
dropout would randomly zero activations. The "frozen" backbone would then drift away from the
pretrained one. In ``eval()`` mode BatchNorm normalises with -- and keeps -- its stored statistics and
dropout is off, so the only tensors that change are the parameters handed to the optimizer
(``classifier.4.weight`` and ``classifier.4.bias``). Gradients still flow in ``eval()`` mode.
"""
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import seg_metrics

__all__ = ["run_finetune_epochs", "evaluate", "predict"]


def _logits(model, images):
    out = model(images)
    return out["out"] if isinstance(out, dict) else out


def run_finetune_epochs(model, train_loader, optimizer, epochs, device, progress=True):
    """Train for ``epochs`` epochs; return the mean training loss of each epoch (per pixel cross-entropy).

    The model is put (and left) in ``eval()`` mode -- see the module docstring -- so only the
    parameters in ``optimizer`` change. The loss is the cross-entropy of ``model(x)["out"]``
    against the integer masks; the epoch mean weights each batch by its number of images.
    """
    device = torch.device(device)
    model.to(device)
    model.eval()
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        bar = tqdm(train_loader, desc=f"fine-tune epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for images, masks in bar:
            images = images.to(device)
            masks = masks.to(device, dtype=torch.long)
            loss = F.cross_entropy(_logits(model, images), masks)
            if not loss.requires_grad:
                raise RuntimeError("no parameter of the model requires a gradient: unfreeze the new last layer "
                                   "(classifier.4) and pass its parameters to the optimizer")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * images.shape[0]
            count += images.shape[0]
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if count == 0:
            raise ValueError("train_loader yielded no batches")
        losses.append(total / count)
    return losses


@torch.no_grad()
def evaluate(model, loader, device):
    """``{"loss", "iou", "pixel_accuracy"}`` over the whole loader, model in ``eval()`` mode.

    ``loss`` is the mean per-pixel cross-entropy (batches weighted by image count); ``iou`` is the
    flower-class (label 1) IoU of the confusion matrix summed over all images (empty union -> 1.0);
    ``pixel_accuracy`` the fraction of correctly labelled pixels.
    """
    device = torch.device(device)
    model.to(device)
    model.eval()
    total, count = 0.0, 0
    matrix = torch.zeros(2, 2, dtype=torch.long)
    for images, masks in loader:
        images = images.to(device)
        masks = masks.to(device, dtype=torch.long)
        logits = _logits(model, images)
        total += F.cross_entropy(logits, masks).item() * images.shape[0]
        count += images.shape[0]
        pred = logits.argmax(dim=1)
        if logits.shape[1] != 2:
            # e.g. the 21 VOC outputs before classifier.4 is replaced: score "label 1" against everything
            # else so the numbers stay defined (they only mean something with 2 outputs).
            pred = (pred == 1).long()
        matrix += seg_metrics.confusion(pred, masks, num_classes=2)
    if count == 0:
        raise ValueError("loader yielded no batches")
    correct = matrix.diagonal().sum().item()
    return {
        "loss": total / count,
        "iou": seg_metrics.iou_from_confusion(matrix, cls=1),
        "pixel_accuracy": correct / matrix.sum().item(),
    }


@torch.no_grad()
def predict(model, images, device):
    """Predicted label maps (argmax over classes) on the CPU: (N, H, W), or (H, W) for one 3xHxW image."""
    device = torch.device(device)
    single = images.dim() == 3
    if single:
        images = images.unsqueeze(0)
    model.to(device)
    model.eval()
    labels = _logits(model, images.to(device)).argmax(dim=1).cpu()
    return labels[0] if single else labels
