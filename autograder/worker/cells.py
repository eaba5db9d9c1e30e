"""Running notebook code in the worker: a cell as written, under a time limit, and a short account of its error."""
import contextlib
import signal
import traceback

from .ipython_syntax import prepare

_str, _type, _exec, _compile, _dict = str, type, exec, compile, dict  # bound before any student code runs
MESSAGE_CHARS = 300


class StepTimeout(BaseException):
    """Raised in the worker's main thread when a step runs past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block with StepTimeout after ``seconds`` (and again every second, should it be swallowed).
    Code that blocks SIGALRM is stopped by the parent instead, which kills the worker at the step's deadline."""
    def interrupt(_signum, _frame):
        raise StepTimeout()

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 0.001), 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def error_facts(exc: BaseException, filename: str | None = None) -> dict:
    """Type, first line of the message and (when ``filename`` is given) the line of that code where it happened."""
    try:
        text = _str(exc)[:4000]
    except BaseException:  # noqa: BLE001 - an exception whose __str__ raises
        text = ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    facts = {"type": _str(getattr(_type(exc), "__name__", "Exception"))[:60], "message": first[:MESSAGE_CHARS]}
    if isinstance(exc, SyntaxError) and exc.filename == filename and exc.lineno:
        facts["line"] = int(exc.lineno)
    elif filename is not None:
        try:
            lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
        except BaseException:  # noqa: BLE001
            lines = []
        if lines:
            facts["line"] = int(lines[-1])
    return facts


def run_code(ns: dict, source: str, filename: str, limit: float) -> dict:
    """Execute ``source`` (IPython syntax neutralised) in ``ns``: ``{"status": "ok"|"error"|"timeout", ...}``.

    Code that runs past its limit counts as not run: the names it bound are put back as they were before it, as a
    student who restarts the kernel and skips the cell that hangs would have them (a worker killed at the deadline
    restarts without the cell, to the same effect). So a hang costs the checks that need that cell's definitions."""
    code, ignored = prepare(source)
    before = _dict(ns)
    facts = {"ignored": ignored[:20]}
    try:
        compiled = _compile(code, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return {**facts, "status": "error", "error": error_facts(exc, filename)}
    try:
        with time_limit(limit):
            _exec(compiled, ns)
    except StepTimeout:
        _dict.clear(ns)
        _dict.update(ns, before)
        return {**facts, "status": "timeout"}
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too, as a notebook would
        return {**facts, "status": "error", "error": error_facts(exc, filename)}
    return {**facts, "status": "ok"}
