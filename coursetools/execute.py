"""Execute a notebook headless with nbclient, as a student's Jupyter would, and save it with its outputs."""
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute_notebook(notebook, out_path, cwd, env_overrides=None, timeout=1800, allow_errors=False):
    """Run every cell of ``notebook`` in a fresh kernel started in ``cwd``; write the executed copy to ``out_path``.

    ``env_overrides`` are set in this process for the kernel's lifetime (the kernel inherits them) and restored
    afterwards. Returns the wall-clock seconds. A failing cell raises nbclient's CellExecutionError after the
    partly executed notebook has been written, so nothing is lost; with ``allow_errors`` every cell runs (as for a
    student who runs each cell in turn) and the errors stay in the cells' outputs.
    """
    nb = nbformat.read(notebook, as_version=4)
    saved = {key: os.environ.get(key) for key in (env_overrides or {})}
    os.environ.update({k: str(v) for k, v in (env_overrides or {}).items()})
    started = time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                                resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_path)
    return time.perf_counter() - started


def _stamp(value):
    import datetime

    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def section_seconds(nb):
    """``{section: seconds}`` of an executed notebook: each code cell's run time (nbclient's timing metadata)
    added to the last ``## `` heading above it ("setup" before the first)."""
    sections, current = {}, "setup"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    current = line[3:].strip()
            continue
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (_stamp(end) - _stamp(start)).total_seconds()
            sections[current] = round(sections.get(current, 0.0) + seconds, 1)
    return sections
