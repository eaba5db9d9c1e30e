"""Grading cost, as ratios measured back to back (the machines are noisy; absolute times are not comparable).

    python scripts/bench_grading.py [--rounds 3] [--parts cnn,unet,finetune] [--set NAME=VALUE] [--against NAME=VALUE]

Each round times, one right after the other, on the reference submission of ``tests/corpus.py``:

* ``grader``: ``python -m autograder grade SUBMISSION --parts PARTS`` (sandboxed workers, checks in the parent);
* ``nbgrader``: plain ``nbgrader autograde`` of the same notebook in a scratch course with nbgrader's own settings
  (its Execute preprocessor runs the notebook in one kernel, no isolation): the baseline a course would otherwise use.

It prints every time and the ratio grader / nbgrader per round and their median. ``--set`` passes a setting to the
grader; ``--against NAME=VALUE`` also times, in the same round, the grader with that setting instead, and prints the
ratio of the two grader runs (e.g. ``--parts cnn,unet,finetune,learning --against training_processes=1``).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "source" / "a2-cnn")]

from tests.corpus import BY_NAME, build  # noqa: E402

PLAIN_CONFIG = """c = get_config()
c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "a2-cnn"
c.ExecutePreprocessor.timeout = 600
"""


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
                PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _run(args, cwd):
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 3):  # 3: finished, some checks could not run here
        raise SystemExit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds


def scratch_course(root: Path) -> Path:
    """A plain nbgrader course with the master and one submission of the reference."""
    course = root / "course"
    shutil.copytree(REPO_ROOT / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    (course / "nbgrader_config.py").write_text(PLAIN_CONFIG)
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "a2-cnn", "--force"], course)
    submitted = course / "submitted" / "student1" / "a2-cnn"
    submitted.mkdir(parents=True)
    shutil.copytree(course / "release" / "a2-cnn" / "a2cnn", submitted / "a2cnn")
    build(BY_NAME["reference"], submitted / "a2-cnn.ipynb")
    return course


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="cnn,unet,finetune")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting for the grader")
    parser.add_argument("--against", metavar="NAME=VALUE", help="also time the grader with this setting")
    args = parser.parse_args(argv)
    settings = [item for pair in args.set for item in ("--set", pair)]
    with tempfile.TemporaryDirectory(prefix="a2-bench-") as tmp:
        course = scratch_course(Path(tmp))
        notebook = course / "submitted" / "student1" / "a2-cnn" / "a2-cnn.ipynb"
        ratios, against_ratios = [], []
        grade = [sys.executable, "-m", "autograder", "grade", str(notebook), "--parts", args.parts, *settings]
        for round_number in range(1, args.rounds + 1):
            grader = _run(grade, REPO_ROOT)
            plain = _run([sys.executable, "-m", "nbgrader", "autograde", "a2-cnn", "--student", "student1", "--force"],
                         course)
            ratios.append(grader / plain)
            line = (f"round {round_number}: grader ({args.parts}) {grader:.1f} s, nbgrader autograde {plain:.1f} s, "
                    f"ratio {grader / plain:.2f}")
            if args.against:
                other = _run(grade + ["--set", args.against], REPO_ROOT)
                against_ratios.append(grader / other)
                line += f"; grader with {args.against} {other:.1f} s, ratio {grader / other:.2f}"
            print(line, flush=True)
        print(f"median ratio grader / nbgrader: {statistics.median(ratios):.2f} over {len(ratios)} rounds")
        if against_ratios:
            print(f"median ratio grader / grader with {args.against}: {statistics.median(against_ratios):.2f}")


if __name__ == "__main__":
    main()
