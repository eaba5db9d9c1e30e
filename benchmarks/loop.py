"""The project's Parts A/B training loop against a plain PyTorch loop: same model, data, settings and threads.

    python -m benchmarks.loop [--train 1000] [--test 200] [--epochs 1] [--rounds 7] [--threads 2]

Both sides train the reference UNet (the master notebook's solution cell) from the same initial weights with Adam
and cross-entropy, and compute the same figures per epoch: training loss and accuracy over the batches as they
train, validation loss and accuracy in eval mode (``--training-only`` adds a plain loop without them, to show what
they cost). The project side is ``a2cnn.training.train_colourizer`` as the
notebook calls it (progress bar on, run cache off: the benchmark times training, not resuming; torch's deterministic
mode on, as the loop sets it); the plain side is :func:`plain_train`, the loop one would write by hand, with torch's
defaults. They run alternately; the last line is ``ratio: project/plain`` of the medians.
"""
import argparse
import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from . import timing


def plain_train(model, data, config, figures=True):
    """A plain PyTorch loop computing what ``train_colourizer`` computes, for the same config; returns
    ``(train_loss, train_accuracy, val_loss, val_accuracy)``, one value per epoch each. Without ``figures`` it
    only trains (no loss or accuracy kept, no validation) and returns empty lists: what the figures cost."""
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learn_rate)
    x_train, y_train = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    x_test, y_test = torch.as_tensor(data.x_test), torch.as_tensor(data.y_test)
    generator = torch.Generator().manual_seed(config.seed)
    history = ([], [], [], [])
    for _ in range(config.epochs):
        model.train()
        loss_sum, correct = 0.0, 0
        for idx in torch.randperm(len(x_train), generator=generator).split(config.batch_size):
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            if not figures:
                continue
            loss_sum += loss.item() * yb.numel()
            correct += (logits.argmax(dim=1) == yb).sum().item()
        if not figures:
            continue
        model.eval()
        val_loss, val_correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x_test), config.batch_size):
                xb, yb = x_test[start : start + config.batch_size], y_test[start : start + config.batch_size]
                logits = model(xb)
                val_loss += F.cross_entropy(logits, yb, reduction="sum").item()
                val_correct += (logits.argmax(dim=1) == yb).sum().item()
        for values, value in zip(history, (loss_sum / y_train.numel(), correct / y_train.numel(),
                                           val_loss / y_test.numel(), val_correct / y_test.numel())):
            values.append(value)
    return history


@dataclasses.dataclass
class Subset:
    """The first pictures of each split: what the loops read of a ColourData."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    palette: np.ndarray


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=1000, help="training pictures (the course has 5000)")
    parser.add_argument("--test", type=int, default=200, help="validation pictures (the course has 1000)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7, help="timed runs of each side, alternating")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both sides")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--num-filters", type=int, default=32)
    parser.add_argument("--model", default="UNet", choices=["CNN", "UNet"])
    parser.add_argument("--training-only", action="store_true",
                        help="a third side: the plain loop without the figures (no per-batch loss and accuracy, no "
                             "validation), to show what they cost; not part of the ratio")
    args = parser.parse_args(argv)

    timing.use_data_mirror()
    from autograder.reference import load_reference

    reference = load_reference()  # also puts the pristine a2cnn on sys.path
    from a2cnn.colour_data import load_colour_data
    from a2cnn.training import TrainConfig, train_colourizer

    torch.set_num_threads(args.threads)
    full = load_colour_data(fast=False)
    data = Subset(full.x_train[: args.train], full.y_train[: args.train], full.x_test[: args.test],
                  full.y_test[: args.test], full.palette)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, num_filters=args.num_filters)
    torch.manual_seed(0)
    initial = reference[args.model](kernel=config.kernel, num_filters=config.num_filters,
                                    num_colours=full.num_colours, num_in_channels=1)
    results = {}

    def project():
        history = train_colourizer(copy.deepcopy(initial), data, config, device="cpu", progress=True, log=None,
                                   cache=False)
        results["project"] = (history.train_loss, history.train_accuracy, history.val_loss, history.val_accuracy)

    def plain():
        torch.use_deterministic_algorithms(False)  # torch's default, which the project loop changes for the process
        results["plain"] = plain_train(copy.deepcopy(initial), data, config)

    def plain_training_only():
        torch.use_deterministic_algorithms(False)
        plain_train(copy.deepcopy(initial), data, config, figures=False)

    print(f"{args.model} NF {config.num_filters}, batch {config.batch_size}, {config.epochs} epoch(s) over "
          f"{len(data.x_train)} training and {len(data.x_test)} validation pictures, {torch.get_num_threads()} "
          f"threads, {args.rounds} rounds alternating after one untimed run of each; seconds per run (whole "
          "training call):", flush=True)
    sides = {"project": project, "plain": plain}
    if args.training_only:
        sides["plain, training only"] = plain_training_only
    wall, cpu = timing.alternate(sides, args.rounds)
    timing.print_sides(wall, cpu)
    pairs = zip(results["project"], results["plain"])
    gap = max(abs(a - b) for mine, theirs in pairs for a, b in zip(mine, theirs))
    print(f"same figures: largest difference of loss or accuracy between the sides {gap:.2g}")
    print(f"CPU ratio: {timing.median(cpu['project']) / timing.median(cpu['plain']):.2f}")
    print(f"ratio: {timing.median(wall['project']) / timing.median(wall['plain']):.2f}")


if __name__ == "__main__":
    main()
