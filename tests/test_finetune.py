"""Part C loop: only classifier.4 may change (parameters and buffers), evaluation, prediction."""
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

from a2cnn import finetune, seg_metrics


class TinySeg(nn.Module):
    """Stand-in with the parts that matter: BatchNorm, dropout, dict output, a ``classifier.4`` conv."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Conv2d(8, num_classes, 1))

    def forward(self, x):
        return {"out": self.classifier(self.backbone(x))}


class AlwaysTraining(TinySeg):
    """A model that ignores ``eval()``: what fine-tuning in train mode would do."""

    def train(self, mode=True):
        return super().train(True)


def freeze_and_replace(model):
    model.requires_grad_(False)
    model.classifier[4] = nn.Conv2d(model.classifier[4].in_channels, 2, kernel_size=1)
    return model


def make_loader(size=16, n=4, batch_size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)
    masks = torch.randint(0, 2, (n, size, size), generator=generator)
    return DataLoader(TensorDataset(images, masks), batch_size=batch_size)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_keys(before, after):
    assert before.keys() == after.keys()
    return sorted(k for k in before if not torch.equal(before[k], after[k]))


def train_last_layer(model, loader, epochs=1, lr=1e-2):
    optimizer = torch.optim.Adam(model.classifier[4].parameters(), lr=lr)
    return finetune.run_finetune_epochs(model, loader, optimizer, epochs, "cpu", progress=False)


def test_only_classifier_4_changes_in_deeplab():
    torch.manual_seed(0)
    model = freeze_and_replace(deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21))
    model.train()  # as handed over by a careless caller: the loop must switch to eval()
    before = snapshot(model)
    losses = train_last_layer(model, make_loader(size=64))
    assert len(losses) == 1 and math.isfinite(losses[0])
    assert changed_keys(before, snapshot(model)) == ["classifier.4.bias", "classifier.4.weight"]
    assert any("running_mean" in k for k in before)  # the check covered BatchNorm buffers
    assert not model.training


def test_only_classifier_4_changes_in_stand_in():
    torch.manual_seed(0)
    model = freeze_and_replace(TinySeg()).train()
    before = snapshot(model)
    train_last_layer(model, make_loader(), epochs=2)
    assert changed_keys(before, snapshot(model)) == ["classifier.4.bias", "classifier.4.weight"]


def test_train_mode_would_change_batchnorm_statistics():
    # The same run on a model that stays in train mode moves running statistics of frozen layers:
    # the bit-identity check above is able to fail.
    torch.manual_seed(0)
    model = freeze_and_replace(AlwaysTraining())
    before = snapshot(model)
    train_last_layer(model, make_loader())
    changed = changed_keys(before, snapshot(model))
    assert "backbone.1.running_mean" in changed and "classifier.1.running_var" in changed
    assert "backbone.0.weight" not in changed  # parameters are still frozen; only buffers moved


def test_losses_per_epoch_decrease_on_a_learnable_task():
    torch.manual_seed(0)
    images = torch.randn(8, 3, 8, 8)
    masks = (images[:, 0] > 0).long()
    model = TinySeg()
    model.backbone = nn.Identity()
    model.classifier = nn.Sequential(nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity(), nn.Conv2d(3, 2, 1))
    loader = DataLoader(TensorDataset(images, masks), batch_size=4)
    losses = train_last_layer(model, loader, epochs=30, lr=0.1)
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]
    result = finetune.evaluate(model, loader, "cpu")
    assert result["pixel_accuracy"] > 0.9 and result["iou"] > 0.8


def test_nothing_trainable_is_a_clear_error():
    model = TinySeg().requires_grad_(False)
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))])
    with pytest.raises(RuntimeError, match="classifier.4"):
        finetune.run_finetune_epochs(model, make_loader(), optimizer, 1, "cpu", progress=False)


class Oracle(nn.Module):
    """Logits that are right exactly where channel 0 of the image is positive."""

    def forward(self, x):
        flower = (x[:, 0] > 0).float() * 20 - 10
        return {"out": torch.stack([-flower, flower], dim=1)}


def test_evaluate_perfect_and_background_only_models():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(6, 3, 8, 8, generator=generator)
    masks = (images[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(images, masks), batch_size=4)
    perfect = finetune.evaluate(Oracle(), loader, "cpu")
    assert perfect["iou"] == 1.0 and perfect["pixel_accuracy"] == 1.0 and perfect["loss"] < 1e-3

    class Background(nn.Module):
        def forward(self, x):
            return {"out": torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], dim=1)}

    background = finetune.evaluate(Background(), loader, "cpu")
    assert background["iou"] == 0.0
    assert background["pixel_accuracy"] == pytest.approx((masks == 0).float().mean().item())


def test_evaluate_matches_seg_metrics_on_all_pixels():
    torch.manual_seed(0)
    model = freeze_and_replace(TinySeg())
    loader = make_loader(n=5, batch_size=2)
    result = finetune.evaluate(model, loader, "cpu")
    images = torch.cat([x for x, _ in loader])
    masks = torch.cat([y for _, y in loader])
    preds = finetune.predict(model, images, "cpu")
    assert preds.shape == masks.shape and preds.dtype == torch.int64
    assert result["iou"] == pytest.approx(seg_metrics.iou(preds, masks))
    assert result["pixel_accuracy"] == pytest.approx(seg_metrics.pixel_accuracy(preds, masks))
    assert finetune.predict(model, images[0], "cpu").shape == masks[0].shape
