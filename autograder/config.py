"""GraderConfig: every setting of the grader, with its default and what it means."""
from dataclasses import dataclass, field, fields
from pathlib import Path

GRADER_ROOT = Path(__file__).resolve().parents[1]   # the folder holding the `autograder` package
REPO_ROOT = GRADER_ROOT
HELPER_DIR = REPO_ROOT / "source" / "a2-cnn"  # the grader's pristine copy of a2cnn/ (never the student's)


def _setting(default, description):
    return field(default=default, metadata={"description": description})


@dataclass
class GraderConfig:
    parts: tuple = _setting(("cnn", "unet", "finetune", "learning"), "parts to grade, in this order")
    tier: str = _setting("auto", "training-check tier: cpu, gpu, or auto (gpu when CUDA is present)")
    cell_seconds: float = _setting(60.0, "time limit of one notebook cell (or a part's visible tests) in a worker")
    worker_seconds: float = _setting(900.0, "wall-clock limit of one worker process, whatever its steps")
    max_restarts: int = _setting(3, "fresh workers started after a step crashes or hangs, per grading run")
    memory_bytes: int = _setting(8 * 2**30, "address-space limit of a worker process")
    output_bytes: int = _setting(64 * 2**10, "bytes of a worker's stdout/stderr kept for the instructor's log")
    result_bytes: int = _setting(512 * 2**20, "bytes of data a worker may send back in all")
    tmp_bytes: int = _setting(256 * 2**20, "size of a worker's private /tmp")
    threads: int = _setting(1, "torch/OpenMP threads inside a worker and for the parent's own training")
    visibility: str = _setting("visible", "Gradescope visibility of every test: visible, after_due_date, after_published, hidden")
    check_visibility: tuple = _setting((), "Gradescope visibility of some checks, as (check name, visibility) pairs (overrides visibility)")
    not_run_policy: str = _setting("zero", "a check that cannot run here: zero (0 points, tagged for regrade) or exclude (max_score 0)")
    helper_dir: Path = _setting(HELPER_DIR, "folder holding the pristine a2cnn/ helper package")
    processes: int = _setting(64, "processes and threads a worker may run at once (RLIMIT_NPROC)")
    file_bytes: int = _setting(256 * 2**20, "largest file a worker may write (RLIMIT_FSIZE)")

    @classmethod
    def describe(cls):
        """One line per setting: name, default, description (for --help and the README)."""
        return "\n".join(f"{f.name} = {f.default!r}: {f.metadata['description']}" for f in fields(cls))
