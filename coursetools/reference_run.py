"""Train the reference CNN and UNet at the handout's settings and print their validation figures.

    python -m coursetools.reference_run [--epochs 25] [--batch-size 100]

The same models (the master's solution cells), loop and data as the notebook, without the notebook: a quick way to
check the reference against the published anchors (UNet: validation loss about 1.32-1.35, pixel accuracy about
48-49.5 %) and to get the figures for solutions/README.md. Prints one line per model.
"""
import argparse
import time

from autograder.reference import load_reference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--models", default="CNN,UNet")
    args = parser.parse_args(argv)
    ref = load_reference()  # also puts the pristine a2cnn on sys.path
    from a2cnn.colour_data import load_colour_data
    from a2cnn.training import TrainConfig, train_colourizer

    data = load_colour_data(fast=False)
    print(data.describe(), flush=True)
    for name in args.models.split(","):
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)
        model = ref[name](kernel=config.kernel, num_filters=config.num_filters, num_colours=data.num_colours, num_in_channels=1)
        started = time.perf_counter()
        history = train_colourizer(model, data, config, progress=False, log=None)
        print(f"{name}: {history.summary()} | best val loss {min(history.val_loss):.4f} | "
              f"{time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
