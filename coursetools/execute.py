"""Execute a notebook headless with nbclient, as a student's Jupyter would, and save it with its outputs."""
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute_notebook(notebook, out_path, cwd, env_overrides=None, timeout=1800):
    """Run every cell of ``notebook`` in a fresh kernel started in ``cwd``; write the executed copy to ``out_path``.

    ``env_overrides`` are set in this process for the kernel's lifetime (the kernel inherits them) and restored
    afterwards. Returns the wall-clock seconds. A failing cell raises nbclient's CellExecutionError after the
    partly executed notebook has been written, so nothing is lost.
    """
    nb = nbformat.read(notebook, as_version=4)
    saved = {key: os.environ.get(key) for key in (env_overrides or {})}
    os.environ.update({k: str(v) for k, v in (env_overrides or {}).items()})
    started = time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
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
