"""Training loop for Parts A and B: per-pixel colour classification with cross-entropy.

The loop only ever calls a model through ``model(x)``, so the autograder can reuse it on
untrusted models: nothing a model does can skip an epoch or alter the reported losses.
"""
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import run_cache, settings


@dataclass
class TrainConfig:
    """Hyper-parameters of a colourization run; the defaults are the reference run of the handout."""

    learn_rate: float = 0.001  # Adam learning rate
    batch_size: int = 100  # images per mini-batch
    epochs: int = 25  # passes over the training set
    seed: int = 0  # seeds torch, numpy, random and the shuffling order
    kernel: int = 3  # convolution kernel size
    num_filters: int = 32  # NF
    deterministic: bool = True  # ask torch for deterministic kernels where it has them

    @classmethod
    def for_mode(cls, **overrides):
        """The default config, shortened to one epoch in fast mode (A2_FAST=1)."""
        config = cls(**overrides)
        if settings.fast_mode() and "epochs" not in overrides:
            config.epochs = 1
        return config


@dataclass
class History:
    """Per-epoch metrics of one run. Losses are mean cross-entropy per pixel, accuracies fractions of pixels."""

    config: dict
    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self):
        if not self.val_loss:
            return "no epoch ran"
        return (
            f"{len(self.val_loss)} epochs: train loss {self.train_loss[-1]:.4f}, "
            f"val loss {self.val_loss[-1]:.4f}, val accuracy {100 * self.val_accuracy[-1]:.1f}% "
            f"({self.seconds:.0f} s)"
        )


class ModelOutputError(ValueError):
    """A model whose output cannot be trained as a colourizer; the message says in words what is wrong."""

    def _render_traceback_(self):
        # IPython and Jupyter show this instead of a traceback: the sentence is the whole story
        return [f"{type(self).__name__}: {self}"]


def output_problem(model, data, device=None):
    """None when ``model`` maps two validation pictures to (2, colours, H, W) logits, else a sentence saying what
    came out, what was expected and which layers usually cause it. Runs in eval mode without gradients (no random
    numbers are drawn, no BatchNorm statistics change); the model's own errors propagate."""
    device = device or settings.device()
    x = _as_tensor(data.x_test[:2], torch.float32, device)
    colours = len(data.palette)
    expected = (len(x), colours, *x.shape[2:])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        return (f"the model returns {type(out).__name__}, not a tensor of logits: forward() should return the "
                f"output of finalconv, of shape (N, {colours}, H, W)")
    got = tuple(out.shape)
    if got == expected:
        return None
    said = f"the model's output has shape {got} for input {tuple(x.shape)}; expected {expected}"
    if len(got) != 4:
        return f"{said}: forward() should return (N, colours, H, W) logits, without flattening or squeezing"
    if got[1] != colours:
        return (f"{said}: {got[1]} channels instead of one per colour ({colours}); this usually comes from the "
                "last layer (finalconv) or from num_colours not being passed to it")
    if got[2:] != expected[2:]:
        direction = "smaller" if got[2] * got[3] < expected[2] * expected[3] else "larger"
        return (f"{said}: the picture comes out {got[2]}x{got[3]} instead of {expected[2]}x{expected[3]} "
                f"({direction}); this usually comes from the up-sampling groups (upconv1, upconv2) not undoing the "
                "max-pooling of downconv1 and downconv2, or from a convolution without padding")
    return f"{said}: the batch dimension changed; forward() should keep one output per input picture"


def seed_everything(seed, deterministic=True):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode also fills every new uninitialised tensor with NaN (a debugging aid for kernels that
        # read memory they never wrote): hundreds of fills per step, none of which changes a result
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.benchmark = False


def _as_tensor(array, dtype, device):
    return torch.as_tensor(np.asarray(array), dtype=dtype, device=device)


def predicted_colours(logits):
    """``logits.argmax(dim=1)`` of (N, colours, H, W) logits: the index of every pixel's first largest logit.

    Computed over a channels-last copy: the same indices, but on CPU an arg-max across the channels of an NCHW
    tensor strides through memory and costs several times the copy (53 ms against 7 ms for a batch of 100 pictures
    of 32x32 with 24 colours, a quarter of a UNet training step)."""
    return logits.movedim(1, -1).contiguous().argmax(dim=-1)


def minibatch_order(n, batch_size, generator):
    """Index tensors of a shuffled epoch, the last batch possibly smaller."""
    order = torch.randperm(n, generator=generator)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def evaluate(model, x, y, batch_size=100, device=None):
    """Mean per-pixel cross-entropy and pixel accuracy of ``model`` on (x, y), in eval mode."""
    device = device or settings.device()
    model.eval()
    loss_sum, correct, pixels = 0.0, 0, 0
    for start in range(0, len(x), batch_size):
        xb = _as_tensor(x[start : start + batch_size], torch.float32, device)
        yb = _as_tensor(y[start : start + batch_size], torch.long, device)
        logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (predicted_colours(logits) == yb).sum().item()
        pixels += yb.numel()
    return loss_sum / pixels, correct / pixels


@torch.no_grad()
def predict(model, x, batch_size=100, device=None):
    """Predicted colour index per pixel, shape (N, H, W)."""
    device = device or settings.device()
    model.eval()
    out = [predicted_colours(model(_as_tensor(x[i : i + batch_size], torch.float32, device))).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def train_colourizer(model, data, config=None, device=None, progress=True, log=print, cache=True):
    """Train ``model`` on ``data`` (a ColourData) with Adam and cross-entropy; return its History.

    The model's output shape is checked on two pictures first (:class:`ModelOutputError`, one sentence, when it is
    wrong). Validation runs after every epoch on the test split, in eval mode. With ``A2_RUN_CACHE`` set (and
    ``cache``), a run already finished with the same model, data, settings and device is not trained again: its
    weights and History are loaded (:mod:`a2cnn.run_cache`).
    """
    config = config or TrainConfig.for_mode()
    device = device or settings.device()
    model = model.to(device)
    problem = output_problem(model, data, device)  # before seeding: it changes nothing a run depends on
    if problem:
        raise ModelOutputError(f"{problem}. Nothing was trained.")
    run_key = None
    if cache and settings.run_cache_dir() is not None:
        run_key = run_cache.key("colourizer", run_cache.model_state(model), asdict(config), str(torch.device(device).type),
                                [data.x_train, data.y_train, data.x_test, data.y_test])
        kept = run_cache.load(run_key, model)
        if kept is not None:
            if log:
                log("resumed: this run finished earlier (A2_RUN_CACHE); its weights and history were loaded")
            return History(**kept)
    seed_everything(config.seed, config.deterministic)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learn_rate)
    x_train = _as_tensor(data.x_train, torch.float32, device)
    y_train = _as_tensor(data.y_train, torch.long, device)
    generator = torch.Generator().manual_seed(config.seed)
    history = History(config=asdict(config))
    started = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        loss_sum, correct, pixels = 0.0, 0, 0
        batches = minibatch_order(len(x_train), config.batch_size, generator)
        for idx in tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            idx = idx.to(device)
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad()
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * yb.numel()
            correct += (predicted_colours(logits.detach()) == yb).sum().item()
            pixels += yb.numel()
        val_loss, val_acc = evaluate(model, data.x_test, data.y_test, config.batch_size, device)
        history.train_loss.append(loss_sum / pixels)
        history.train_accuracy.append(correct / pixels)
        history.val_loss.append(val_loss)
        history.val_accuracy.append(val_acc)
        if log:
            log(
                f"epoch {epoch + 1}/{config.epochs}: train loss {history.train_loss[-1]:.4f}, "
                f"val loss {val_loss:.4f}, val acc {100 * val_acc:.1f}%"
            )
    history.seconds = time.perf_counter() - started
    run_cache.save(run_key, model, asdict(history), what=f"{type(model).__name__}: {history.summary()}")
    return history
