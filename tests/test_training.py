"""The Parts A/B training loop's guard: a model of the wrong output shape is explained in a sentence, not trained."""
import dataclasses

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from a2cnn import training  # noqa: E402
from a2cnn.plots import plot_validation_losses  # noqa: E402


@dataclasses.dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    palette: np.ndarray


def tiny_data(colours=5, side=8):
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, side, side), dtype=np.float32)
    y = rng.integers(0, colours, (6, side, side))
    return Data(x[:4], y[:4], x[4:], y[4:], rng.random((colours, 3)))


class Net(nn.Module):
    def __init__(self, colours=5, pool=False, flatten=False):
        super().__init__()
        self.finalconv = nn.Conv2d(1, colours, 3, padding=1)
        self.bn = nn.BatchNorm2d(1)
        self.pool, self.flatten = pool, flatten

    def forward(self, x):
        out = self.finalconv(self.bn(x))
        out = nn.functional.max_pool2d(out, 2) if self.pool else out
        return out.flatten(1) if self.flatten else out


@pytest.mark.parametrize("model, words", [
    (Net(colours=3), ["3 channels instead of one per colour (5)", "finalconv"]),
    (Net(pool=True), ["comes out 4x4 instead of 8x8 (smaller)", "upconv1, upconv2"]),
    (Net(flatten=True), ["(N, colours, H, W)"]),
])
def test_a_wrong_output_is_explained_and_nothing_is_trained(model, words):
    data = tiny_data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(training.ModelOutputError) as caught:
        training.train_colourizer(model, data, training.TrainConfig(epochs=1, batch_size=2), device="cpu",
                                  progress=False, log=None)
    message = str(caught.value)
    assert "expected (2, 5, 8, 8)" in message and "Nothing was trained" in message
    for word in words:
        assert word in message
    # Jupyter shows the sentence alone, not a traceback through the library
    assert caught.value._render_traceback_() == [f"ModelOutputError: {message}"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the check changed the model"
    assert model.training


def test_a_model_that_returns_no_tensor_is_explained():
    class Dict(Net):
        def forward(self, x):
            return {"out": super().forward(x)}

    assert "returns dict, not a tensor of logits" in training.output_problem(Dict(), tiny_data(), "cpu")


def test_the_check_does_not_change_what_a_correct_model_learns():
    """The run is the same as one seeded the same way without the check: the check draws no random numbers and
    leaves BatchNorm's statistics alone."""
    data, config = tiny_data(), training.TrainConfig(epochs=2, batch_size=2, seed=3)
    torch.manual_seed(0)
    checked = training.train_colourizer(Net(), data, config, device="cpu", progress=False, log=None)
    torch.manual_seed(0)
    model = Net()
    original = training.output_problem
    try:
        training.output_problem = lambda *a, **k: None
        unchecked = training.train_colourizer(model, data, config, device="cpu", progress=False, log=None)
    finally:
        training.output_problem = original
    assert checked.val_loss == unchecked.val_loss and checked.train_loss == unchecked.train_loss


def test_validation_losses_of_several_runs_share_one_labelled_figure():
    histories = {f"batch size {b}": training.History(config={}, val_loss=[3.0 - b / 100, 2.0, 1.5]) for b in (25, 200)}
    fig = plot_validation_losses(histories, title="UNet")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["batch size 25", "batch size 200"]
    assert list(ax.get_lines()[1].get_ydata()) == [1.0, 2.0, 1.5]
    assert ax.get_xlabel() == "epoch" and "validation" in ax.get_ylabel() and ax.get_title() == "UNet"
