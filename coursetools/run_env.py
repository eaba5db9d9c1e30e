"""Environment for running the solution notebook: mode, data mirror and honest fallbacks."""
import os
from pathlib import Path

from . import REPO_ROOT

DEFAULT_MIRROR = REPO_ROOT.parent / "shared" / "data"


def find_mirror():
    """A2_DATA_DIR if set, else ../shared/data beside the checkout when it exists, else None."""
    value = os.environ.get("A2_DATA_DIR")
    if value:
        return Path(value)
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def has_trimaps(mirror):
    return mirror is not None and (mirror / "oxford17" / "trimaps").is_dir()


def solution_env(mode):
    """Variables for a solution run in ``mode`` ('fast' or 'full') and the notes to print about them."""
    env, notes = {"A2_FAST": "1" if mode == "fast" else "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}, []
    mirror = find_mirror()
    if mirror is not None:
        env["A2_DATA_DIR"] = str(mirror)
        notes.append(f"data mirror: {mirror}")
    else:
        notes.append("no data mirror (A2_DATA_DIR unset, ../shared/data absent): data will be downloaded")
    if os.environ.get("A2_OXFORD17_MASKS"):
        env["A2_OXFORD17_MASKS"] = os.environ["A2_OXFORD17_MASKS"]
    elif mirror is not None and not has_trimaps(mirror):
        env["A2_OXFORD17_MASKS"] = "synthetic-demo"
        notes.append("Oxford-17 trimaps absent from the mirror: Part C runs on SYNTHETIC DEMO MASKS (its figures mean nothing)")
    return env, notes


def run_cache_folder(mode, requested=None, fresh=False):
    """Where a solution run keeps its finished training runs (``A2_RUN_CACHE``), or None for none.

    Full mode keeps them by default, outside the repository (``$A2_CACHE_DIR/solve-full``), so that a run stopped
    by the end of a session resumes next time; fast mode only when ``requested``. ``fresh`` empties the folder."""
    import shutil

    if requested is not None and requested.strip().lower() == "none":
        return None
    if requested:
        folder = Path(requested).expanduser()
    elif mode == "full":
        folder = Path(os.environ.get("A2_CACHE_DIR", Path.home() / ".cache" / "a2-cnn")).expanduser() / "solve-full"
    else:
        return None
    if fresh and folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
