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

Why fine-tuning the last layer costs one backbone pass, not one per epoch
---------------------------------------------------------------------------
With everything but ``classifier.4`` frozen and in ``eval()`` mode, the features entering ``classifier.4`` depend
on the picture alone: they are the same in every epoch. ``run_finetune_epochs`` therefore computes them once per
picture (in the first epoch) and trains the head on the kept features afterwards: the same batches in the same
order, the same loss, the same head, up to float rounding. It does so only when that is exact, and trains the
whole model on every batch otherwise (see ``_feature_cache_plan``): a torchvision DeepLabV3 (or FCN) of the
standard form, no trainable parameter outside ``classifier.4``, every module in eval mode, no hooks, and a
DataLoader over a dataset known to return the same picture every time (no augmentation). The kept features take
``FEATURE_CACHE_BYTES`` at most (2 GiB): at 224x224, DeepLabV3-ResNet hands ``classifier.4`` 256x28x28 floats, 784 KiB
per picture (plus 49 KiB for its mask), so about 2,500 pictures fit; a larger training set is trained uncached.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset, default_collate
from tqdm.auto import tqdm

from . import run_cache, seg_metrics, settings

__all__ = ["run_finetune_epochs", "evaluate", "predict"]


def _logits(model, images):
    out = model(images)
    return out["out"] if isinstance(out, dict) else out


def run_finetune_epochs(model, train_loader, optimizer, epochs, device, progress=True, feature_cache=True):
    """Train for ``epochs`` epochs; return the mean training loss of each epoch (per pixel cross-entropy).

    The model is put (and left) in ``eval()`` mode -- see the module docstring -- so only the
    parameters in ``optimizer`` change. The loss is the cross-entropy of ``model(x)["out"]``
    against the integer masks; the epoch mean weights each batch by its number of images.
    With ``feature_cache`` (the default) the frozen part runs once per picture whenever that gives the same
    result (module docstring); ``False`` runs the whole model on every batch.
    """
    device = torch.device(device)
    model.to(device)
    model.eval()
    run_key = _run_key(model, train_loader, optimizer, epochs, device)
    kept = run_cache.load(run_key, model)
    if kept is not None:
        return kept
    cache = _FeatureCache.for_run(model, train_loader, device) if feature_cache else None
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        # with the cache the bar wraps a loader of indices drawn as train_loader draws them, so that whatever the
        # bar does with its loader (tqdm.auto starts one extra iteration, a random draw) happens alike
        what = " (frozen features kept)" if cache is not None else ""
        bar = tqdm(cache.index_loader() if cache is not None else train_loader,
                   desc=f"fine-tune epoch {epoch + 1}/{epochs}{what}", disable=not progress, leave=False)
        for images, masks in cache.batches(bar) if cache is not None else bar:
            if isinstance(images, _Features):  # kept features of the batch's pictures
                logits = images.logits()
            else:
                images = images.to(device)
                logits = _logits(model, images)
            masks = masks.to(device, dtype=torch.long)
            loss = F.cross_entropy(logits, masks)
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


FEATURE_CACHE_BYTES = 2 * 1024**3  # most memory the kept features (and masks) of one run may take


def _feature_cache_plan(model, loader):
    """``(frozen, head)`` when the features entering ``classifier.4`` can be kept exactly, else None.

    ``frozen(images)`` computes those features (backbone, then ``classifier[0:4]``); ``head`` is ``classifier[4]``.
    Exact means: the model's output is ``interpolate(head(frozen(images)))`` (torchvision's segmentation forward and
    a plain five-layer classifier), nothing before the head changes or is random (no trainable parameter outside the
    head, every module in eval mode, so no BatchNorm update and no dropout, and no hooks that could see the frozen
    part run), and the loader gives the same picture for an index every time (a DataLoader with the default collate
    and no persistent workers, over a dataset known to have no augmentation: FlowerSegmentation or a TensorDataset of
    images and masks, or a Subset of one)."""
    from torchvision.models.segmentation import DeepLabV3

    from .oxford17 import FlowerSegmentation

    classifier = getattr(model, "classifier", None)
    if (type(model).forward is not DeepLabV3.forward or not isinstance(classifier, nn.Sequential)
            or type(classifier).forward is not nn.Sequential.forward or len(classifier) != 5):
        return None
    head = classifier[4]
    head_parameters = {id(p) for p in head.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable or any(id(p) not in head_parameters for p in trainable):
        return None
    if any(m.training for m in model.modules()):
        return None
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    global_hooks = (nn.modules.module._global_forward_hooks, nn.modules.module._global_forward_pre_hooks,
                    nn.modules.module._global_backward_hooks, nn.modules.module._global_backward_pre_hooks)
    if any(getattr(m, name, None) for m in model.modules() for name in hooks) or any(global_hooks):
        return None
    if (not isinstance(loader, DataLoader) or loader.batch_sampler is None or loader.persistent_workers
            or loader.collate_fn is not default_collate):
        return None
    dataset = loader.dataset
    while type(dataset) is Subset:
        dataset = dataset.dataset
    if type(dataset) is not FlowerSegmentation and not (type(dataset) is TensorDataset and len(dataset.tensors) == 2):
        return None
    before_head = list(classifier)[:4]

    def frozen(images):
        features = model.backbone(images)["out"]
        for layer in before_head:
            features = layer(features)
        return features

    return frozen, head


class _Features:
    """A batch of kept features standing in for its pictures: ``logits()`` is what the model would return."""

    def __init__(self, features, size, head):
        self.features, self.size, self.head = features, size, head
        self.shape = features.shape

    def logits(self):
        # the last two steps of torchvision's segmentation forward
        return F.interpolate(self.head(self.features), size=self.size, mode="bilinear", align_corners=False)


class _FeatureCache:
    """The features entering ``classifier.4``, and the mask, of every picture of a loader, computed when the
    picture first comes up and kept for the later epochs."""

    def __init__(self, frozen, head, loader, device):
        self.frozen, self.head, self.loader, self.device = frozen, head, loader, device
        self.kept, self.bytes, self.full = {}, 0, False

    @classmethod
    def for_run(cls, model, loader, device):
        plan = _feature_cache_plan(model, loader)
        return None if plan is None else cls(*plan, loader, device)

    def index_loader(self):
        """The loader's batches of indices, drawn as the loader draws them (same batch sampler and generator, so
        the random numbers taken and the order are the loader's own), without loading any picture."""
        return DataLoader(range(len(self.loader.dataset)), batch_sampler=self.loader.batch_sampler,
                          generator=self.loader.generator, collate_fn=list)

    def _entries(self, indices):
        """``index -> (features, mask, picture size)`` for a batch: kept pictures reused, the others loaded and run
        through the frozen part, and kept while every picture of the loader would fit in ``FEATURE_CACHE_BYTES``
        (when they would not, nothing is kept any more and the later batches are plain ones)."""
        entries = {i: self.kept[i] for i in indices if i in self.kept}
        missing = [i for i in indices if i not in self.kept]
        if missing:
            images, masks = default_collate([self.loader.dataset[i] for i in missing])
            with torch.no_grad():
                features = self.frozen(images.to(self.device))
            masks = masks.to(self.device)
            if masks.dtype == torch.int64 and masks.numel() and 0 <= masks.min() and masks.max() < 256:
                masks = masks.to(torch.uint8)  # labels 0/1: a byte each, read back exactly
            fresh = {i: (features[j], masks[j], tuple(images.shape[-2:])) for j, i in enumerate(missing)}
            entries.update(fresh)
            per_picture = features[0].nbytes + masks[0].nbytes
            if self.bytes + per_picture * (len(self.loader.dataset) - len(self.kept)) > FEATURE_CACHE_BYTES:
                self.full, self.kept = True, {}
            else:
                self.kept.update(fresh)
                self.bytes += per_picture * len(fresh)
        return entries

    def batches(self, index_batches):
        """The batches of ``index_batches`` (from ``index_loader``) as the loader would make them:
        ``(_Features, masks)``, or ``(images, masks)`` once the features would not fit in ``FEATURE_CACHE_BYTES``."""
        for indices in index_batches:
            if self.full:
                yield default_collate([self.loader.dataset[i] for i in indices])
                continue
            entries = self._entries(indices)
            features = torch.stack([entries[i][0] for i in indices])
            masks = torch.stack([entries[i][1] for i in indices])
            yield _Features(features, entries[indices[0]][2], self.head), masks


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
