"""The batch driver's second engine: a class graded on a Ray cluster (``batch --engine ray [--address ...]``).

One Ray task per submission. The notebook travels to the task as bytes and the grade comes back as text (Gradescope's
results.json, the instructor log) and the record's fields: nothing goes through a shared filesystem, and the driver
writes every file itself, exactly as the local pool does (``batch.save_grade``). Each task asks Ray for what one grade
uses: ``threads`` CPUs (the grader's workers run with that many torch threads), the memory of a grade, and one GPU
for the gpu tier, so Ray packs several CPU-tier grades, or the GPU-tier grades, onto the cluster's nodes.

The task is the grader's parent (trusted code): student code still runs only in the sandboxed workers it starts on
its node. Every node needs what any grading machine needs (bubblewrap, the data mirror or network) and this same
grader installed: the records carry the driver's grader key. A task whose node or process is lost is retried once
by Ray, then recorded as a grader error (never a score), as in the local pool.

Ray is an optional extra (``pip install -e ".[ray]"``); without ``--address`` a local Ray instance is started.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from .batch import MEMORY_PER_GRADE, NOTEBOOK, Record, grade_texts, record_lost_grade, save_grade, state_path
from .config import GraderConfig
from .tiers import select_tier

TASK_RETRIES = 1


class RayUnavailable(ValueError):
    """Ray is not installed, or the cluster cannot be reached."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the Ray engine needs Ray: pip install -e \".[ray]\"") from None
    return ray


def grade_remote(student: str, notebook: bytes, config: GraderConfig, key: str) -> tuple[str, str, dict]:
    """(On a Ray worker.) Grade the notebook's bytes; (results.json text, instructor log text, record fields)."""
    with tempfile.TemporaryDirectory(prefix="a2-ray-") as folder:
        path = Path(folder) / NOTEBOOK
        path.write_bytes(notebook)
        results, log, record = grade_texts(student, path, config, key)
    return results, log, dataclasses.asdict(record)


def task_resources(config: GraderConfig) -> dict:
    """What Ray reserves for one grade."""
    try:
        gpu = select_tier(config.tier).device.startswith("cuda")
    except Exception:  # noqa: BLE001 - the grade itself reports a tier that cannot run
        gpu = False
    return {"num_cpus": max(1, int(config.threads)), "memory": MEMORY_PER_GRADE, "num_gpus": 1 if gpu else 0}


def grade_on_ray(todo: dict, out_dir: Path, config: GraderConfig, done, address: str | None = None) -> None:
    """Grade ``todo`` ({student: (notebook path, key)}) as Ray tasks; ``done(record)`` for each, as it finishes."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - named to the instructor, as a usage problem
            raise RayUnavailable(f"cannot start or reach Ray ({type(exc).__name__}: {exc})") from None
    remote = ray.remote(max_retries=TASK_RETRIES, **task_resources(config))(grade_remote)
    pending = {}
    for student, (notebook, key) in todo.items():
        state_path(out_dir, student).unlink(missing_ok=True)  # killed from here on: no record, so graded again
        pending[remote.remote(student, Path(notebook).read_bytes(), config, key)] = student
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            student = pending.pop(ready[0])
            notebook, key = todo[student]
            try:
                results, log, fields = ray.get(ready[0])
                record = Record(**fields)
                save_grade(out_dir, results, log, record)
            except Exception as exc:  # noqa: BLE001 - the task failed twice (a lost node, a killed process)
                record = record_lost_grade(student, notebook, out_dir, config, key,
                                           f"grading task failed on Ray: {type(exc).__name__}")
            done(record)
    except BaseException:  # interrupted: cancel what is queued or running; what finished is on disk
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
