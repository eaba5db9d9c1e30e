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
    REPO_ROOT / "nbgrader_config.py",                            # the course's settings, the grader's included
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


# ---- the pretrained weights: exactly the instructor's file, found where torch looks for it in the parent -----------
ARCH = "mobilenet_v3_large"
WEIGHTS_PROBE = (
    "import os, torch.hub\n"
    "from a2cnn.deeplab import checkpoint_path\n"
    "seen = {}\n"
    "for path in data['paths']:\n"
    "    try:\n"
    "        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, 'rb').read()[:40].decode()\n"
    "    except OSError as exc:\n"
    "        seen[path] = type(exc).__name__\n"
    "try:\n"
    "    open(str(checkpoint_path(data['arch'])), 'ab')\n"
    "    writable = True\n"
    "except OSError:\n"
    "    writable = False\n"
    "result = {'torch_home': os.environ.get('TORCH_HOME'), 'hub': torch.hub.get_dir(), 'seen': seen,\n"
    "          'path': str(checkpoint_path(data['arch'])), 'a2': sorted(os.listdir('/a2')), 'writable': writable}\n"
)


def _run_worker_view(weights, paths):
    from autograder.config import GraderConfig
    from autograder.execution import worker_env, worker_view

    config = GraderConfig()
    return run_isolated("sandbox_tasks:run_student", {"source": WEIGHTS_PROBE, "data": {"arch": ARCH, "paths": paths}},
                        Limits(), extra_sys_path=[TESTS_DIR], view=worker_view(config, weights=weights),
                        env=worker_env(config, weights))


def _instructor_torch_home(tmp_path, monkeypatch, with_weights=True):
    """A TORCH_HOME holding the (fake) weights file and other instructor files beside it."""
    from autograder.reference import ensure_helper_on_path

    ensure_helper_on_path()
    from a2cnn.deeplab import checkpoint_path

    home = tmp_path / "instructor-torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    name = checkpoint_path(ARCH).name
    assert checkpoint_path(ARCH) == folder / name  # the parent resolves through TORCH_HOME
    if with_weights:
        (folder / name).write_bytes(b"fake weights for the view test")
    (folder / "deeplabv3_resnet50_coco-cd0a2569.pth").write_bytes(b"another checkpoint, not shown")
    (folder / "instructor-notes.txt").write_text("not for students")
    (home / "hub" / "secret.txt").write_text("not for students")
    return home, folder, name


def test_the_weights_file_alone_is_shown_where_the_workers_torchvision_looks(tmp_path, monkeypatch):
    from autograder.execution import find_weights
    from autograder.sandbox.view import TORCH_HOME_TARGET

    home, folder, name = _instructor_torch_home(tmp_path, monkeypatch)
    weights = find_weights(ARCH)
    assert weights.host == os.path.realpath(folder / name) and weights.name == name
    assert weights.target == f"{TORCH_HOME_TARGET}/hub/checkpoints/{name}" and str(folder) in weights.log
    inside = f"{TORCH_HOME_TARGET}/hub/checkpoints"
    paths = [weights.target, inside, f"{TORCH_HOME_TARGET}/hub", TORCH_HOME_TARGET,
             f"{inside}/deeplabv3_resnet50_coco-cd0a2569.pth", f"{inside}/instructor-notes.txt",
             f"{TORCH_HOME_TARGET}/hub/secret.txt", str(folder / name), str(folder), str(home), str(tmp_path)]
    result = _run_worker_view(weights, paths)
    assert result.ok, result.message + result.stderr
    value = result.value
    # the worker's torchvision (through the helper package, as Part C's cells use it) looks exactly there
    assert value["torch_home"] == TORCH_HOME_TARGET and value["hub"] == f"{TORCH_HOME_TARGET}/hub"
    assert value["path"] == weights.target
    seen = value["seen"]
    assert seen[weights.target] == "fake weights for the view test"
    assert seen[inside] == [name] and seen[f"{TORCH_HOME_TARGET}/hub"] == ["checkpoints"]
    assert seen[TORCH_HOME_TARGET] == ["hub"]
    for path in paths[4:]:  # the files beside it, and the instructor's own folders, are not there at all
        assert seen[path] == "FileNotFoundError", (path, seen[path])
    assert value["writable"] is False
    assert (folder / name).read_bytes() == b"fake weights for the view test"


def test_without_the_weights_file_nothing_is_mounted(tmp_path, monkeypatch):
    from autograder.config import GraderConfig
    from autograder.execution import find_weights, worker_env, worker_view
    from autograder.sandbox.view import TORCH_HOME_TARGET

    home, folder, name = _instructor_torch_home(tmp_path, monkeypatch, with_weights=False)
    weights = find_weights(ARCH)
    assert weights.host is None and "absent" in weights.log
    plain = worker_view(GraderConfig())
    assert worker_view(GraderConfig(), weights=weights) == plain
    assert "TORCH_HOME" not in worker_env(GraderConfig(), weights)
    result = _run_worker_view(weights, [TORCH_HOME_TARGET, str(folder), str(home)])
    assert result.ok, result.message + result.stderr
    assert "torch" not in result.value["a2"] and result.value["torch_home"] is None
    assert set(result.value["seen"].values()) == {"FileNotFoundError"}
    assert not result.value["hub"].startswith(str(tmp_path))


@pytest.mark.skipif(os.geteuid() != 0, reason="the permission check concerns a root grader")
def test_weights_the_sandboxed_user_could_not_read_are_not_mounted(tmp_path, monkeypatch):
    from autograder.execution import find_weights

    _home, folder, name = _instructor_torch_home(tmp_path, monkeypatch)
    (folder / name).chmod(0o600)
    weights = find_weights(ARCH)
    assert weights.host is None and "not readable by other users" in weights.log
