"""DeepLabV3 loading: cache detection without network, honest fallback, the layer Part C replaces."""
import hashlib

import pytest
import torch
import torch.nn as nn
from torchvision.models.segmentation import (
    DeepLabV3,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
    deeplabv3_resnet101,
)

from a2cnn import deeplab


@pytest.fixture(autouse=True)
def isolated_hub(monkeypatch, tmp_path):
    """An empty torch hub under tmp_path and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("A2_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def random_resnet101():
    return deeplabv3_resnet101(weights=None, weights_backbone=None, num_classes=21)


def assert_is_voc_head(layer, out_channels=21):
    assert isinstance(layer, nn.Conv2d)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (256, out_channels, (1, 1))


def test_all_candidate_architectures_end_in_conv_256_to_21(random_resnet101):
    assert_is_voc_head(random_resnet101.classifier[4])
    assert_is_voc_head(deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21).classifier[4])
    assert_is_voc_head(deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).classifier[4])
    for name, (_, weights, _) in deeplab.ARCHITECTURES.items():
        assert len(weights.meta["categories"]) == 21, name     # so the pretrained head is 21 wide too
        assert "COCO_WITH_VOC_LABELS_V1" in str(weights)


def test_checkpoint_path_follows_torch_home(isolated_hub):
    path = deeplab.checkpoint_path("resnet101")
    assert path.parent == isolated_hub
    assert path.name == "deeplabv3_resnet101_coco-586e9e4e.pth"


def test_fallback_is_not_pretrained_and_says_why(isolated_hub):
    model, info = deeplab.load_deeplabv3()
    assert isinstance(model, DeepLabV3) and not model.training
    assert_is_voc_head(model.classifier[4])
    assert info.pretrained is False and info.weights is None and info.checkpoint is None
    assert info.architecture == "DeepLabV3-ResNet101"
    assert f"no pretrained DeepLabV3 weights found in {isolated_hub}" in info.reason
    assert "results are meaningless" in info.reason and "A2_OFFLINE=1" in info.reason
    assert "NOT pretrained" in info.summary()
    notice = info.notice()  # what the notebook prints before fine-tuning
    assert notice.startswith("WARNING: no COCO-pretrained weights") and "RANDOM weights" in notice
    assert str(isolated_hub) in notice and "TORCH_HOME" in notice and "mean nothing" in notice
    with torch.no_grad():  # one tiny forward pass
        assert model(torch.randn(1, 3, 64, 64))["out"].shape == (1, 21, 64, 64)


def test_cached_checkpoint_is_detected_without_loading(isolated_hub):
    assert deeplab.find_cached_weights() == []
    isolated_hub.mkdir(parents=True)
    mobile = deeplab.checkpoint_path("mobilenet_v3_large")
    mobile.touch()
    assert deeplab.find_cached_weights() == [("mobilenet_v3_large", mobile)]
    r50 = deeplab.checkpoint_path("resnet50")
    r50.touch()
    assert deeplab.find_cached_weights() == [("resnet50", r50), ("mobilenet_v3_large", mobile)]
    assert deeplab.find_cached_weights(prefer="mobilenet_v3_large")[0][0] == "mobilenet_v3_large"
    with pytest.raises(ValueError):
        deeplab.find_cached_weights(prefer="vgg16")


def test_corrupt_cached_checkpoint_is_not_claimed_as_pretrained(isolated_hub):
    isolated_hub.mkdir(parents=True)
    deeplab.checkpoint_path("mobilenet_v3_large").write_bytes(b"not a checkpoint")
    model, info = deeplab.load_deeplabv3(prefer="mobilenet_v3_large")
    assert info.pretrained is False
    assert "does not match the SHA-256 prefix" in info.reason
    assert "NOT pretrained" in info.summary()


def test_hash_matches_uses_the_prefix_in_the_name(tmp_path):
    data = b"some bytes"
    prefix = hashlib.sha256(data).hexdigest()[:8]
    good = tmp_path / f"model-{prefix}.pth"
    good.write_bytes(data)
    bad = tmp_path / "model-00000000.pth"
    bad.write_bytes(data)
    assert deeplab.hash_matches(good) and not deeplab.hash_matches(bad)


def test_cached_weights_are_loaded_and_reported(isolated_hub, monkeypatch):
    # A stand-in checkpoint with the layout of the real one (aux classifier included); the SHA-256
    # check is bypassed because only the official file can match it.
    isolated_hub.mkdir(parents=True)
    source = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    torch.save(source.state_dict(), deeplab.checkpoint_path("mobilenet_v3_large"))
    monkeypatch.setattr(deeplab, "hash_matches", lambda path: True)
    model, info = deeplab.load_deeplabv3(prefer="resnet101")
    assert info.pretrained is True
    assert info.architecture == "DeepLabV3-MobileNetV3-Large"
    assert info.checkpoint == str(deeplab.checkpoint_path("mobilenet_v3_large"))
    assert "resnet101 weights not cached" in info.reason
    assert "pretrained weights" in info.summary() and "NOT" not in info.summary()
    assert torch.equal(model.classifier[4].weight, source.classifier[4].weight)
    _, info2 = deeplab.load_deeplabv3(prefer="mobilenet_v3_large", num_classes=2)
    assert info2.pretrained is True and info2.reason == ""


def test_network_failures_fall_back_honestly(isolated_hub, monkeypatch):
    monkeypatch.setenv("A2_OFFLINE", "0")
    monkeypatch.setattr(deeplab, "_network_reachable", lambda url: False)
    _, info = deeplab.load_deeplabv3(prefer="mobilenet_v3_large")
    assert info.pretrained is False and "is not reachable" in info.reason

    real_build = deeplab._build

    def failing_download(name, pretrained, progress):
        if pretrained:
            raise RuntimeError("connection reset")
        return real_build(name, pretrained, progress)

    monkeypatch.setattr(deeplab, "_network_reachable", lambda url: True)
    monkeypatch.setattr(deeplab, "_build", failing_download)
    _, info = deeplab.load_deeplabv3(prefer="mobilenet_v3_large")
    assert info.pretrained is False and "connection reset" in info.reason and "meaningless" in info.reason


def test_describe_trainable_after_freezing():
    model = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
    assert len(deeplab.describe_trainable(model)) == len(list(model.parameters()))
    model.requires_grad_(False)
    model.classifier[4] = nn.Conv2d(256, 2, kernel_size=1)
    assert deeplab.describe_trainable(model) == ["classifier.4.weight", "classifier.4.bias"]


def test_a_pretrained_model_is_announced_in_one_line():
    info = deeplab.LoadInfo(True, "DeepLabV3-ResNet101", "W", "/some/file.pth")
    assert info.notice() == info.summary() and "WARNING" not in info.notice()
