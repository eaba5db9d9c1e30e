"""Isolation layer of the hidden autograder: run grader tasks on untrusted student code in a limited child process.

    from autograder.sandbox import Limits, run_isolated
    result = run_isolated("autograder.worker.main:run", {"steps": steps}, Limits(wall_seconds=120), view=view)
    result.status  # "ok" | "error" | "timeout" | "memory" | "file_size" | "crashed" | "stopped" | "internal"

See :mod:`autograder.sandbox.runner` for what is and is not isolated.
"""
from autograder.sandbox.limits import Limits
from autograder.sandbox.runner import STATUSES, SandboxResult, run_isolated

__all__ = ["Limits", "SandboxResult", "STATUSES", "run_isolated"]
