"""Part C loop: only classifier.4 may change (parameters and buffers), evaluation, prediction."""
import copy
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


# ------------------------------------------------------------------ the feature cache: exact, or not used at all
def stand_in():
    """The grader's small DeepLabV3 (real DeepLabHead, BatchNorm with random statistics), last layer replaced."""
    from autograder.worker import tiny_deeplab

    model = tiny_deeplab.build(3)
    model.requires_grad_(False)
    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)
    return model


class CountingBackbone:
    """Counts the pictures the backbone runs on (an instance attribute, not a hook: hooks turn the cache off)."""

    def __init__(self, model):
        self.pictures, forward = 0, model.backbone.forward

        def counted(x):
            self.pictures += len(x)
            return forward(x)

        model.backbone.forward = counted


def flower_like(n=10, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)
    masks = (images[:, 0] + images[:, 1] > 0).long()  # learnable from the pictures
    return TensorDataset(images, masks)


def fine_tune(model, dataset, epochs=3, shuffle_seed=0, feature_cache=True, batch_size=4, lr=1e-2):
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    counter = CountingBackbone(model)
    optimizer = torch.optim.Adam(model.classifier[4].parameters(), lr=lr)
    losses = finetune.run_finetune_epochs(model, loader, optimizer, epochs, "cpu", progress=False,
                                          feature_cache=feature_cache)
    return losses, counter.pictures, generator


@pytest.mark.parametrize("shuffle_seed", [0, None], ids=["loader's generator", "global generator"])
def test_cached_fine_tuning_is_the_uncached_one(shuffle_seed):
    """Same losses, same classifier.4, everything else bit-identical, same evaluation, and the same random numbers
    drawn; the backbone runs once per picture instead of once per picture and epoch."""
    torch.manual_seed(0)
    first = stand_in()
    second = copy.deepcopy(first)
    before = snapshot(first)
    dataset, epochs = flower_like(n=10), 4
    runs = []
    for model, cached in ((first, True), (second, False)):
        torch.manual_seed(1)
        losses, pictures, generator = fine_tune(model, dataset, epochs, shuffle_seed, feature_cache=cached)
        runs.append((losses, pictures, (generator or torch.default_generator).get_state()))
    (cached_losses, cached_pictures, cached_rng), (plain_losses, plain_pictures, plain_rng) = runs
    assert cached_pictures == 10 and plain_pictures == 10 * epochs
    assert cached_losses == pytest.approx(plain_losses, rel=1e-5)
    assert plain_losses[-1] < plain_losses[0]  # it learns: the head moved, so its equality means something
    assert torch.equal(cached_rng, plain_rng), "the cache drew other random numbers than the loader"
    for key in ("classifier.4.weight", "classifier.4.bias"):
        torch.testing.assert_close(first.state_dict()[key], second.state_dict()[key], rtol=1e-5, atol=1e-6)
    assert changed_keys(before, snapshot(first)) == ["classifier.4.bias", "classifier.4.weight"]
    val = DataLoader(flower_like(n=6, seed=1), batch_size=4)
    cached_scores, plain_scores = finetune.evaluate(first, val, "cpu"), finetune.evaluate(second, val, "cpu")
    assert cached_scores == pytest.approx(plain_scores, rel=1e-5)


class Augmented(torch.utils.data.Dataset):
    """A dataset the cache cannot know to be deterministic (it might flip or crop at random)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


def _another_trainable(model, dataset):
    model.classifier[0].project[0].weight.requires_grad_(True)
    return dataset


def _batchnorm_left_training(model, dataset):
    norm = model.classifier[2]
    norm.train = lambda mode=True: norm  # ignores eval(): its statistics would move
    norm.training = True
    return dataset


def _augmentation(model, dataset):
    return Augmented(dataset)


def _forward_hook(model, dataset):
    model.backbone.register_forward_hook(lambda *args: None)
    return dataset


def _too_big(model, dataset, monkeypatch):
    monkeypatch.setattr(finetune, "FEATURE_CACHE_BYTES", 1000)
    return dataset


@pytest.mark.parametrize("change", [_another_trainable, _batchnorm_left_training, _augmentation, _forward_hook,
                                    _too_big])
def test_the_cache_switches_itself_off(change, monkeypatch):
    """Whenever the frozen part could change or see a different picture, every epoch runs the whole model; and
    where the features would pass the memory bound, the run is the uncached one."""
    torch.manual_seed(0)
    model = stand_in()
    reference = copy.deepcopy(model)
    dataset = flower_like(n=6)
    arguments = (model, dataset, monkeypatch) if change is _too_big else (model, dataset)
    changed = change(*arguments)
    losses, pictures, _ = fine_tune(model, changed, epochs=2)
    assert pictures == 6 * 2
    if change in (_augmentation, _forward_hook, _too_big):  # same computation: the same run as the uncached one
        expected, _, _ = fine_tune(reference, dataset, epochs=2, feature_cache=False)
        assert losses == pytest.approx(expected, rel=1e-6)
