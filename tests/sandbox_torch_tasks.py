"""A grader task module that imports torch at module level (as real grading tasks do); see test_sandbox.py."""
import torch  # noqa: F401 - imported before the sandbox drops privileges

from sandbox_tasks import run_student  # noqa: F401 - re-exported as this module's task
