"""(Runs in the sandbox child.) Build the namespace a part's checks see.

The master's own setup cell provides the imports, against the grader's pristine a2cnn package (the child's sys.path
points at the grader's copy; the working directory is an empty temporary folder, so a student's edited a2cnn/ is
never imported). Then only the *definitions* of the student's solution cells are executed.
"""
import contextlib
import io

from . import feedback
from .extract import try_definitions_only


def run_setup(setup_source):
    """Execute the master's setup cell (trusted code), without its IPython magics."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in setup_source.splitlines())
    ns = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<setup_imports>", "exec"), ns)
    return ns


def add_student_definitions(ns, sources, ignored=None):
    """Execute the definitions of each student cell into ``ns``; return {grade_id: problem message}.

    ``ignored``, if a dict, receives {grade_id: [top-level statements that were not executed]}.
    """
    problems = {}
    for grade_id, source in sources.items():
        code, dropped, error = try_definitions_only(source)
        if dropped and ignored is not None:
            ignored[grade_id] = dropped
        if error:
            problems[grade_id] = f"cell {grade_id} cannot be parsed: {error}"
            continue
        try:
            exec(compile(code, f"<cell {grade_id}>", "exec"), ns)
        except Exception as exc:  # student code: report, never crash the child
            problems[grade_id] = f"cell {grade_id} raised {feedback.error_excerpt(type(exc).__name__, exc)} while being defined"
    return problems
