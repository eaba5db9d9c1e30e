"""GraderConfig: every setting of the grader, with its default and what it means."""
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HELPER_DIR = REPO_ROOT / "source" / "a2-cnn"  # the grader's pristine copy of a2cnn/ (never the student's)


def _setting(default, description):
    return field(default=default, metadata={"description": description})


@dataclass
class GraderConfig:
    parts: tuple = _setting(("cnn", "unet", "finetune", "learning"), "parts to grade, in this order")
    tier: str = _setting("auto", "training-check tier: cpu, gpu, or auto (gpu when CUDA is present)")
    part_timeout_seconds: float = _setting(180.0, "wall-clock limit of one part's sandboxed run (structure checks)")
    learning_timeout_seconds: float = _setting(600.0, "wall-clock limit of the training checks' sandboxed run")
    memory_bytes: int = _setting(8 * 2**30, "address-space limit of a sandboxed run")
    output_bytes: int = _setting(64 * 2**10, "bytes of a part's stdout/stderr kept for the report")
    threads: int = _setting(2, "torch/OpenMP threads inside a sandboxed run")
    visibility: str = _setting("visible", "Gradescope visibility of every test: visible, after_due_date, after_published, hidden")
    helper_dir: Path = _setting(HELPER_DIR, "folder holding the pristine a2cnn/ helper package")

    @classmethod
    def describe(cls):
        """One line per setting: name, default, description (for --help and the README)."""
        return "\n".join(f"{f.name} = {f.default!r}: {f.metadata['description']}" for f in fields(cls))
