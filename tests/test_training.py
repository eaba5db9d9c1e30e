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


class SmallUNet(nn.Module):
    """Enough of the UNet's pieces (pooling, BatchNorm, up-sampling, a skip) for the loop's arithmetic to matter."""

    def __init__(self, colours=5):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.ReLU())
        self.up = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Upsample(scale_factor=2), nn.BatchNorm2d(4),
                                nn.ReLU())
        self.finalconv = nn.Conv2d(5, colours, 3, padding=1)

    def forward(self, x):
        return self.finalconv(torch.cat([self.up(self.down(x)), x], dim=1))


def learnable_data(colours=5, side=8, train=10, test=4):
    """Targets that depend on the input, so the losses move; 10 training pictures make a last batch of 2."""
    rng = np.random.default_rng(1)
    x = rng.random((train + test, 1, side, side), dtype=np.float32)
    y = np.minimum((x[:, 0] * colours).astype(np.int64), colours - 1)
    return Data(x[:train], y[:train], x[train:], y[train:], rng.random((colours, 3)))


def test_the_loop_computes_what_a_plain_pytorch_loop_computes():
    """Same figures per epoch and same final weights and BatchNorm statistics as the plain loop the loop benchmark
    compares it with (``benchmarks.loop.plain_train``), from the same seed: speeding the loop up changed nothing."""
    from benchmarks.loop import plain_train

    data, config = learnable_data(), training.TrainConfig(epochs=3, batch_size=4, seed=5, learn_rate=0.01)
    torch.manual_seed(0)
    initial = SmallUNet().state_dict()
    mine, plain = SmallUNet(), SmallUNet()
    mine.load_state_dict(initial)
    plain.load_state_dict(initial)
    history = training.train_colourizer(mine, data, config, device="cpu", progress=True, log=None, cache=False)
    expected = plain_train(plain, data, config)
    got = (history.train_loss, history.train_accuracy, history.val_loss, history.val_accuracy)
    for name, values, reference in zip(("train loss", "train accuracy", "val loss", "val accuracy"), got, expected):
        assert values == pytest.approx(reference, rel=1e-6, abs=1e-9), name
    assert history.train_loss[-1] < history.train_loss[0], "the task is learnable: the losses must move"
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(mine.state_dict()[name], tensor, rtol=1e-6, atol=1e-7, msg=name)


def test_two_runs_from_one_seed_are_identical():
    data, config = learnable_data(), training.TrainConfig(epochs=2, batch_size=4, seed=2)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SmallUNet()
        runs.append((training.train_colourizer(model, data, config, device="cpu", progress=False, log=None,
                                               cache=False), model.state_dict()))
    (first, first_state), (second, second_state) = runs
    assert first.train_loss == second.train_loss and first.val_loss == second.val_loss
    assert first.train_accuracy == second.train_accuracy and first.val_accuracy == second.val_accuracy
    assert all(torch.equal(first_state[name], second_state[name]) for name in first_state)
    assert torch.are_deterministic_algorithms_enabled()


def test_predicted_colours_are_the_arg_max_over_colours_ties_and_nan_included():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (5, 7, 6, 4), generator=generator).float()  # many ties: the first one wins
    logits[0, 3, 2, 1] = float("nan")
    logits[1, :, 0, 0] = float("-inf")
    assert torch.equal(training.predicted_colours(logits), logits.argmax(dim=1))
    assert training.predicted_colours(logits)[0, 2, 1] == 3
