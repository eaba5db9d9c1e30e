"""plot_segmentation: layout, colours restored from ImageNet normalisation, demo-mode warning."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from a2cnn import oxford17  # noqa: E402
from a2cnn.plots import plot_segmentation  # noqa: E402


@pytest.fixture
def batch():
    colour = torch.tensor([0.8, 0.2, 0.1]).view(3, 1, 1)
    images = torch.stack([oxford17.normalise(colour.expand(3, 12, 12).clone()) for _ in range(3)])
    masks = torch.zeros(3, 12, 12, dtype=torch.long)
    masks[:, 3:9, 3:9] = 1
    return images, masks, 1 - masks


@pytest.fixture(autouse=True)
def close_figures(monkeypatch):
    monkeypatch.delenv("A2_OXFORD17_MASKS", raising=False)
    yield
    plt.close("all")


def texts(fig):
    found = [ax.get_ylabel() for ax in fig.axes]
    if fig._suptitle is not None:
        found.append(fig._suptitle.get_text())
    return " ".join(found)


def test_three_rows_and_saved_file(batch, tmp_path):
    images, masks, preds = batch
    path = tmp_path / "seg.png"
    fig = plot_segmentation(images, masks, preds, path=path, title="validation")
    assert len(fig.axes) == 9
    assert path.is_file() and path.stat().st_size > 1000
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["image", "ground truth", "prediction"]
    shown = fig.axes[0].images[0].get_array()
    assert np.allclose(shown, [0.8, 0.2, 0.1], atol=1e-5)           # normalisation undone
    assert np.array_equal(fig.axes[3].images[0].get_array(), masks[0].numpy())
    assert np.array_equal(fig.axes[6].images[0].get_array(), preds[0].numpy())
    assert "validation" in texts(fig) and "SYNTHETIC" not in texts(fig)


def test_without_predictions_and_count(batch):
    images, masks, _ = batch
    fig = plot_segmentation(images, masks, None, count=2)
    assert len(fig.axes) == 4


def test_demo_mode_figure_says_masks_are_synthetic(batch, monkeypatch):
    monkeypatch.setenv("A2_OXFORD17_MASKS", "synthetic-demo")
    fig = plot_segmentation(*batch)
    assert "SYNTHETIC DEMO MASKS, not real labels" in texts(fig)
    assert "not a real label" in fig.axes[3].get_ylabel()


def test_channels_last_unnormalised_input(batch):
    _, masks, preds = batch
    pictures = np.full((3, 12, 12, 3), 0.5)
    fig = plot_segmentation(pictures, masks, preds)
    assert np.allclose(fig.axes[0].images[0].get_array(), 0.5)
