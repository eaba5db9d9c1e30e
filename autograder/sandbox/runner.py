"""Run one task on untrusted code in a fresh, limited process that sees almost nothing of the machine.

``run_isolated("autograder.worker.main:run", payload, Limits(), view=View(...))`` starts the child
(:mod:`.child`) inside a bubblewrap sandbox (:mod:`.view`); the child imports the task, calls it with the payload,
and streams frames back over a private pipe (:mod:`.protocol`). The parent enforces the wall clock (and, through
``watchdog``, any finer deadline of its own), captures output, kills everything the run left behind, and turns what
happened into a :class:`SandboxResult`.

What is isolated
----------------
* **Files**: the child sees only its view: the interpreter, site-packages, the code folders it was given, an input
  folder, a private size-limited ``/tmp`` and ``/dev/shm``. The grader's own checks, hidden tests, calibration,
  the master notebook, the data mirror and other submissions are not in it at all.
* **Process**: new pid, network, IPC and UTS namespaces (it cannot see or signal any process outside, and has no
  network); a new session; stdin is ``/dev/null``; it dies with the grader. When its sandbox ends, the kernel
  kills every process left in the pid namespace.
* **Environment**: rebuilt from scratch (``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, thread counts,
  ``PYTHONHASHSEED``, ``MALLOC_ARENA_MAX``, ``MPLBACKEND`` and what the caller passes in ``env``).
* **Resources**: address space, CPU time, file size, open files, core dumps (none) and processes/threads via
  rlimits (:mod:`.limits`); wall clock by the parent. Output is capped per stream, frames are capped in size.
* **Identity (grader running as root)**: the code runs as a dedicated uid from a private pool (one run per uid at a
  time), no supplementary groups, no capabilities, ``no_new_privs``. So ``RLIMIT_NPROC`` is enforced and every
  leftover process can be found by uid and killed.
* **Channel**: frames travel over an inherited pipe, never stdout; each run has a random token, sent over a second
  pipe (not argv/env/files) and required in every frame; the child moves the pipe to a random high fd; only the
  original child process reports.

What is NOT isolated
--------------------
* **In-process tampering.** The student code runs in the same interpreter as the task. Code that digs the token and
  the pipe out of memory can send frames of its own. So frames carry *data* only, never verdicts, and the grader
  decides everything in the parent from data it can check (see ``autograder/verify``).
* **Grader not root.** No uid change: the code runs as the grader's user inside the sandbox (it still sees only the
  view); ``RLIMIT_NPROC`` is then "current tasks of the user + max_processes".
* **Kernel**: no seccomp filter; a kernel exploit escapes any namespace. Run the grader on a machine of its own.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from autograder.sandbox import privileges, protocol
from autograder.sandbox.limits import Limits
from autograder.sandbox.view import WORKDIR, View, ViewError, build_command, interpreter

STATUSES = ("ok", "error", "timeout", "memory", "file_size", "crashed", "stopped", "internal")
GRADER_ROOT = Path(__file__).resolve().parents[2]          # the folder holding the `autograder` package
SANDBOX_PACKAGE = Path(__file__).resolve().parent
TRUNCATED = "[truncated]"
_BOOT = ("import sys; sys.path[0] = sys.argv[1]; "
         "from autograder.sandbox.child import main; main(sys.argv[2:])")
_BOOT_ROOT = "grader"
_MEMORY_STDERR_HINTS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "can't allocate memory",
                        "out of memory")


@dataclasses.dataclass
class SandboxResult:
    """What happened to one run.

    status: ``"ok"`` (the task returned ``value``), ``"error"`` (the code raised; ``message`` holds a short
    traceback), ``"timeout"`` (wall clock or CPU limit), ``"memory"`` (MemoryError / allocation failure under
    RLIMIT_AS), ``"file_size"`` (killed by SIGXFSZ: a file written past RLIMIT_FSIZE, where the code did not
    ignore that signal as Python does), ``"crashed"`` (``sys.exit``, ``os._exit``, a fatal signal, a closed or
    tampered channel),
    ``"stopped"`` (the caller's watchdog ended it; ``message`` is its reason) or ``"internal"`` (the grader task
    itself failed, or the sandbox could not start: not the student's fault).
    ``events``: the ``(header, blob)`` event frames received, in order (also passed to ``on_event`` as they came).
    """

    status: str
    value: Any = None
    message: str = ""
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    returncode: int | None = None
    events: list = dataclasses.field(default_factory=list)
    isolation: dict = dataclasses.field(default_factory=dict)
    processes_killed: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ------------------------------------------------------------------------------------------------ helpers
class _Reader(threading.Thread):
    """Drain one pipe to EOF, keeping the first ``cap`` bytes (so a chatty child never blocks)."""

    def __init__(self, fd: int, cap: int):
        super().__init__(daemon=True)
        self.fd, self.cap = fd, cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def handle(self, chunk: bytes) -> None:
        if self.kept < self.cap:
            piece = chunk[: self.cap - self.kept]
            self.chunks.append(piece)
            self.kept += len(piece)

    def run(self):
        try:
            while True:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    break
                self.total += len(chunk)
                self.handle(chunk)
        except OSError:
            pass
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass

    def text(self) -> str:
        text = b"".join(self.chunks).decode("utf-8", errors="replace")
        overflow = self.total - self.kept
        if overflow:
            text += f"\n... {TRUNCATED} ({overflow} more bytes not shown)"
        return text


class _ChannelReader(_Reader):
    """Parse frames as they arrive; events go to ``on_event`` at once, the end frame is kept."""

    def __init__(self, fd: int, token: str, cap: int, on_event: Callable | None):
        super().__init__(fd, cap)
        self.frames = protocol.FrameReader(token, max_blob_bytes=cap)
        self.on_event = on_event
        self.events: list = []
        self.ends: list = []
        self.overflow = False
        self.late = False

    def handle(self, chunk: bytes) -> None:
        if self.total > self.cap:
            self.overflow = True
            return
        self._take(self.frames.feed(chunk))

    def run(self):
        super().run()
        if not self.overflow:
            self._take(self.frames.finish())

    def _take(self, frames) -> None:
        for header, blob in frames:
            if header["type"] == "end":
                self.ends.append(header)
                continue
            if self.ends:  # nothing may follow the end frame
                self.late = True
                continue
            self.events.append((header, blob))
            if self.on_event is not None:
                try:
                    self.on_event(header, blob)
                except Exception:  # noqa: BLE001 - a caller bug must not stop the draining
                    pass


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass  # the child died before reading its control message; reported from its exit status
    finally:
        os.close(fd)


def _wait_exit(pid: int, timeout: float, watchdog: Callable | None) -> tuple[bool, str | None]:
    """Wait until the child has exited, *without reaping it*. Returns (exited, watchdog reason or None)."""
    deadline = time.monotonic() + timeout
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pass
    try:
        while True:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True, None
            if watchdog is not None:
                reason = watchdog()
                if reason:
                    return False, str(reason)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, None
            pause = min(remaining, 0.1 if watchdog is not None else remaining)
            if pidfd is not None:
                select.select([pidfd], [], [], pause)
            else:
                time.sleep(min(0.02, pause))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill_session(sid: int) -> int:
    """SIGKILL the sandbox's process group (bubblewrap: its pid namespace then dies with it) and every process
    still in its session. Returns how many processes were signalled."""
    killed = 0
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid or int(fields[2]) == sid:  # session id, process group id
                os.kill(int(name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError, IndexError):
            continue
    return killed


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _size(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} bytes"


def _child_env(limits: Limits, extra: Mapping[str, str] | None) -> dict[str, str]:
    threads = "1"  # raised to limits.threads by the child after the privilege drop (see child._set_threads)
    env = {
        "PATH": os.pathsep.join([os.path.dirname(interpreter()), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": WORKDIR,
        "TMPDIR": WORKDIR,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MALLOC_ARENA_MAX": "2",
        "MPLBACKEND": "Agg",
    }
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("env must map str to str")
        env[key] = value
    return env


def full_view(view: View | None, extra_sys_path: Iterable) -> View:
    """``view`` plus the sandbox's own boot code and the extra import folders."""
    view = view or View()
    mounts = [(str(SANDBOX_PACKAGE), f"{_BOOT_ROOT}/autograder/sandbox")] + list(view.mounts)
    roots = [_BOOT_ROOT] + list(view.import_roots)
    for i, path in enumerate(extra_sys_path):
        mounts.append((str(Path(path).resolve()), f"extra/{i}"))
        roots.append(f"extra/{i}")
    return dataclasses.replace(view, mounts=tuple(mounts), import_roots=tuple(dict.fromkeys(roots)))


# ------------------------------------------------------------------------------------------------ main API
def run_isolated(task: str, payload: Any, limits: Limits | None = None, extra_sys_path: Iterable = (), *,
                 env: Mapping[str, str] | None = None, view: View | None = None,
                 on_event: Callable[[dict, bytes], None] | None = None,
                 watchdog: Callable[[], str | None] | None = None) -> SandboxResult:
    """Run ``task(payload)`` (or ``task(payload, emit)``) in a fresh sandbox and report what happened.

    task: ``"package.module:function"``, importable from the view's import roots or ``extra_sys_path``.
    payload: JSON-serialisable data handed to the task.
    limits: :class:`Limits` (defaults if None).
    extra_sys_path: folders mounted in the view and put on the child's ``sys.path`` (after the view's own).
    env: extra environment variables for the child (nothing else of the grader's environment is passed).
    view: what the child can see besides the interpreter, its packages and the sandbox's boot code.
    on_event: called (from a reader thread) with each event frame as it arrives.
    watchdog: called about ten times a second while the child runs; a non-empty string stops the run with that
        reason (status ``"stopped"``).
    """
    limits = limits or Limits()
    encoded_payload = json.dumps(payload, allow_nan=True)  # fail here, in the grader, if not serialisable
    view = full_view(view, extra_sys_path)
    token = secrets.token_hex(16)
    is_root = os.geteuid() == 0
    lease = privileges.UidLease()
    uid = lease.acquire() if (is_root and limits.drop_privileges) else None
    isolation = {"uid": uid if uid is not None else os.geteuid(), "dedicated_uid": uid is not None,
                 "view": [target for _source, target in view.mounts]}
    proc = None
    readers: list[_Reader] = []
    started = time.monotonic()
    killed = 0
    try:
        control = {"token": token, "task": task, "limits": limits.to_dict(), "sys_path": view.sys_path(),
                   "uid": uid, "gid": uid}
        control_bytes = json.dumps(control).encode()[:-1] + b', "payload": ' + encoded_payload.encode() + b"}"
        control_r, control_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            command = build_command(view, [interpreter(), "-S", "-c", _BOOT, f"/a2/{_BOOT_ROOT}", str(control_r),
                                           str(result_w)])
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_child_env(limits, env),
                                    pass_fds=(control_r, result_w), start_new_session=True, close_fds=True)
        finally:
            os.close(control_r)
            os.close(result_w)
        threading.Thread(target=_write_all, args=(control_w, control_bytes), daemon=True).start()
        readers = [_Reader(os.dup(proc.stdout.fileno()), limits.output_bytes),
                   _Reader(os.dup(proc.stderr.fileno()), limits.output_bytes),
                   _ChannelReader(result_r, token, limits.result_bytes, on_event)]
        proc.stdout.close()
        proc.stderr.close()
        for reader in readers:
            reader.start()

        exited, stop_reason = _wait_exit(proc.pid, limits.wall_seconds, watchdog)
        # kill everything the run left behind, whether it finished or not
        killed += _kill_session(proc.pid)
        if uid is not None:
            killed += len(privileges.pids_of_uid(uid))
            privileges.kill_uid(uid)
        status, rusage = os.wait4(proc.pid, 0)[1:]  # reap only now
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        join_deadline = time.monotonic() + 2.0  # a reader only blocks longer if an escaped process holds its pipe
        for reader in readers:
            reader.join(timeout=max(0.0, join_deadline - time.monotonic()))
        result = _classify(proc.returncode, exited, stop_reason, rusage, readers, limits, wall, isolation)
        result.processes_killed = killed
        return result
    except ViewError as exc:
        return SandboxResult(status="internal", message=f"the sandbox could not be started: {exc}",
                             isolation=isolation)
    finally:
        if proc is not None and proc.returncode is None:  # an exception in the grader itself: leave nothing behind
            _kill_session(proc.pid)
            proc.wait()
        if uid is not None:
            privileges.kill_uid(uid)
            privileges.cleanup_uid_files(uid)
        lease.release()


def _exit_signal(returncode: int | None) -> int | None:
    """The signal that ended the child: bubblewrap reports it as 128 + signal number."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def _classify(returncode: int, exited: bool, stop_reason: str | None, rusage, readers, limits: Limits, wall: float,
              isolation: dict) -> SandboxResult:
    out, err, channel = readers
    result = SandboxResult(status="crashed", stdout=out.text(), stderr=err.text(), wall_seconds=round(wall, 3),
                           returncode=returncode, events=list(channel.events), isolation=isolation)
    cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0
    if stop_reason:
        result.status, result.message = "stopped", stop_reason
        return result
    if not exited:
        result.status = "timeout"
        result.message = f"Your code did not finish within the time limit ({limits.wall_seconds:g} s) and was stopped."
        return result
    if "bwrap:" in result.stderr and not channel.events and not channel.ends:
        result.status = "internal"
        result.message = "the sandbox could not be started: " + result.stderr.strip()[:500]
        return result
    sig = _exit_signal(returncode)
    if sig is not None:
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds):
            result.status = "timeout"
            result.message = f"Your code used more than {limits.cpu_seconds} s of CPU time and was stopped."
        elif sig == signal.SIGXFSZ:
            result.status = "file_size"
            result.message = (f"Your code wrote a file larger than the file-size limit "
                              f"({_size(limits.file_size_bytes)}) and was stopped.")
        elif any(h in result.stderr for h in _MEMORY_STDERR_HINTS):
            result.status = "memory"
            result.message = (f"Your code ran out of memory (limit {_size(limits.memory_bytes)}) and the process "
                              f"was killed by {_signal_name(sig)}.")
        else:
            result.message = f"The process running your code was killed by {_signal_name(sig)}."
        return result
    if channel.overflow:
        result.status = "error"
        result.message = f"The results were larger than {_size(limits.result_bytes)} and were not accepted."
        return result
    if len(channel.ends) > 1 or channel.late:
        result.message = ("The grader's result channel was tampered with (more than one result was reported); "
                          "the run is not accepted.")
        return result
    if not channel.ends:
        if returncode == 71:
            result.message = "Your code closed or broke the grader's result channel; no result could be reported."
        elif any(h in result.stderr for h in _MEMORY_STDERR_HINTS):
            result.status = "memory"
            result.message = f"Your code ran out of memory (limit {_size(limits.memory_bytes)})."
        else:
            result.message = (f"The process running your code ended (exit code {returncode}) without reporting a "
                              "result. Typical causes: os._exit(), a crash of the interpreter, or closing the "
                              "grader's file descriptors.")
        return result
    message = channel.ends[0]
    if returncode != 0:
        result.message = f"The process exited with code {returncode} after reporting; the result is not accepted."
        return result
    if message["ok"]:
        result.status, result.value, result.message = "ok", message["value"], "Finished normally."
        return result
    kind, etype, error = message["kind"], message["error_type"], message["error"]
    if kind == "memory":
        result.status = "memory"
        result.message = f"Your code ran out of memory (limit {_size(limits.memory_bytes)}).\n{error}".rstrip()
    elif kind == "exit":
        result.status = "crashed"
        result.message = (f"Your code tried to end the grading process ({error}). Do not call sys.exit(), exit() "
                          "or quit() in submitted code.")
    elif kind == "grader":
        result.status = "internal"
        result.message = f"Internal grader error (not caused by your code): {etype}\n{error}"
    else:
        result.status = "error"
        result.message = f"Your code raised {etype}:\n{error}".rstrip()
    return result
