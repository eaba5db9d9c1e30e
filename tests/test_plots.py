"""plot_training_curve and plot_colourization: what they draw, checked against hand-written expectations.

(plot_validation_losses is tested in test_training.py, plot_segmentation in test_plots_segmentation.py.)
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from a2cnn.plots import plot_colourization, plot_training_curve  # noqa: E402
from a2cnn.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def suptitle(fig):
    return fig._suptitle.get_text() if fig._suptitle is not None else None


def grid(fig):
    """{(row, column): axes} from each axes' place in the subplot grid."""
    cells = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        cells[spec.rowspan.start, spec.colspan.start] = ax
    return cells


# --- plot_training_curve -------------------------------------------------------------------------------------------

@pytest.fixture
def history():
    return History(config={}, train_loss=[2.0, 1.5, 1.25], train_accuracy=[0.1, 0.2, 0.3],
                   val_loss=[2.5, 1.75, 1.5], val_accuracy=[0.25, 0.5, 0.625])


def test_training_curve_has_losses_left_and_accuracy_right(history):
    fig = plot_training_curve(history)
    cells = grid(fig)
    assert sorted(cells) == [(0, 0), (0, 1)]
    loss, accuracy = cells[0, 0], cells[0, 1]

    assert [line.get_label() for line in loss.get_lines()] == ["train", "validation"]
    train, val = loss.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [2.0, 1.5, 1.25]
    assert list(val.get_xdata()) == [1, 2, 3] and list(val.get_ydata()) == [2.5, 1.75, 1.5]
    assert [text.get_text() for text in loss.get_legend().get_texts()] == ["train", "validation"]
    assert loss.get_xlabel() == "epoch" and loss.get_ylabel() == "cross-entropy per pixel"

    (acc,) = accuracy.get_lines()
    assert list(acc.get_xdata()) == [1, 2, 3]
    assert list(acc.get_ydata()) == [25.0, 50.0, 62.5]          # fractions shown as percentages
    assert accuracy.get_xlabel() == "epoch" and accuracy.get_ylabel() == "validation pixel accuracy (%)"
    assert suptitle(fig) is None


def test_training_curve_of_one_epoch_with_title_saved(tmp_path):
    one = History(config={}, train_loss=[0.5], val_loss=[0.75], val_accuracy=[0.9])
    path = tmp_path / "curve.png"
    fig = plot_training_curve(one, path=path, title="CNN, 1 epoch")
    assert suptitle(fig) == "CNN, 1 epoch"
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loss, accuracy = grid(fig)[0, 0], grid(fig)[0, 1]
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[0.5], [0.75]]
    assert list(accuracy.get_lines()[0].get_ydata()) == [90.0]


# --- plot_colourization --------------------------------------------------------------------------------------------

PALETTE = np.array([[1.0, 0.0, 0.0],     # 0 red
                    [0.0, 1.0, 0.0],     # 1 green
                    [0.0, 0.0, 1.0],     # 2 blue
                    [1.0, 1.0, 0.0]])    # 3 yellow
RED, GREEN, BLUE, YELLOW = PALETTE


@pytest.fixture
def batch():
    """Three 2x2 images: grey levels, target labels and predicted labels."""
    grey = np.array([[[[0.0, 0.25], [0.5, 1.0]]],
                     [[[0.1, 0.1], [0.1, 0.1]]],
                     [[[0.9, 0.8], [0.7, 0.6]]]])
    target = np.array([[[0, 1], [2, 3]],
                       [[1, 1], [1, 1]],
                       [[3, 2], [1, 0]]])
    predicted = np.array([[[0, 0], [0, 0]],
                          [[2, 1], [2, 1]],
                          [[3, 3], [3, 3]]])
    return grey, target, predicted


def test_colourization_rows_are_input_truth_prediction(batch):
    grey, target, predicted = batch
    fig = plot_colourization(grey, target, predicted, PALETTE)
    cells = grid(fig)
    assert sorted(cells) == [(r, c) for r in range(3) for c in range(3)]     # count=8 capped at 3 images
    assert [cells[r, 0].get_ylabel() for r in range(3)] == ["input", "ground truth", "prediction"]
    assert all(cells[r, c].get_ylabel() == "" for r in range(3) for c in (1, 2))
    assert all(len(ax.images) == 1 and not ax.get_xticks().size and not ax.get_yticks().size for ax in fig.axes)

    first_input = cells[0, 0].images[0]
    assert np.array_equal(first_input.get_array(), [[0.0, 0.25], [0.5, 1.0]])
    assert first_input.get_cmap().name == "gray" and first_input.get_clim() == (0, 1)
    assert np.array_equal(cells[0, 2].images[0].get_array(), [[0.9, 0.8], [0.7, 0.6]])

    # palette colours of the labels, worked by hand
    assert np.array_equal(cells[1, 0].images[0].get_array(), [[RED, GREEN], [BLUE, YELLOW]])
    assert np.array_equal(cells[2, 0].images[0].get_array(), [[RED, RED], [RED, RED]])
    assert np.array_equal(cells[1, 1].images[0].get_array(), [[GREEN, GREEN], [GREEN, GREEN]])
    assert np.array_equal(cells[2, 1].images[0].get_array(), [[BLUE, GREEN], [BLUE, GREEN]])
    assert np.array_equal(cells[1, 2].images[0].get_array(), [[YELLOW, BLUE], [GREEN, RED]])
    assert np.array_equal(cells[2, 2].images[0].get_array(), [[YELLOW, YELLOW], [YELLOW, YELLOW]])
    assert suptitle(fig) is None


def test_colourization_count_title_path_and_tensors(batch, tmp_path):
    grey, target, predicted = batch
    path = tmp_path / "colour.png"
    fig = plot_colourization(torch.from_numpy(grey).float(), torch.from_numpy(target), torch.from_numpy(predicted),
                             PALETTE.tolist(), count=2, path=path, title="UNet")
    cells = grid(fig)
    assert sorted(cells) == [(r, c) for r in range(3) for c in range(2)]
    assert suptitle(fig) == "UNet"
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.allclose(cells[0, 1].images[0].get_array(), 0.1)
    assert np.array_equal(cells[1, 1].images[0].get_array(), [[GREEN, GREEN], [GREEN, GREEN]])
    assert np.array_equal(cells[2, 1].images[0].get_array(), [[BLUE, GREEN], [BLUE, GREEN]])


def test_colourization_clips_to_the_displayable_range():
    grey = np.array([[[[-0.5, 1.5]]]])
    palette = np.array([[1.2, -0.1, 0.5]])                  # a palette entry outside [0, 1]
    labels = np.zeros((1, 1, 2), dtype=np.int64)
    cells = grid(plot_colourization(grey, labels, labels, palette))
    assert np.array_equal(cells[0, 0].images[0].get_array(), [[0.0, 1.0]])
    assert np.array_equal(cells[1, 0].images[0].get_array(), [[[1.0, 0.0, 0.5], [1.0, 0.0, 0.5]]])
