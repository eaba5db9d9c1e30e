"""Run one grader task on untrusted student code in a fresh, limited child process.

``run_isolated("autograder.tasks:check_cnn", {"source": student_code}, Limits())`` starts
``python -s -c ... autograder.sandbox.child``; the child imports the *grader's* task function, calls it with the
payload (the task typically ``exec``s the student's code and returns JSON data about what it did), and reports
back over a private pipe. The parent enforces the wall clock, captures output, kills everything the run left
behind and removes its temp dir, and turns what happened into a :class:`SandboxResult`.

What is isolated
----------------
* **Process**: a new session and process group; a fresh interpreter (nothing of the grader's state is shared);
  stdin is ``/dev/null``; the working directory, ``HOME`` and ``TMPDIR`` are a fresh ``0700`` temp dir that is
  deleted afterwards.
* **Environment**: rebuilt from scratch (``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, thread counts,
  ``PYTHONHASHSEED``, ``MALLOC_ARENA_MAX``, ``MPLBACKEND`` and what the caller passes in ``env``); nothing of the
  grader's environment (tokens, ``A2_GRADER_*`` secrets) is inherited.
* **Resources**: address space, CPU time, file size, open files, core dumps (none) and processes/threads via
  rlimits (:mod:`.limits`); wall clock by the parent. Output is capped per stream; the result message is capped.
* **Leftovers**: the parent notices the child's exit without reaping it (so its pid/group ids cannot be reused
  meanwhile), then SIGKILLs its process group; as root every process of the run's dedicated uid is SIGKILLed until
  none is left (this also catches processes that called ``setsid``), and the files that uid left in ``/tmp``,
  ``/var/tmp`` and ``/dev/shm`` are deleted. Pool uids whose run is gone (a grader that was itself killed) are
  swept at the start of every later run. The child also dies with the grader (parent-death signal).
* **Identity (grader running as root)**: the code runs as a dedicated uid from a private pool (one run per uid at a
  time), no supplementary groups, ``no_new_privs``, empty capability bounding set. So ``RLIMIT_NPROC`` is enforced
  (fork bombs stop at ``max_processes``), the code cannot signal or ptrace the grader, cannot read
  ``/proc/<grader>/environ``, and cannot write any file it does not own (the grader's code, the submissions, the
  gradebook). If the Python installation is not readable by an unrelated uid (e.g. pyenv under a mode-0700
  ``/root``, as on the course machine), the child keeps exactly one capability, ``CAP_DAC_READ_SEARCH``, so imports
  keep working; ``SandboxResult.isolation["read_any_file"]`` says when that happened.
* **Network (root)**: fresh network and IPC namespaces: no interface but a downed loopback.
* **Result channel**: the result travels over an inherited pipe, never stdout; each run has a random 128-bit token,
  sent to the child over a second pipe (not argv/env/files) and required in the message; the child moves the pipe
  to a random high, close-on-exec fd number; only the original child process reports (a fork exits silently); the
  parent validates the message schema and rejects the run if more than one authentic message arrives. Printing a
  protocol-looking line, or writing to guessed fds, changes nothing.

What is NOT isolated (be honest with yourself when reading a score)
--------------------------------------------------------------------
* **In-process tampering.** The student code runs *inside* the child, in the same interpreter as the task and the
  reporting code. Code that deliberately introspects the interpreter (``gc.get_objects()`` to find the token,
  ``/proc/self/fd`` to find the pipe, frame inspection, monkeypatching the task's helpers or ``torch`` itself) can
  forge the value the task returns. The channel stops accidents and naive forgery only. Tasks should therefore
  return *observations* (outputs, shapes, parameter checksums) and the grader should judge them in the parent
  against reference values, never return a verdict computed with objects the student code could have patched.
* **Reading files.** As root with an unreadable interpreter (``read_any_file``), the code can *read* every file
  on the machine, including hidden tests and other submissions. With a world-readable interpreter it can read what
  "others" may read; keep the hidden grader (``autograder/``) mode ``0700``: the task module is imported before the
  privilege drop, so it still works (import everything the task needs at module level).
* **Grader not root.** No uid change, no namespaces: the code runs as the grader's own user and can read and write
  everything that user can, signal or kill the grader, and read ``/proc/<grader pid>/environ``. Leftovers are found
  through the process group, the session and parent links; a process that calls ``setsid`` *and* whose parent
  has already exited (double fork) escapes the clean-up and lives on (until its RLIMIT_CPU, if it computes).
  ``RLIMIT_NPROC`` is then "current tasks of the user + max_processes", shared with everything else of that user.
* **Threads at import.** The task module is imported as root with one OpenMP/MKL thread; the child refuses to drop
  privileges (status ``internal``) if that import started a thread anyway, because capabilities are per thread.
* **Disk.** ``RLIMIT_FSIZE`` bounds each file, not the number of files: no quota. Not a limit on memory use summed
  over processes either (``max_processes`` x ``memory_bytes``).
* **CPU scheduling / side channels / kernel exploits**: nothing here is a container or a VM.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from autograder import feedback
from autograder.sandbox import privileges, protocol
from autograder.sandbox.limits import Limits

STATUSES = ("ok", "error", "timeout", "memory", "crashed", "internal")
GRADER_ROOT = Path(__file__).resolve().parents[2]          # the folder holding the `autograder` package
HIDDEN_PATHS = (str(Path(__file__).resolve().parents[1]),)  # traceback frames from autograder/ are not shown
TRUNCATED = "[truncated]"
_BOOT = ("import sys; sys.path[0] = sys.argv[1]; "
         "from autograder.sandbox.child import main; main(sys.argv[2:])")
_MEMORY_STDERR_HINTS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "can't allocate memory",
                        "out of memory")


@dataclasses.dataclass
class SandboxResult:
    """What happened to one run.

    status: ``"ok"`` (the task returned ``value``), ``"error"`` (the code raised; ``message`` holds a short
    traceback), ``"timeout"`` (wall clock or CPU limit), ``"memory"`` (MemoryError / allocation failure under
    RLIMIT_AS), ``"crashed"`` (``sys.exit``, ``os._exit``, a fatal signal, a closed or tampered result channel), or
    ``"internal"`` (the grader task itself failed: not the student's fault).
    """

    status: str
    value: Any = None
    message: str = ""          # for the instructor: may hold the code's traceback (student-controlled text)
    student_message: str = ""  # for the student: the grader's words and at most a bounded excerpt of the error
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    returncode: int | None = None
    isolation: dict = dataclasses.field(default_factory=dict)

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

    def run(self):
        try:
            while True:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    break
                self.total += len(chunk)
                if self.kept < self.cap:
                    piece = chunk[: self.cap - self.kept]
                    self.chunks.append(piece)
                    self.kept += len(piece)
        except OSError:
            pass
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def overflow(self) -> int:
        return self.total - self.kept

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.overflow:
            text += f"\n... {TRUNCATED} ({self.overflow} more bytes not shown)"
        return text


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass  # the child died before reading its control message; reported from its exit status
    finally:
        os.close(fd)


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until the child has exited, *without reaping it* (the zombie keeps its pid, process group and session
    ids from being reused while the leftovers are killed). False on timeout."""
    deadline = time.monotonic() + timeout
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pass
    try:
        while True:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                time.sleep(min(0.02, remaining))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill_session(sid: int) -> None:
    """Non-root fallback: SIGKILL the child's descendants (found through parent links while the tree is intact),
    its process group, and every process still in its session. A process that both left the session (``setsid``)
    and lost its link to the child (its parent exited) cannot be found this way."""
    for _ in range(3):
        parents, sessions = {}, set()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(name)] = int(fields[1])
                if int(fields[3]) == sid or int(fields[2]) == sid:  # session id, process group id
                    sessions.add(int(name))
            except (OSError, ValueError, IndexError):
                continue
        victims, frontier = set(sessions), {sid}
        while frontier:
            frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - victims - {os.getpid()}
            victims |= frontier
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not victims - {sid}:
            break
        time.sleep(0.01)


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


def _child_env(workdir: str, limits: Limits, extra: Mapping[str, str] | None) -> dict[str, str]:
    threads = "1"  # raised to limits.threads by the child after the privilege drop (see child._set_threads)
    env = {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": workdir,
        "TMPDIR": workdir,
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


# ------------------------------------------------------------------------------------------------ main API
def run_isolated(task: str, payload: Any, limits: Limits | None = None, extra_sys_path: Iterable[str | os.PathLike] = (),
                 *, env: Mapping[str, str] | None = None) -> SandboxResult:
    """Run ``task(payload)`` in a fresh sandboxed interpreter and report what happened.

    task: ``"package.module:function"`` (grader code; importable from the grader root or ``extra_sys_path``).
    payload: JSON-serialisable data handed to the task (e.g. the student's source code).
    limits: :class:`Limits` (defaults if None).
    extra_sys_path: folders put at the front of the child's ``sys.path`` (e.g. ``source/a2-cnn``).
    env: extra environment variables for the child (nothing else of the grader's environment is passed).
    The value (status ``"ok"``) is the task's return value after a JSON round trip.
    """
    limits = limits or Limits()
    extra_sys_path = [str(Path(p).resolve()) for p in extra_sys_path]
    encoded_payload = json.dumps(payload, allow_nan=True)  # fail here, in the grader, if not serialisable
    token = secrets.token_hex(16)
    is_root = os.geteuid() == 0
    lease = privileges.UidLease()
    uid = lease.acquire() if (is_root and limits.drop_privileges) else None
    keep_read = uid is not None and privileges.interpreter_needs_read_cap(extra_sys_path)
    isolation = {
        "uid": uid if uid is not None else os.geteuid(),
        "dedicated_uid": uid is not None,
        "read_any_file": keep_read or uid is None,
        "network_namespace": bool(is_root and limits.isolate_network),
    }
    workdir = tempfile.mkdtemp(prefix="a2-sandbox-")
    proc = None
    readers: list[_Reader] = []
    started = time.monotonic()
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        control = {
            "token": token, "task": task, "limits": limits.to_dict(), "extra_sys_path": extra_sys_path,
            "uid": uid, "gid": uid, "keep_read_cap": keep_read, "unshare_network": isolation["network_namespace"],
            "parent_pid": os.getpid(), "hidden_paths": list(HIDDEN_PATHS),
        }
        control_bytes = json.dumps(control).encode()[:-1] + b', "payload": ' + encoded_payload.encode() + b"}"
        control_r, control_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-c", _BOOT, str(GRADER_ROOT), str(control_r), str(result_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=workdir, env=_child_env(workdir, limits, env), pass_fds=(control_r, result_w),
                start_new_session=True, close_fds=True,
            )
        finally:
            os.close(control_r)
            os.close(result_w)
        threading.Thread(target=_write_all, args=(control_w, control_bytes), daemon=True).start()
        readers = [_Reader(os.dup(proc.stdout.fileno()), limits.output_bytes),
                   _Reader(os.dup(proc.stderr.fileno()), limits.output_bytes),
                   _Reader(result_r, limits.result_bytes)]
        proc.stdout.close()
        proc.stderr.close()
        for reader in readers:
            reader.start()

        timed_out = not _wait_exit(proc.pid, limits.wall_seconds)
        # kill everything the run left behind, whether it finished or not
        if uid is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            privileges.kill_uid(uid)
        else:
            _kill_session(proc.pid)
        status, rusage = os.wait4(proc.pid, 0)[1:]  # reap only now
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        join_deadline = time.monotonic() + 2.0  # a reader only blocks longer if an escaped process holds its pipe
        for reader in readers:
            reader.join(timeout=max(0.0, join_deadline - time.monotonic()))
        result = _classify(proc.returncode, timed_out, rusage, readers, token, limits, wall, isolation)
        result.student_message = result.student_message or result.message  # other branches: the grader's words only
        return result
    finally:
        if proc is not None and proc.returncode is None:  # an exception in the grader itself: leave nothing behind
            _kill_session(proc.pid)
            proc.wait()
        if uid is not None:
            privileges.kill_uid(uid)
            privileges.cleanup_uid_files(uid)
        lease.release()
        shutil.rmtree(workdir, ignore_errors=True)


def _classify(returncode: int, timed_out: bool, rusage, readers, token: str, limits: Limits, wall: float,
              isolation: dict) -> SandboxResult:
    out, err, channel = readers
    result = SandboxResult(status="crashed", stdout=out.text(), stderr=err.text(), wall_seconds=round(wall, 3),
                           returncode=returncode, isolation=isolation)
    cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0

    if timed_out:
        result.status = "timeout"
        result.message = (f"Your code did not finish within the time limit ({limits.wall_seconds:g} s) "
                          "and was stopped.")
        return result
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds):
            result.status = "timeout"
            result.message = f"Your code used more than {limits.cpu_seconds} s of CPU time and was stopped."
        elif any(h in result.stderr for h in _MEMORY_STDERR_HINTS):
            result.status = "memory"
            result.message = (f"Your code ran out of memory (limit {_size(limits.memory_bytes)}) and the process "
                              f"was killed by {_signal_name(sig)}.")
        else:
            result.message = f"The process running your code was killed by {_signal_name(sig)}."
        return result
    if channel.overflow:
        result.status = "error"
        result.message = f"The result was larger than {_size(limits.result_bytes)} and was not accepted."
        return result

    messages, _noise = protocol.parse(channel.data, token)
    if len(messages) > 1:
        result.message = ("The result channel was tampered with (more than one result was reported); "
                          "the run is not accepted.")
        return result
    if not messages:
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
    message = messages[0]
    if returncode != 0:
        result.message = f"The process exited with code {returncode} after reporting; the result is not accepted."
        return result
    if message["ok"]:
        result.status, result.value, result.message = "ok", message["value"], "Finished normally."
        return result
    kind, etype, error = message["kind"], message["error_type"], message["error"]
    excerpt = feedback.exception_line(etype, error)
    if kind == "memory":
        result.status = "memory"
        result.message = f"Your code ran out of memory (limit {_size(limits.memory_bytes)}).\n{error}".rstrip()
        result.student_message = f"Your code ran out of memory (limit {_size(limits.memory_bytes)})."
    elif kind == "exit":
        result.status = "crashed"
        result.message = (f"Your code tried to end the grading process ({error}). Do not call sys.exit(), exit() "
                          "or quit() in submitted code.")
        result.student_message = ("Your code tried to end the grading process (SystemExit). Do not call "
                                  "sys.exit(), exit() or quit() in submitted code.")
    elif kind == "grader":
        result.status = "internal"
        result.message = f"Internal grader error (not caused by your code): {etype}\n{error}"
        result.student_message = "Internal grader error (not caused by your code)."
    else:
        result.status = "error"
        result.message = f"Your code raised {etype}:\n{error}".rstrip()
        result.student_message = f"Your code raised {excerpt}"
    return result
