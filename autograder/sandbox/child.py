"""Entry point of the sandbox child process (started inside bubblewrap by :func:`.runner.run_isolated`).

Command line (set by the runner): ``python -S -c BOOT GRADER_ROOT CONTROL_FD RESULT_FD``.

Order of events, all before any untrusted code runs:

1. read the control message (token, task name, payload, limits, import path, uid to become) from CONTROL_FD until
   EOF and close it: the token is never in argv, the environment or a file;
2. move the result pipe to a random high fd (close-on-exec) and close the original number;
3. set ``sys.path`` to the view's import roots and site-packages, import the task;
4. apply the rlimits, drop to the sandbox uid (root only), re-arm the parent-death signal;
5. call ``task(payload)``, or ``task(payload, emit)`` for a task that streams events, catching every BaseException
   (SystemExit included);
6. only in the original process (a fork made by the student code exits silently instead), block signals, remove
   trace hooks, send the one ``end`` frame and ``os._exit(0)``.

``emit(header, blob=b"")`` sends an ``event`` frame at once (a fork's calls are ignored).
"""
from __future__ import annotations

import gc
import importlib
import inspect
import json
import os
import signal
import sys
import traceback

from autograder.sandbox import privileges, protocol
from autograder.sandbox.limits import Limits, apply_limits

# Bound now, before untrusted code can monkeypatch the os / json modules.
_write, _exit, _getpid, _close = os.write, os._exit, os.getpid, os.close

EXIT_CHANNEL_LOST = 71   # the result pipe was closed or broken by the code under test
EXIT_BAD_START = 72      # the control message could not be read (runner bug)
_RESERVE_BYTES = 4 * 2**20
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_MEMORY_HINTS = ("can't allocate memory", "cannot allocate memory", "out of memory", "bad_alloc",
                 "not enough memory")


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _resolve(task_name: str):
    module_name, _, attr_path = task_name.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"task must be 'module:function', got {task_name!r}")
    obj = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    if not callable(obj):
        raise TypeError(f"{task_name} is not callable")
    return obj


def _summarise(exc: BaseException, frames: int = 12) -> str:
    """Traceback text of the student's own frames (file names starting with '<'), then the exception line."""
    kept = [entry for entry in traceback.extract_tb(exc.__traceback__) if entry.filename.startswith("<")]
    lines = traceback.format_list(kept[-frames:])
    lines += traceback.format_exception_only(type(exc), exc)
    text = "".join(lines)
    if len(text) > protocol.MAX_ERROR_CHARS:
        text = "...\n" + text[-protocol.MAX_ERROR_CHARS:]
    return text


def _classify(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, SystemExit):
        return "exit"
    if isinstance(exc, RuntimeError) and any(h in str(exc).lower() for h in _MEMORY_HINTS):
        return "memory"
    return "exception"


def _set_threads(threads: int) -> None:
    """The child starts with one OpenMP/MKL thread so that importing the task (often ``import torch``) starts no
    thread before the privilege drop; the configured count applies from here on."""
    for name in _THREAD_VARS:
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None and threads != 1:
        torch.set_num_threads(threads)


def _streams(task) -> bool:
    """Does the task take ``emit`` as a second positional parameter?"""
    try:
        params = [p for p in inspect.signature(task).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def main(argv: list[str]) -> None:
    main_pid = _getpid()
    parent = os.getppid()
    try:
        control_fd, result_fd = int(argv[0]), int(argv[1])
        control = json.loads(_read_all(control_fd))
        _close(control_fd)
    except Exception:  # noqa: BLE001 - runner bug; nothing untrusted has run yet
        traceback.print_exc()
        _exit(EXIT_BAD_START)

    # -- the channel: token kept only in this frame, fd moved to a random high number
    token = control.pop("token")
    channel = 300 + int.from_bytes(os.urandom(2), "little") % 600
    while True:
        try:
            os.fstat(channel)
            channel += 1
        except OSError:
            break
    os.dup2(result_fd, channel, inheritable=False)
    _close(result_fd)

    def send(data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[_write(channel, view):]
        except OSError:
            _exit(EXIT_CHANNEL_LOST)

    def emit(header: dict, blob: bytes = b"") -> None:
        if _getpid() != main_pid:  # a fork made by the code under test: never report
            return
        send(protocol.encode({**header, "token": token, "type": "event"}, bytes(blob)))

    def end(**fields) -> None:
        send(protocol.encode({**fields, "token": token, "type": "end"}))

    memory_frame = protocol.encode({"token": token, "type": "end", "ok": False, "kind": "memory",
                                    "error_type": "MemoryError", "error": "MemoryError (no memory left to describe it)"})
    limits = Limits.from_dict(control["limits"])
    uid, gid = control.get("uid"), control.get("gid")
    sys.path[:] = [p for p in sys.path if p not in ("", ".")] + list(control.get("sys_path", ()))
    import site  # the builtins `site` adds (exit, quit, help), without its .pth processing (the child runs -S)

    site.setquit()
    site.setcopyright()
    site.sethelper()

    try:
        task = _resolve(control["task"])
        if uid is not None and len(os.listdir("/proc/self/task")) != 1:
            raise RuntimeError("importing the task started threads before privileges were dropped")
        apply_limits(limits, dedicated_uid=uid is not None)
        if uid is not None:
            privileges.drop_privileges(uid, gid)
        privileges.set_parent_death_signal(parent)
        os.umask(0o077)
        _set_threads(limits.threads)
    except BaseException as exc:  # noqa: BLE001 - grader-side failure, reported as such
        end(ok=False, kind="grader", error_type=type(exc).__name__,
            error="".join(traceback.format_exception(exc))[-protocol.MAX_ERROR_CHARS:])
        _exit(0)

    payload = control.pop("payload")
    streams = _streams(task)
    del control
    reserve = bytearray(_RESERVE_BYTES)  # freed on failure so that reporting a MemoryError has room
    outcome = None
    try:
        value = task(payload, emit) if streams else task(payload)
        outcome = ("value", value)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included, on purpose
        outcome = ("error", exc)
    finally:
        # ---- from here on only this code runs: student signal handlers and trace hooks are switched off
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        except (OSError, ValueError):
            pass
        sys.settrace(None)
        sys.setprofile(None)
    if _getpid() != main_pid:  # a fork made by the code under test: never report
        _exit(0)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the code may have replaced or closed the streams
            pass

    del reserve
    what, obj = outcome
    outcome = None
    try:
        if what == "value":
            try:
                end(ok=True, value=obj)
            except (TypeError, ValueError, RecursionError) as exc:
                end(ok=False, kind="grader", error_type=type(exc).__name__,
                    error=f"the task returned a value that cannot be sent as JSON: {exc}")
        else:
            exc = obj
            obj = None
            kind = _classify(exc)
            text = f"SystemExit({exc.code!r})"[:200] if kind == "exit" else _summarise(exc)
            exc.__traceback__ = None
            end(ok=False, kind=kind, error_type=type(exc).__name__, error=text)
    except MemoryError:
        obj = None
        gc.collect()
        send(memory_frame)
    except BaseException:  # noqa: BLE001 - e.g. an exception whose __str__ itself raises
        end(ok=False, kind="exception", error_type="Exception",
            error="an exception was raised that could not be described")
    _exit(0)
