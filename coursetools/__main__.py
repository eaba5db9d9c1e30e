"""Instructor commands.

    python -m coursetools release [--check]     regenerate release/a2-cnn (or only check it is up to date)
    python -m coursetools solve --mode fast|full execute the master notebook with its solutions

Exit codes: 0 success, 1 the release is out of date (--check) or a notebook cell failed, 2 usage error.
"""
import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient.exceptions import CellExecutionError

from . import MASTER_NOTEBOOK, RELEASE_DIR, REPO_ROOT, SOLUTIONS_DIR, SOURCE_DIR
from .execute import execute_notebook, section_seconds
from .release import generate_release, release_differences
from .run_env import run_cache_folder, solution_env


def cmd_release(args):
    if not args.check:
        generate_release(SOURCE_DIR, RELEASE_DIR)
        print(f"release written to {RELEASE_DIR}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate_release(SOURCE_DIR, Path(tmp) / "release")
        differing = release_differences(fresh, RELEASE_DIR)
    if differing:
        print("release/ is out of date; run `python -m coursetools release`. Differing:", *differing, sep="\n  ")
        return 1
    print("release/ is up to date")
    return 0


def cmd_solve(args):
    out_dir = Path(args.out) if args.out else (SOLUTIONS_DIR if args.mode == "full" else REPO_ROOT / "runs" / "fast")
    out_path = out_dir / MASTER_NOTEBOOK.name
    env, notes = solution_env(args.mode)
    cache = run_cache_folder(args.mode, args.cache, args.fresh)
    if cache is not None:
        env["A2_RUN_CACHE"] = str(cache)
        kept = len(list(cache.glob("*.json")))
        notes.append(f"resumable: finished training runs are kept in {cache} ({kept} kept from earlier runs are "
                     "reused when they match exactly; --fresh starts over)")
    for note in notes:
        print(note)
    print(f"executing {MASTER_NOTEBOOK.relative_to(REPO_ROOT)} in {args.mode} mode ...", flush=True)
    started = time.time()
    status, error = "ok", None
    try:
        seconds = execute_notebook(MASTER_NOTEBOOK, out_path, cwd=SOURCE_DIR, env_overrides=env, timeout=args.cell_timeout)
    except CellExecutionError as exc:
        status, error, seconds = "failed", str(exc)[-3000:], time.time() - started
    info = {
        "mode": args.mode, "status": status, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "torch": torch.__version__, "cuda": torch.cuda.is_available(), "machine": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpus": __import__("os").cpu_count(), "environment": env, "notes": notes,
        "seconds_per_section": section_seconds(nbformat.read(out_path, as_version=4)) if out_path.is_file() else {},
    }
    (out_dir / "run-info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"{status}: {seconds:.0f} s; executed notebook: {out_path}; run details: {out_dir / 'run-info.json'}")
    if error:
        print(error, file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m coursetools", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="regenerate the student release with nbgrader")
    release.add_argument("--check", action="store_true", help="only check that release/ matches a fresh generation")
    release.set_defaults(func=cmd_release)
    solve = sub.add_parser("solve", help="execute the master notebook (with solutions) headless")
    solve.add_argument("--mode", choices=["fast", "full"], default="fast", help="fast: subsets, 1 epoch; full: the handout's settings")
    solve.add_argument("--out", help="folder for the executed notebook (default: runs/fast or solutions/)")
    solve.add_argument("--cell-timeout", type=int, default=7200, help="seconds one cell may run")
    solve.add_argument("--cache", help="folder that keeps finished training runs, so that a stopped run resumes "
                                       "(default in full mode: $A2_CACHE_DIR/solve-full; 'none' turns it off)")
    solve.add_argument("--fresh", action="store_true", help="forget the kept training runs and train everything again")
    solve.set_defaults(func=cmd_solve)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
