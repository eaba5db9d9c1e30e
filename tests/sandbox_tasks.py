"""Grader-side tasks used by tests/test_sandbox*.py; imported by the sandbox child (tests/ is put on its sys.path).

``run_student`` plays the role of a real grading task: it executes "student" source code given in the payload and
returns the value the student code left in ``result``.
"""
import linecache


def run_student(payload):
    source = payload["source"]
    linecache.cache["<student>"] = (len(source), None, source.splitlines(True), "<student>")
    namespace = {"__name__": "__student__", "data": payload.get("data")}
    exec(compile(source, "<student>", "exec"), namespace)
    return namespace.get("result")


def echo(payload):
    return payload


def unserialisable(payload):
    return {1, 2, 3}


# ---------------------------------------------------------------- parent-side helpers for the tests
TESTS_DIR = __import__("os").path.dirname(__import__("os").path.abspath(__file__))


def run_source(source, data=None, env=None, **limits):
    """Run student ``source`` through the sandbox exactly as a grading task would."""
    from autograder.sandbox import Limits, run_isolated
    return run_isolated("sandbox_tasks:run_student", {"source": source, "data": data}, Limits(**limits),
                        extra_sys_path=[TESTS_DIR], env=env)


def alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
