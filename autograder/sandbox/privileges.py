"""Linux privilege handling for the sandbox: a pool of dedicated uids (parent side), dropping to one of them,
namespaces (child side), and finding/killing/cleaning up after everything a sandbox uid left behind (parent side).

Only used when the grader runs as root. Nothing here is needed (or works) for an unprivileged grader.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import pwd
import shutil
import signal
import stat
import time

# Dedicated uids (also used as gids). Far above anything /etc/passwd, systemd (61184-65519 dynamic users) or
# a login system hands out; every candidate is also checked to have no passwd/group entry.
UID_POOL_START = 1_900_000_000
UID_POOL_SIZE = 1000
LOCK_DIR = "/run/a2-sandbox-uids"

_PR_SET_PDEATHSIG = 1
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38

WORLD_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


# ---------------------------------------------------------------- parent side: which uid, which privileges
def _mapped(uid: int, map_file: str) -> bool:
    try:
        with open(map_file) as fh:
            for line in fh:
                inside, _outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return True
    except (OSError, ValueError):
        return False
    return False


def _unassigned(uid: int) -> bool:
    import grp
    try:
        pwd.getpwuid(uid)
        return False
    except KeyError:
        pass
    try:
        grp.getgrgid(uid)
        return False
    except KeyError:
        return True


class UidLease:
    """An exclusive claim (flock on a root-only lock file) on one pool uid for the duration of a run.

    Exclusive across threads and processes on this machine, so RLIMIT_NPROC and "kill everything of this uid"
    concern exactly one run. Leftovers of an earlier run that died with the uid are killed when it is acquired.
    """

    def __init__(self):
        self.uid = None
        self._fd = None

    def acquire(self) -> int | None:
        if os.geteuid() != 0:
            return None
        try:
            os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
            info = os.lstat(LOCK_DIR)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
                return None
        except OSError:
            return None
        sweep_orphans()
        start = int.from_bytes(os.urandom(4), "little") % UID_POOL_SIZE
        for i in range(UID_POOL_SIZE):
            uid = UID_POOL_START + (start + i) % UID_POOL_SIZE
            if not (_mapped(uid, "/proc/self/uid_map") and _mapped(uid, "/proc/self/gid_map")):
                return None
            if not _unassigned(uid):
                continue
            fd = _try_lock(uid)
            if fd is None:
                continue
            self.uid, self._fd = uid, fd
            kill_uid(uid)
            cleanup_uid_files(uid)
            return uid
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _try_lock(uid: int):
    fd = os.open(os.path.join(LOCK_DIR, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_orphans() -> list[int]:
    """Kill the processes of pool uids that no run holds (left by a grader that was itself killed, e.g. forked
    children, which do not inherit the parent-death signal). Returns the uids swept."""
    pool = range(UID_POOL_START, UID_POOL_START + UID_POOL_SIZE)
    owners = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            uids, state = _proc_owner_and_state(name)
            if uids and state not in ("Z", "X"):
                owners.update(u for u in uids if u in pool)
    swept = []
    for uid in sorted(owners):
        fd = _try_lock(uid)
        if fd is None:
            continue  # a live run owns it
        try:
            kill_uid(uid)
            cleanup_uid_files(uid)
            swept.append(uid)
        finally:
            os.close(fd)
    return swept


# ---------------------------------------------------------------- parent side: clean-up
def _proc_owner_and_state(pid: str):
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        uids = {int(x) for x in fields["Uid"].split()}
        state = fields["State"].split()[0]
        return uids, state
    except (OSError, KeyError, ValueError):
        return None, None


def pids_of_uid(uid: int) -> list[int]:
    """Live (non-zombie) processes with ``uid`` as real, effective, saved or filesystem uid."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            uids, state = _proc_owner_and_state(name)
            if uids and uid in uids and state not in ("Z", "X"):
                found.append(int(name))
    return found


def kill_uid(uid: int, timeout: float = 10.0) -> bool:
    """SIGKILL every process of ``uid`` until none is left (forks racing the kill are caught by the next pass;
    RLIMIT_NPROC bounds how many there can be). Returns False if some survived ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_of_uid(uid)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def cleanup_uid_files(uid: int) -> None:
    """Remove what ``uid`` created in the shared world-writable directories (it can create nothing elsewhere:
    it owns no directory but the run's temp dir, which the runner removes)."""
    for base in WORLD_WRITABLE_DIRS:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if info.st_uid != uid:
                continue
            try:
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


# ---------------------------------------------------------------- child side
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    return libc


def _prctl(libc, option: int, arg2: int = 0, arg3: int = 0) -> None:
    if libc.prctl(option, arg2, arg3, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}, {arg2}, {arg3}): {os.strerror(err)}")


def set_parent_death_signal(expected_parent: int) -> None:
    """Die with SIGKILL when the grader dies (must be re-armed after a uid change, which clears it)."""
    try:
        _prctl(_libc(), _PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != expected_parent:
        os._exit(99)


def drop_privileges(uid: int, gid: int) -> None:
    """Irreversibly become ``uid``/``gid`` with no supplementary groups and no capabilities at all (bounding set
    emptied, ``no_new_privs`` set, so setuid binaries and file capabilities grant nothing afterwards). The caller
    must be root (or hold CAP_SETUID, CAP_SETGID and CAP_SETPCAP) and single-threaded (capabilities are per
    thread)."""
    libc = _libc()
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last_cap = int(fh.read())
    _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1)
    for cap in range(last_cap + 1):
        try:
            _prctl(libc, _PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    _prctl(libc, _PR_SET_KEEPCAPS, 0)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # verify: no way back to root, and no capability left
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError("privilege drop did not take effect")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError("could regain root after dropping privileges")
    with open("/proc/self/status") as fh:
        caps = {k: int(v, 16) for k, v in (line.split(":", 1) for line in fh) if k in ("CapEff", "CapPrm", "CapAmb")}
    if any(caps.get(k) for k in ("CapEff", "CapPrm", "CapAmb")):
        raise OSError(f"unexpected capabilities after drop: {caps}")
