"""Figures for the notebook: training curves, validation losses of several runs, colourization and segmentation grids."""
import matplotlib

if matplotlib.get_backend().lower() not in {"module://matplotlib_inline.backend_inline", "inline"}:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def plot_training_curve(history, path=None, title=None):
    """Train and validation loss (left) and validation accuracy (right) per epoch."""
    epochs = np.arange(1, len(history.train_loss) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(epochs, history.train_loss, "o-", label="train")
    ax_loss.plot(epochs, history.val_loss, "o-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy per pixel")
    ax_loss.legend()
    ax_acc.plot(epochs, 100 * np.asarray(history.val_accuracy), "o-", color="C1")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation pixel accuracy (%)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def plot_validation_losses(histories, path=None, title=None):
    """One figure: validation loss per epoch of several runs, ``histories`` = {label: History}."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, history in histories.items():
        ax.plot(np.arange(1, len(history.val_loss) + 1), history.val_loss, "o-", label=str(label))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation cross-entropy per pixel")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _finish(fig, path)


def plot_colourization(grey, target_labels, predicted_labels, palette, count=8, path=None, title=None):
    """Rows: greyscale input, ground truth (palette colours), prediction, for the first ``count`` images."""
    palette = np.asarray(palette)
    count = min(count, len(grey))
    fig, axes = plt.subplots(3, count, figsize=(1.5 * count, 4.8), squeeze=False)
    rows = [
        ("input", [np.asarray(grey[i, 0]) for i in range(count)], "gray"),
        ("ground truth", [palette[np.asarray(target_labels[i])] for i in range(count)], None),
        ("prediction", [palette[np.asarray(predicted_labels[i])] for i in range(count)], None),
    ]
    for r, (label, images, cmap) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(np.clip(image, 0, 1), cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def plot_segmentation(images, masks, preds, path=None, title=None, count=8, normalised=True):
    """Rows: photo, ground-truth mask, predicted mask (omitted when ``preds`` is None); one column per image.

    ``images``: (N, 3, H, W) tensor/array, ImageNet-normalised unless ``normalised=False`` (then values
    in [0, 1]), or (N, H, W, 3) in [0, 1]. ``masks`` / ``preds``: (N, H, W) labels (0 background,
    1 flower). With ``A2_OXFORD17_MASKS=synthetic-demo`` the figure says that the masks are synthetic.
    Saved to ``path`` when given; the figure is returned.
    """
    from . import settings  # local imports keep this function self-contained

    def to_numpy(x):
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

    pictures = to_numpy(images).astype(np.float64)
    if pictures.ndim != 4:
        raise ValueError(f"images must have 4 dimensions (N, 3, H, W) or (N, H, W, 3), got {pictures.shape}")
    if pictures.shape[1] == 3 and pictures.shape[-1] != 3:  # channels first
        if normalised:
            mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
            std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
            pictures = pictures * std + mean
        pictures = pictures.transpose(0, 2, 3, 1)
    rows = [("image", np.clip(pictures, 0, 1), None)]
    synthetic = settings.oxford17_mask_source() == "synthetic-demo"
    rows.append(("synthetic demo mask\n(not a real label)" if synthetic else "ground truth", to_numpy(masks), "gray"))
    if preds is not None:
        rows.append(("prediction", to_numpy(preds), "gray"))
    count = min(count, len(pictures))
    fig, axes = plt.subplots(len(rows), count, figsize=(1.8 * count, 1.9 * len(rows)), squeeze=False)
    for r, (label, data, cmap) in enumerate(rows):
        for c in range(count):
            ax = axes[r, c]
            ax.imshow(data[c], cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label)
    heading = title or ""
    if synthetic:
        heading = (heading + "\n" if heading else "") + "SYNTHETIC DEMO MASKS, not real labels"
    if heading:
        fig.suptitle(heading)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig
