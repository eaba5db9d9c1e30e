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

from . import run_cache, seg_metrics, settings

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
    run_key = _run_key(model, train_loader, optimizer, epochs, device)
    kept = run_cache.load(run_key, model)
    if kept is not None:
        return kept
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
    run_cache.save(run_key, model, losses, what=f"fine-tuning, {epochs} epoch(s): {losses}")
    return losses


def _run_key(model, loader, optimizer, epochs, device):
    """Key of a fine-tuning run for :mod:`a2cnn.run_cache`, or None when it cannot be described exactly (no cache
    set, or a loader that is not a DataLoader over a FlowerSegmentation): then it always trains."""
    dataset = getattr(loader, "dataset", None)
    if settings.run_cache_dir() is None or not hasattr(dataset, "indices") or not hasattr(loader, "batch_size"):
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    learned = [[names.get(id(p), "?") for p in group["params"]] for group in optimizer.param_groups]
    options = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    generator = getattr(loader, "generator", None)
    return run_cache.key("finetune", run_cache.model_state(model), type(optimizer).__name__, learned, options, epochs,
                         device.type, [type(dataset).__name__, list(dataset.indices), getattr(dataset, "size", None),
                                       getattr(dataset, "mask_source", None), loader.batch_size,
                                       type(getattr(loader, "sampler", None)).__name__,
                                       generator.get_state() if generator is not None else None])


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
