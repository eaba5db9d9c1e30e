"""Resource limits for one sandboxed run, and how the child applies them.

The defaults were measured on the course machine (CPU-only torch 2.x wheel built with CUDA, Python 3.11):

* ``import torch`` alone maps about 3.1 GiB of address space (CUDA/cuDNN libraries are mapped even without a GPU)
  while touching only ~0.5 GiB; ``import torchvision`` brings it to 3.4 GiB;
* a small conv net forward/backward adds a few MiB;
* a DeepLabV3-ResNet50 forward/backward on a 4x3x224x224 batch (the biggest Part C workload) peaks at 4.6 GiB of
  address space (1.9 GiB resident).

``RLIMIT_AS`` limits *address space*, not resident memory, so the default is 8 GiB: ~3.4 GiB of mapped libraries plus
~4.6 GiB for the work itself. A 50 GiB allocation or a runaway list still fails in milliseconds to seconds.
With ``OMP_NUM_THREADS=1`` torch runs one thread per process; ``RLIMIT_NPROC`` counts threads too, so the default of 64
leaves room for torch's helper threads and a couple of DataLoader workers while stopping a fork bomb at 64 tasks.
"""
from __future__ import annotations

import dataclasses
import os
import resource

GiB = 2**30
MiB = 2**20
KiB = 2**10


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use. All sizes in bytes, all times in seconds."""

    wall_seconds: float = 60.0
    """Default 60.0. Wall-clock limit enforced by the parent, measured from process start (Python start-up and
    ``import torch``, about 2-3 s, included); on expiry the whole process group / sandbox uid is SIGKILLed."""

    cpu_seconds: int = 120
    """Default 120. ``RLIMIT_CPU`` soft limit (SIGXCPU), hard limit 2 s later (SIGKILL). Counts all threads."""

    memory_bytes: int = 8 * GiB
    """Default 8 GiB. ``RLIMIT_AS`` (virtual address space) per process; see the module docstring for why torch
    needs this much address space. Not a limit on the sum over forked processes (``max_processes`` bounds that)."""

    max_processes: int = 64
    """Default 64. ``RLIMIT_NPROC``: processes *and threads* of the sandbox uid. Only enforced by the kernel when
    privileges are dropped to a dedicated uid (the grader runs as root); as a non-root user the limit is set to the
    user's current task count plus this number."""

    output_bytes: int = 64 * KiB
    """Default 64 KiB. stdout and stderr are each kept up to this many bytes (the rest is read and discarded, and a
    ``[truncated]`` marker is appended)."""

    file_size_bytes: int = 256 * MiB
    """Default 256 MiB. ``RLIMIT_FSIZE``: largest regular file the code may write (writes beyond it fail with EFBIG).
    Does not bound the number of files (no disk quota)."""

    open_files: int = 1024
    """Default 1024. ``RLIMIT_NOFILE``."""

    threads: int = 1
    """Default 1. ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` (and ``torch.set_num_threads``
    when the task already imported torch) once the child has dropped privileges; the task import itself runs with 1."""

    result_bytes: int = 32 * MiB
    """Default 32 MiB. Largest encoded result message the parent accepts from the task."""

    drop_privileges: bool = True
    """Default True. When the grader runs as root, run the task as a dedicated unprivileged uid from a private pool
    (so ``RLIMIT_NPROC`` is enforced, the code cannot write the grader's files, and every leftover process can be
    found and killed by uid). Ignored when the grader is not root."""

    isolate_network: bool = True
    """Default True. When root, put the child in fresh network and IPC namespaces (no interfaces but a downed
    loopback: no network at all). Best effort: silently skipped where ``unshare`` is not permitted."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in ("bool", bool):
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Limits":
        return cls(**data)


def _set(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    current_soft, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:  # never try to raise a hard limit we were given
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def count_tasks_of_uid(uid: int) -> int:
    """Processes plus threads whose real uid is ``uid`` (what RLIMIT_NPROC counts)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        try:
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields.get("Threads", "1"))
        except (KeyError, ValueError):
            continue
    return total


def apply_limits(limits: Limits, *, dedicated_uid: bool) -> None:
    """Apply the rlimits to the calling process (the child, before it runs any untrusted code).

    ``dedicated_uid``: the process is about to switch to a uid used by nothing else, so RLIMIT_NPROC can be the bare
    ``max_processes``; otherwise it is added to the tasks the current user already has.
    """
    _set(resource.RLIMIT_CORE, 0)
    _set(resource.RLIMIT_AS, int(limits.memory_bytes))
    _set(resource.RLIMIT_CPU, int(limits.cpu_seconds), int(limits.cpu_seconds) + 2)
    _set(resource.RLIMIT_FSIZE, int(limits.file_size_bytes))
    _set(resource.RLIMIT_NOFILE, int(limits.open_files))
    nproc = int(limits.max_processes)
    if not dedicated_uid:
        nproc += count_tasks_of_uid(os.getuid())
    _set(resource.RLIMIT_NPROC, nproc)
