"""autograder.sandbox.view: a sandboxed run sees the interpreter, its packages and what it was given, nothing else."""
import os
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import Limits, run_isolated
from autograder.sandbox.view import View
from sandbox_tasks import TESTS_DIR, run_source

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRETS = [
    REPO_ROOT / "source" / "a2-cnn" / "a2-cnn.ipynb",           # the master: solutions and hidden tests
    REPO_ROOT / "autograder" / "calibration" / "cpu.json",       # thresholds
    REPO_ROOT / "autograder" / "checks" / "registry.py",         # the grader's checks
    REPO_ROOT / "README.md",
    Path("/etc/shadow"), Path("/etc/passwd"), Path("/root"),
]


def test_the_graders_files_and_the_system_are_not_in_the_view(tmp_path):
    host_tmp = Path("/tmp") / f"a2-view-test-{uuid.uuid4().hex}"
    host_tmp.write_text("host secret")
    mirror = REPO_ROOT.parent / "shared" / "data"
    paths = [str(p) for p in SECRETS + [host_tmp, mirror, REPO_ROOT]]
    source = (
        "import os\n"
        "seen = {}\n"
        "for path in data:\n"
        "    try:\n"
        "        seen[path] = 'listed ' + str(len(os.listdir(path))) if os.path.isdir(path) else open(path).read(10)\n"
        "    except OSError as exc:\n"
        "        seen[path] = type(exc).__name__\n"
        "result = {'seen': seen, 'root': sorted(os.listdir('/')), 'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}\n"
    )
    try:
        result = run_source(source, data=paths)
    finally:
        host_tmp.unlink()
    assert result.ok, result.message
    for path, what in result.value["seen"].items():
        if path == str(Path("/root")):  # the mount point of a pyenv interpreter may exist, empty of secrets
            assert what.startswith("listed") or what == "FileNotFoundError", (path, what)
            continue
        assert what == "FileNotFoundError", (path, what)
    assert set(result.value["root"]) <= {"a2", "bin", "dev", "lib", "lib32", "lib64", "proc", "tmp", "usr", "root",
                                         "work", "opt", "home", "srv"}, result.value["root"]
    assert "etc" not in result.value["root"]
    assert max(result.value["pids"]) < 50  # its own pid namespace: the grader's processes are not there


def test_what_the_view_shows_is_there_and_read_only(tmp_path):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "x.txt").write_text("input data")
    helper = REPO_ROOT / "source" / "a2-cnn" / "a2cnn"
    view = View(mounts=((str(helper), "helper/a2cnn"),), import_roots=("helper",), inputs=str(tmp_path / "inputs"))
    source = (
        "import os, torch, a2cnn.layers\n"
        "text = open('/a2/in/x.txt').read()\n"
        "try:\n"
        "    open('/a2/in/y.txt', 'w')\n"
        "    writable = True\n"
        "except OSError:\n"
        "    writable = False\n"
        "result = [text, writable, a2cnn.layers.__file__, torch.tensor([2.0]).item()]\n"
    )
    result = run_isolated("sandbox_tasks:run_student", {"source": source}, Limits(), extra_sys_path=[TESTS_DIR],
                          view=view)
    assert result.ok, result.message + result.stderr
    assert result.value == ["input data", False, "/a2/helper/a2cnn/layers.py", 2.0]
    assert not (tmp_path / "inputs" / "y.txt").exists()


def test_tmp_is_size_limited():
    source = ("try:\n    open('/tmp/big', 'wb').write(b'x' * (8 * 2**20))\n    result = 'wrote'\n"
              "except OSError as exc:\n    result = exc.errno\n")
    result = run_isolated("sandbox_tasks:run_student", {"source": source}, Limits(), extra_sys_path=[TESTS_DIR],
                          view=View(tmp_bytes=2 * 2**20))
    assert result.ok, result.message
    assert result.value == 28  # ENOSPC


def test_a_missing_view_path_is_an_internal_error_not_the_students(tmp_path):
    view = View(mounts=((str(tmp_path / "missing"), "helper"),))
    result = run_isolated("sandbox_tasks:echo", 1, Limits(), extra_sys_path=[TESTS_DIR], view=view)
    assert result.status == "internal"
    assert "does not exist" in result.message


@pytest.mark.skipif(os.geteuid() != 0, reason="the permission check concerns a root grader")
def test_an_unreadable_view_path_is_refused(tmp_path):
    secret = tmp_path / "private"
    secret.mkdir(mode=0o700)
    result = run_isolated("sandbox_tasks:echo", 1, Limits(), extra_sys_path=[TESTS_DIR],
                          view=View(mounts=((str(secret), "helper"),)))
    assert result.status == "internal"
    assert "not readable" in result.message
