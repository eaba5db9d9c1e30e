"""GraderConfig: every setting of the grader, each defined once here: name, type, default, meaning and the values it
may take. Where a value comes from (this default, the course's settings file, the command line) is
``settings.py``'s job.

The annotations are real types (no ``from __future__ import annotations``): ``settings.py`` reads them to parse and
check values from a file or the command line.
"""
from dataclasses import dataclass, field, fields
from pathlib import Path

from .gradescope import NOT_RUN_POLICIES, VISIBILITIES
from .parts import NAMES as PART_NAMES

GRADER_ROOT = Path(__file__).resolve().parents[1]   # the folder holding the `autograder` package
REPO_ROOT = GRADER_ROOT
HELPER_DIR = REPO_ROOT / "source" / "a2-cnn"  # the grader's pristine copy of a2cnn/ (never the student's)
TIER_CHOICES = ("cpu", "gpu", "auto")


def _setting(default, description, choices=(), minimum=None, grading=True):
    """``choices``: the values allowed (for a tuple setting: of each item); ``minimum``: the least number allowed;
    ``grading``: whether the value can change a grade (batch regrades a student when such a setting changes)."""
    return field(default=default, metadata={"description": description, "choices": tuple(choices),
                                            "minimum": minimum, "grading": grading})


@dataclass
class GraderConfig:
    parts: tuple = _setting(PART_NAMES, "parts to grade, in this order", choices=PART_NAMES)
    tier: str = _setting("auto", "training-check tier: cpu, gpu, or auto (gpu when CUDA is present)",
                         choices=TIER_CHOICES)
    cell_seconds: float = _setting(60.0, "time limit of one notebook cell (or a part's visible tests) in a worker",
                                   minimum=1)
    worker_seconds: float = _setting(900.0, "wall-clock limit of one worker process, whatever its steps", minimum=1)
    max_restarts: int = _setting(3, "fresh workers started after a step crashes or hangs, per grading run", minimum=0)
    memory_bytes: int = _setting(8 * 2**30, "address-space limit of a worker process", minimum=2**28)
    output_bytes: int = _setting(64 * 2**10, "bytes of a worker's stdout/stderr kept for the instructor's log",
                                 minimum=0)
    result_bytes: int = _setting(512 * 2**20, "bytes of data a worker may send back in all", minimum=2**20)
    tmp_bytes: int = _setting(256 * 2**20, "size of a worker's private /tmp", minimum=2**20)
    threads: int = _setting(1, "torch/OpenMP threads inside a worker and for the parent's own training", minimum=1)
    training_processes: int = _setting(2, "processes training the CNN and the UNet of the training checks at once: "
                                          "2 trains the UNet in a second grader process (the same figures, in about "
                                          "half the time where a core is free); 1 trains both here, in turn; `batch` "
                                          "uses 1 when it grades several submissions at a time", minimum=1,
                                       grading=False)
    visibility: str = _setting("visible", "Gradescope visibility of every test: visible, after_due_date, "
                                          "after_published, hidden", choices=VISIBILITIES)
    check_visibility: tuple = _setting((), "Gradescope visibility of some checks, as (check name, visibility) pairs "
                                           "(overrides visibility)")
    not_run_policy: str = _setting("zero", "a check that cannot run here: zero (0 points, tagged for regrade) or "
                                           "exclude (max_score 0)", choices=NOT_RUN_POLICIES)
    helper_dir: Path = _setting(HELPER_DIR, "folder holding the pristine a2cnn/ helper package")
    processes: int = _setting(64, "processes and threads a worker may run at once (RLIMIT_NPROC)", minimum=8)
    file_bytes: int = _setting(256 * 2**20, "largest file a worker may write (RLIMIT_FSIZE)", minimum=2**20)
    jobs: int = _setting(0, "grades at a time in `batch` (0: the cores over each grade's threads, as memory allows)",
                         minimum=0, grading=False)
    min_score: float | None = _setting(None, "points a submission needs to pass `grade --classroom` (exit 0); unset: "
                                             "every point of the parts graded", minimum=0, grading=False)


def grading_settings(config: GraderConfig) -> dict:
    """{name: value} of the settings that can change a grade (not those that only schedule or judge a grade)."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.metadata["grading"]}
