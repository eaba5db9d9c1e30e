"""Class-grading throughput, as a ratio measured back to back (the machines are noisy).

    python scripts/bench_batch.py [--students 6] [--parts cnn,unet,finetune] [--jobs N] [--set NAME=VALUE]

Builds a class of corpus submissions (the reference and flawed ones, in turn), then grades it twice into fresh
result folders, one right after the other: serially (``jobs=1``) and with the pool (``--jobs``, default: the
driver's own choice). It prints both times, the throughput ratio, and whether every student got the same per-check
points both ways. ``--set`` changes a setting for both runs (e.g. ``--set training_processes=1`` for the serial
driver as it was before a grade trained its UNet in a second process; the pool always uses 1).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "source" / "a2-cnn")]

from autograder import batch  # noqa: E402
from autograder.config import GraderConfig  # noqa: E402
from tests.corpus import BY_NAME, build  # noqa: E402

MIX = ("reference", "missing_relu", "uses_nn_conv2d", "zero_skip", "optimizer_gets_all", "syntax_error")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--parts", default="cnn,unet,finetune")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    from autograder.settings import parse

    changes = dict(pair.split("=", 1) for pair in args.set)
    config = GraderConfig(parts=tuple(args.parts.split(",")), **{k: parse(k, v) for k, v in changes.items()})
    jobs = args.jobs or batch.default_jobs(config)
    with tempfile.TemporaryDirectory(prefix="a2-bench-batch-") as scratch:
        scratch = Path(scratch)
        for i in range(args.students):
            folder = scratch / "submitted" / f"student{i:03d}" / "a2-cnn"
            folder.mkdir(parents=True)
            build(BY_NAME[MIX[i % len(MIX)]], folder / "a2-cnn.ipynb")
        timings, checks = {}, {}
        for label, n in (("serial", 1), (f"pool of {jobs}", jobs)):
            started = time.perf_counter()
            rows = batch.grade_tree(scratch / "submitted", scratch / label.replace(" ", "-"), config,
                                    progress=False, jobs=n)
            timings[label] = time.perf_counter() - started
            checks[label] = {student: record.checks for student, record in rows}
            print(f"{label}: {timings[label]:.1f} s for {args.students} submissions "
                  f"({timings[label] / args.students:.1f} s each)", flush=True)
    serial, pooled = timings.values()
    print(f"throughput ratio pool / serial: {serial / pooled:.2f}x")
    same = len(set(map(lambda c: repr(sorted(c.items())), checks.values()))) == 1
    print(f"identical per-check points: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
