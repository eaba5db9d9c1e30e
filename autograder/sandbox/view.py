"""What a sandboxed process can see: a private file-system root built with bubblewrap (``bwrap``).

The view holds, read-only, only what the task needs to import and read:

* the Python installation (its prefix, at its own path, so that compiled-in paths keep working);
* the grader environment's ``site-packages`` (torch, torchvision, safetensors, ...), a virtual environment's at
  ``/a2/site-packages``;
* the code folders the caller names (``mounts``), each under ``/a2`` at a neutral path: for grading, the
  worker half of the grader (``autograder/worker`` and the sandbox boot) and the pristine ``a2cnn`` helper package;
* ``inputs``: a folder of files the parent prepared for this run (``/a2/in``), when given;
* for grading, the pretrained DeepLabV3 weights file when the grader has one, alone in
  ``/a2/torch/hub/checkpoints`` (``TORCH_HOME_TARGET``; see ``autograder.execution.find_weights``).

and, writable, a size-limited tmpfs at ``/tmp`` (the working directory and ``HOME``) and at ``/dev/shm``, plus a
private ``/proc`` (a new pid namespace: only the sandbox's own processes) and a minimal ``/dev``.

Everything else is absent: the grader's own source (its checks, hidden tests, calibration), the master notebook,
the data mirror, other submissions, ``/etc``, ``/home``, ``/root`` and the host's ``/tmp``. The process also gets
fresh network, IPC, UTS and pid namespaces and dies with the grader (``--die-with-parent``).

As root, bubblewrap runs in its privileged mode and leaves the child exactly the capabilities it needs to drop to
a dedicated uid itself (``CAP_SETUID``, ``CAP_SETGID``, ``CAP_SETPCAP``; see :mod:`.privileges`). As another user it
uses an unprivileged user namespace (same uid), where the kernel allows one.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SANDBOX_ROOT = "/a2"           # code mounted for the task
INPUTS_TARGET = "/a2/in"      # the parent's per-run input files
TORCH_HOME_TARGET = "/a2/torch"  # a worker's TORCH_HOME: the weights file alone in its hub/checkpoints
WORKDIR = "/tmp"              # working directory and HOME inside the sandbox
_ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


class ViewError(RuntimeError):
    """The sandbox view cannot be built on this machine (no bubblewrap, an unreadable path, ...)."""


@dataclasses.dataclass(frozen=True)
class View:
    """What one sandboxed run can see besides the interpreter and its packages.

    ``mounts``: (host folder or file, path under ``/a2``), read-only. ``import_roots``: paths under ``/a2`` put
    first on the child's ``sys.path``, in this order. ``inputs``: a host folder shown read-only at ``/a2/in``.
    """

    mounts: tuple = ()
    import_roots: tuple = ()
    inputs: str | None = None
    tmp_bytes: int = 256 * 2**20
    shm_bytes: int = 64 * 2**20

    def sys_path(self) -> list[str]:
        """The child's import path: the import roots, then site-packages (the standard library comes first
        anyway: the child runs ``python -S``)."""
        return [f"{SANDBOX_ROOT}/{name}" for name in self.import_roots] + [target for _host, target in
                                                                            site_package_mounts()]


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str:
    path = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)
    if not path:
        raise ViewError("bubblewrap (bwrap) is not installed; the grader needs it to hide its files from "
                        "submissions: apt-get install bubblewrap (scripts/setup-env.sh does this as root)")
    return path


def interpreter() -> str:
    """The real Python binary (a venv's ``python`` is a symlink to it)."""
    return os.path.realpath(sys.executable)


def python_prefix() -> str:
    return os.path.realpath(sys.base_prefix)


@functools.lru_cache(maxsize=1)
def site_packages() -> list[str]:
    """The grader environment's site-packages folders (venv first), real paths, existing ones only."""
    paths = sysconfig.get_paths()
    found = []
    for key in ("purelib", "platlib"):
        path = os.path.realpath(paths[key])
        if os.path.isdir(path) and path not in found:
            found.append(path)
    return found


def site_package_mounts() -> list[tuple[str, str]]:
    """(host folder, sandbox path) of each site-packages folder: inside the Python prefix or ``/usr`` it is already
    in the view at its own path; elsewhere (a virtual environment) it goes to ``/a2/site-packages/<i>``."""
    prefix = python_prefix()
    mounts = []
    for i, path in enumerate(site_packages()):
        inside = path.startswith("/usr/") or path.startswith(prefix + "/")
        mounts.append((path, path if inside else f"{SANDBOX_ROOT}/site-packages/{i}"))
    return mounts


def _readable_by_anyone(path: str) -> bool:
    mode = os.stat(path).st_mode
    return bool(mode & 0o004) and (not os.path.isdir(path) or bool(mode & 0o001))


def _mkdirs(args: list, target: str, made: set) -> None:
    """Create ``target``'s parent folders in the sandbox root with mode 0755 (bwrap would make them 0700)."""
    parts = Path(target).parts[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        if current not in made:
            made.add(current)
            args += ["--perms", "0755", "--dir", current]


def _bind(args: list, made: set, source: str, target: str, writable: bool = False) -> None:
    if not os.path.exists(source):
        raise ViewError(f"cannot show {source} to the sandbox: it does not exist")
    if os.geteuid() == 0 and not _readable_by_anyone(source):
        # The sandboxed code runs as an unrelated uid: it could not read this (and must not get a capability
        # that reads everything: that would let it escape the view through file handles).
        raise ViewError(f"{source} is not readable by other users (mode {oct(os.stat(source).st_mode & 0o777)}); "
                        "make it world-readable (chmod o+rX) or install Python and the grader elsewhere")
    _mkdirs(args, target, made)
    args += ["--bind" if writable else "--ro-bind", source, target]


def build_command(view: View, argv: list[str]) -> list[str]:
    """The bwrap command line that runs ``argv`` inside ``view``."""
    args = [bwrap_path(), "--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for cap in _ROOT_CAPS:
            args += ["--cap-add", cap]
    else:
        args += ["--unshare-user"]
    made = {"/tmp", "/dev", "/proc"}
    args += ["--ro-bind", "/usr", "/usr"]
    made.add("/usr")
    for name in ("bin", "lib", "lib32", "lib64"):
        if os.path.islink(f"/{name}"):
            args += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            args += ["--ro-bind", f"/{name}", f"/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "01777", "--size", str(view.tmp_bytes), "--tmpfs", WORKDIR,
             "--perms", "01777", "--size", str(view.shm_bytes), "--tmpfs", "/dev/shm"]
    prefix = python_prefix()
    if not prefix.startswith("/usr/"):
        _bind(args, made, prefix, prefix)
    binary = interpreter()
    if not (binary.startswith(prefix + "/") or binary.startswith("/usr/")):
        _bind(args, made, os.path.dirname(binary), os.path.dirname(binary))
    args += ["--perms", "0755", "--dir", SANDBOX_ROOT]
    made.add(SANDBOX_ROOT)
    for host, target in site_package_mounts():
        if host != target:
            _bind(args, made, host, target)
    for host, name in view.mounts:
        _bind(args, made, os.path.realpath(host), f"{SANDBOX_ROOT}/{name}")
    if view.inputs is not None:
        _bind(args, made, os.path.realpath(view.inputs), INPUTS_TARGET)
    args += ["--chdir", WORKDIR, "--"]
    return args + list(argv)


def shown_paths(view: View) -> list[str]:
    """The host files and folders a sandbox of ``view`` can read, exactly as ``build_command`` binds them."""
    command = build_command(view, [])
    return [os.path.realpath(command[i + 1]) for i, arg in enumerate(command) if arg in ("--ro-bind", "--bind")]


def shows(view: View, path) -> bool:
    """Whether a sandbox of ``view`` could read the host file or folder ``path`` (or what it links to)."""
    real = os.path.realpath(path)
    return any(real == shown or real.startswith(shown.rstrip("/") + "/") for shown in shown_paths(view))


@functools.lru_cache(maxsize=1)
def check_available() -> None:
    """Raise ViewError (with bubblewrap's own words) when a sandbox cannot be started here."""
    command = build_command(View(), [interpreter(), "-S", "-c", "pass"])
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ViewError(f"bubblewrap could not start: {exc}") from None
    if proc.returncode != 0:
        raise ViewError(f"bubblewrap could not start a sandbox here (exit {proc.returncode}): "
                        f"{proc.stderr.strip()[:500]}")
