"""Part C: fine-tuning ``classifier.4`` with the feature cache, against one backbone pass and the uncached loop.

    python -m benchmarks.partc [--pictures 8] [--epochs 10] [--size 224] [--rounds 3] [--uncached-rounds 1]

Same model, pictures, loader and threads on every side: torchvision's DeepLabV3 (random weights: no pretrained
file is needed, and the cost is the same), frozen with the reference ``freeze_and_replace``, fine-tuned with Adam on
``classifier.4`` as the reference ``train`` does, over a shuffled DataLoader of Oxford-17 pictures (batch 4).

* uncached: ``a2cnn.finetune.run_finetune_epochs`` running the whole model on every batch of every epoch;
* one pass: the pictures loaded once and run once through the frozen part (backbone and ``classifier[0:4]``), the
  least any fine-tuning of the last layer must spend;
* cached: ``run_finetune_epochs`` with its feature cache (features entering ``classifier.4`` computed once).

The sides run alternately; the last line is ``ratio: cached/one-pass`` of the medians (the uncached loop's when the
package has no feature cache, which the output then says).
"""
import argparse
import inspect

import torch
import torch.nn as nn

from . import timing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, default=8, help="training pictures (the course has about 500)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=224, help="picture side in pixels (the notebook's SEG_SIZE)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each side, alternating")
    parser.add_argument("--uncached-rounds", type=int, default=1,
                        help="timed runs of the uncached loop (the slow side: it runs in the first rounds only)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every side")
    parser.add_argument("--architecture", default="resnet50", choices=["resnet50", "resnet101"])
    parser.add_argument("--masks", default="synthetic-demo", choices=["synthetic-demo", "official"],
                        help="which masks (the cost is the same; the mirror may lack the official trimaps)")
    args = parser.parse_args(argv)

    timing.use_data_mirror()
    from autograder.reference import load_reference

    reference = load_reference()  # also puts the pristine a2cnn on sys.path
    from torchvision.models import segmentation

    from a2cnn.finetune import run_finetune_epochs
    from a2cnn.oxford17 import FlowerSegmentation

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    build = getattr(segmentation, f"deeplabv3_{args.architecture}")
    model = reference["freeze_and_replace"](build(weights=None, weights_backbone=None)).eval()
    head = model.classifier[4]
    initial_head = {name: tensor.clone() for name, tensor in head.state_dict().items()}
    pictures = FlowerSegmentation("train", size=args.size, mask_source=args.masks, limit=args.pictures)
    has_cache = "feature_cache" in inspect.signature(run_finetune_epochs).parameters
    heads = {}

    def loader():
        # a fresh generator per run: every run sees the same batches in the same order
        return torch.utils.data.DataLoader(pictures, batch_size=args.batch_size, shuffle=True,
                                           generator=torch.Generator().manual_seed(0))

    def fine_tune(name, **options):
        head.load_state_dict(initial_head)
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
        run_finetune_epochs(model, loader(), optimizer, args.epochs, "cpu", progress=False, **options)
        heads[name] = {key: tensor.clone() for key, tensor in head.state_dict().items()}

    frozen_head = nn.Sequential(*list(model.classifier)[:4])  # the classifier up to classifier.4, shared modules

    @torch.no_grad()
    def one_pass():
        for images, _ in loader():
            frozen_head(model.backbone(images)["out"])

    cached, uncached = f"cached, {args.epochs} epochs", f"uncached, {args.epochs} epochs"
    sides = {"one pass": one_pass}
    if has_cache:
        sides[cached] = lambda: fine_tune("cached")
        sides[uncached] = lambda: fine_tune("uncached", feature_cache=False)
    else:
        sides[uncached] = lambda: fine_tune("uncached")

    print(f"DeepLabV3-{args.architecture} (random weights), {len(pictures)} pictures of {args.size}x{args.size} "
          f"({pictures.mask_source} masks), batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds alternating ({args.uncached_rounds} for the uncached loop) after one untimed batch; "
          "seconds per run:", flush=True)
    with torch.no_grad():
        model(next(iter(loader()))[0])  # warm-up: the first call of each kernel pays for its setup
    wall, cpu = timing.alternate(sides, args.rounds, warm_up=False, fewer={uncached: args.uncached_rounds})
    timing.print_sides(wall, cpu)
    one_pass_seconds = timing.median(wall["one pass"])
    per_epoch = timing.median(wall[uncached]) / args.epochs
    print(f"uncached: {per_epoch:.2f} s per epoch, {per_epoch / one_pass_seconds:.2f} backbone "
          "passes per epoch")
    if has_cache:
        gap = max((heads["cached"][key] - heads["uncached"][key]).abs().max().item() for key in heads["cached"])
        print(f"same head: largest difference of classifier.4 between cached and uncached {gap:.2g}")
        print(f"ratio: {timing.median(wall[cached]) / one_pass_seconds:.2f}")
    else:
        print("a2cnn.finetune has no feature cache yet: the ratio below is the uncached loop's (uncached/one-pass)")
        print(f"ratio: {timing.median(wall[uncached]) / one_pass_seconds:.2f}")


if __name__ == "__main__":
    main()
