"""What the bubblewrap view costs per worker start, measured back to back with a plain start.

    python scripts/bench_sandbox.py [--rounds 10]

Each round starts the interpreter twice, one right after the other: plainly, and inside the view a worker gets
(``autograder.sandbox.view.build_command``), first with ``-c pass`` and then importing torch as a worker does. It
prints the medians and the added milliseconds and ratio.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.sandbox.view import View, build_command, interpreter, site_package_mounts  # noqa: E402


def _time(argv):
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    view = View()
    paths = [target for _host, target in site_package_mounts()]
    plain_paths = [host for host, _target in site_package_mounts()]
    for label, code in (("start", "pass"), ("start + import torch", "import torch")):
        def program(sys_path):
            return f"import sys; sys.path[:0] = {sys_path!r}; {code}"

        plain, boxed = [], []
        for _ in range(args.rounds):
            plain.append(_time([interpreter(), "-S", "-c", program(plain_paths)]))
            boxed.append(_time(build_command(view, [interpreter(), "-S", "-c", program(paths)])))
        p, b = statistics.median(plain), statistics.median(boxed)
        print(f"{label}: plain {1000 * p:.0f} ms, in the bubblewrap view {1000 * b:.0f} ms "
              f"(+{1000 * (b - p):.0f} ms, ratio {b / p:.2f}; medians of {args.rounds})")


if __name__ == "__main__":
    main()
