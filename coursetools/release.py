"""Generate the student release with nbgrader, in a throw-away course directory.

Working in a temporary copy keeps the instructor's gradebook and folders untouched and lets a test compare a fresh
generation with the committed ``release/`` byte for byte.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import ASSIGNMENT, REPO_ROOT

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis")


class ReleaseError(RuntimeError):
    pass


def _nbgrader_env():
    # nbgrader starts `alembic` by name: the interpreter's bin folder must be on PATH.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def generate_release(source_dir, out_dir, assignment=ASSIGNMENT, config=REPO_ROOT / "nbgrader_config.py"):
    """Run ``nbgrader generate_assignment`` on ``source_dir`` and put the release into ``out_dir``."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="a2-course-") as tmp:
        course = Path(tmp)
        shutil.copy(config, course / "nbgrader_config.py")
        shutil.copytree(source_dir, course / "source" / assignment, ignore=_IGNORED)
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
            cwd=course, env=_nbgrader_env(), capture_output=True, text=True,
        )
        generated = course / "release" / assignment
        if proc.returncode != 0 or not generated.is_dir():
            raise ReleaseError(f"nbgrader generate_assignment failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(generated, out_dir)
    return out_dir


def release_differences(a, b):
    """Relative paths that differ between two release folders (missing on one side or different bytes)."""
    a, b = Path(a), Path(b)
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    differing = sorted(str(p) for p in files_a ^ files_b)
    differing += sorted(str(p) for p in files_a & files_b if (a / p).read_bytes() != (b / p).read_bytes())
    return differing
