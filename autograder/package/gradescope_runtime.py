"""What the Gradescope package's scripts call on Gradescope's machine (``python -m autograder.package.gradescope_runtime``).

* ``prepare`` (from ``setup.sh``, once): makes the grader's files root-only except what the sandbox shows a worker,
  then fails loudly unless this machine can grade: the sandbox starts, and when
  the training checks are graded, the horse images are there (downloaded from the official address with their
  checksum when they are not) and are those the tier was calibrated on.
* ``run`` (from ``run_autograder``, per submission): grades the notebook in ``$AUTOGRADER_ROOT/submission`` and
  writes ``$AUTOGRADER_ROOT/results/results.json``, always: a missing notebook or a grader error gives a valid
  results file that says so (the instructor log, with the details, goes to the script's output, which Gradescope
  shows to instructors only).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .. import feedback, gradescope
from .gradescope import SETTINGS_FILE, config_from_settings

GRADER_DIR = Path(__file__).resolve().parents[2]  # grader/ inside the package (the project root elsewhere)
EXPECTED_NAME = "a2-cnn.ipynb"


def autograder_root() -> Path:
    return Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))


def load_config():
    path = GRADER_DIR / SETTINGS_FILE
    settings = json.loads(path.read_text()) if path.is_file() else {}
    return config_from_settings(settings)


def find_notebook(submission_dir: Path) -> tuple[Path | None, str]:
    """The notebook to grade, or (None, why not). Several notebooks: the one named like the release."""
    notebooks = sorted(p for p in submission_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not notebooks:
        return None, f"no notebook (.ipynb file) was submitted; upload {EXPECTED_NAME}"
    if len(notebooks) == 1:
        return notebooks[0], ""
    named = [p for p in notebooks if p.name == EXPECTED_NAME]
    if len(named) == 1:
        return named[0], ""
    names = ", ".join(feedback.identifier(p.name) for p in notebooks[:5])
    return None, f"{len(notebooks)} notebooks were submitted ({names}); upload only {EXPECTED_NAME}"


def _failure_results(message: str, seconds: float) -> dict:
    return {"score": 0.0, "execution_time": round(seconds, 1), "output": feedback.bound(message, 2000),
            "stdout_visibility": "hidden", "tests": []}


def run() -> int:
    started = time.perf_counter()
    root = autograder_root()
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    results_path = results_dir / "results.json"
    try:
        config = load_config()
        notebook, problem = find_notebook(root / "submission")
        if notebook is None:
            results_path.write_text(json.dumps(_failure_results(problem, time.perf_counter() - started), indent=2))
            print(problem)
            return 0
        from ..grade import grade_notebook
        from ..results import instructor_log_text, settings_of

        report = grade_notebook(notebook, config)
        results_path.write_text(gradescope.results_text(report, **settings_of(config)), encoding="utf-8")
        print(instructor_log_text(report))  # Gradescope shows this output to instructors only
        return 1 if report.grader_errors else 0
    except Exception as exc:  # noqa: BLE001 - a grader bug: never leave the student without a results file
        message = ("The autograder itself failed on this submission (not your fault); the instructor will regrade "
                   "it.")
        results_path.write_text(json.dumps(_failure_results(message, time.perf_counter() - started), indent=2))
        print(f"GRADER ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def shown_to_workers(config) -> list[Path]:
    """The files a worker's sandbox shows it (read-only there): its own code and the pristine helper package."""
    from ..execution import worker_view
    from ..sandbox.runner import full_view

    return [Path(host).resolve() for host, _target in full_view(worker_view(config), ()).mounts]


def lock_down(source_dir: Path, shown: list[Path]) -> None:
    """Make everything under ``source_dir`` readable by its owner (root) only, except the files in ``shown``,
    which the sandbox needs readable by the unprivileged user that runs student code. The master notebook, the
    calibration and the parent's own modules stay root-only."""
    def paths(top: Path):
        return [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]

    for path in paths(source_dir):
        if not path.is_symlink():
            os.chmod(path, path.stat().st_mode & 0o700)
    for top in shown:
        for path in paths(top):
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | (0o055 if path.is_dir() else 0o044))


def prepare() -> int:
    from ..cli import isolation_line
    from ..sandbox.view import ViewError, check_available
    from ..tiers import TierError, select_tier

    config = load_config()
    lock_down(GRADER_DIR.parent, shown_to_workers(config))
    print(isolation_line())
    try:
        check_available()  # cached: the line above already tried it
    except ViewError:
        return 1
    if "learning" not in config.parts:
        print("training checks not graded by this package: no data needed")
        return 0
    from ..calibrate import CalibrationError, load_thresholds
    from ..learning import data_fingerprint, describe_data, tier_data

    try:
        tier = select_tier(config.tier)
        thresholds = load_thresholds(tier)
        data = tier_data(tier)
    except (TierError, CalibrationError) as exc:
        print(f"the training checks cannot be graded here: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the data could not be read or downloaded
        print(f"the horse images could not be loaded: {type(exc).__name__}: {exc}")
        return 1
    if thresholds.get("data_fingerprint") != data_fingerprint(data):
        print(f"the horse images here ({describe_data(data)}) are not those tier {tier.name} was calibrated on")
        return 1
    print(f"training checks: tier {tier.name}, {describe_data(data)}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"prepare": prepare, "run": run}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m autograder.package.gradescope_runtime {'|'.join(commands)}", file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main())
