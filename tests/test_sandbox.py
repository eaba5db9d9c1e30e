"""autograder.sandbox: every behaviour shown with a real hostile "student" source run through the sandbox."""
import json
import os
import socket
import time
import uuid

import pytest

from autograder.sandbox import Limits, SandboxResult, run_isolated
from autograder.sandbox.privileges import pids_of_uid
from autograder.sandbox.runner import GRADER_ROOT
from sandbox_tasks import TESTS_DIR, alive, run_source

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="uid drop, namespaces and RLIMIT_NPROC need a root grader")


def marked_processes(mark):
    """Host processes whose environment carries ``mark`` (every process a run started inherits it)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and alive(int(name)):
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if mark.encode() in fh.read():
                        found.append(int(name))
            except OSError:
                continue
    return found


def run_marked(source, **limits):
    """run_source with a unique marker in the child's environment; returns (result, marker)."""
    mark = f"A2_TEST_MARK=run-{uuid.uuid4().hex}"
    key, value = mark.split("=")
    return run_source(source, env={key: value}, **limits), mark


def assert_nothing_left(result: SandboxResult, mark=None):
    if mark is not None:
        assert marked_processes(mark) == [], "a process of the run survived it"
    if result.isolation.get("dedicated_uid"):
        assert pids_of_uid(result.isolation["uid"]) == []


def printed_pids(result):
    return [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("PID ")]


# ---------------------------------------------------------------- the normal paths
def test_return_value_comes_back():
    result = run_source("result = {'answer': 6 * 7, 'data': data}", data=[1, 2.5, "x"])
    assert result.status == "ok", result.message
    assert result.ok
    assert result.value == {"answer": 42, "data": [1, 2.5, "x"]}
    assert result.returncode == 0
    assert 0 < result.wall_seconds < 10


def test_exception_is_an_error_with_a_short_traceback():
    source = "def helper(n):\n    raise ValueError(f'bad input {n}')\n\nhelper(123)\n"
    result = run_source(source)
    assert result.status == "error"
    assert result.value is None
    assert "ValueError" in result.message and "bad input 123" in result.message
    assert "<student>" in result.message and "helper" in result.message
    assert "autograder/sandbox" not in result.message  # the grader's own frames are not shown


def test_print_output_is_captured():
    result = run_source("import sys\nprint('hello out')\nprint('hello err', file=sys.stderr)\nresult = 1")
    assert result.ok
    assert result.stdout == "hello out\n"
    assert result.stderr == "hello err\n"


# ---------------------------------------------------------------- time
def test_infinite_loop_times_out_and_leaves_no_process():
    source = (
        "import os, time\n"
        "if os.fork() == 0:\n"            # a helper process in the same group...
        "    print('PID', os.getpid(), flush=True)\n"
        "    while True: time.sleep(1)\n"
        "if os.fork() == 0:\n"            # ...and one that leaves the session (root: uid sweep; else: parent link)
        "    os.setsid()\n"
        "    print('PID', os.getpid(), flush=True)\n"
        "    while True: pass\n"
        "print('PID', os.getpid(), flush=True)\n"
        "while True: pass\n"
    )
    start = time.monotonic()
    result, mark = run_marked(source, wall_seconds=1.5)
    elapsed = time.monotonic() - start
    assert result.status == "timeout"
    assert "time limit" in result.message
    # not stopped early; stopped at all (the loops never end), with room for a loaded machine
    assert 1.5 <= elapsed < 1.5 + 10
    pids = printed_pids(result)
    assert len(pids) == 3
    assert_nothing_left(result, mark)


def test_cpu_limit_stops_a_busy_loop():
    result = run_source("while True: pass", cpu_seconds=1, wall_seconds=20)
    assert result.status == "timeout"
    assert "CPU" in result.message
    assert result.wall_seconds < 15  # far below the 20 s wall limit: the CPU limit stopped it


# ---------------------------------------------------------------- exiting on purpose
@pytest.mark.parametrize("source", ["import sys\nsys.exit(0)", "raise SystemExit", "quit()",
                                    "result = 1\nimport sys\nsys.exit(0)"])
def test_sys_exit_is_never_ok(source):
    result = run_source(source)
    assert result.status == "crashed"
    assert not result.ok and result.value is None
    assert "sys.exit" in result.message


@pytest.mark.parametrize("source, words", [
    ("result = 1\nimport os\nos._exit(0)", "without reporting"),
    ("import os\nos._exit(3)", "exit code 3"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
])
def test_hard_exit_or_crash_is_crashed(source, words):
    result = run_source(source)
    assert result.status == "crashed"
    assert result.value is None
    assert words in result.message


# ---------------------------------------------------------------- memory
def test_huge_allocation_is_a_memory_error_quickly():
    start = time.monotonic()
    result = run_source("b = bytearray(50 * 2**30)")  # default limits
    assert result.status == "memory", result.message
    assert "memory" in result.message
    assert time.monotonic() - start < 10


def test_growing_list_is_a_memory_error():
    source = "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**20)\n"  # touches every page
    start = time.monotonic()
    result = run_source(source, memory_bytes=512 * 2**20)
    assert result.status == "memory", result.message
    assert time.monotonic() - start < 15


# ---------------------------------------------------------------- processes
@pytest.mark.parametrize("drop", [True, False])
def test_spawned_processes_are_all_killed(drop):
    # bounded: the main process forks 40 sleepers (safe even where RLIMIT_NPROC is not enforced)
    source = (
        "import os, time\n"
        "pids = []\n"
        "for _ in range(40):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    pids.append(pid)\n"
        "result = pids\n"
    )
    result, mark = run_marked(source, drop_privileges=drop)
    assert result.status == "ok", result.message
    assert len(result.value) == 40
    assert result.isolation["dedicated_uid"] == (drop and IS_ROOT)
    assert_nothing_left(result, mark)


@root_only
def test_process_limit_stops_forking():
    source = (
        "import os, time\n"
        "count = 0\n"
        "for _ in range(500):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    count += 1\n"
        "result = count\n"
    )
    result, mark = run_marked(source, max_processes=20)
    assert result.status == "ok", result.message
    assert result.value < 20
    assert_nothing_left(result, mark)


@root_only
def test_real_fork_bomb_is_contained_and_cleaned_up():
    source = (
        "import os\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result, mark = run_marked(source, max_processes=32, wall_seconds=2)
    assert result.status in ("timeout", "crashed")
    assert not result.ok
    assert result.processes_killed >= 16  # the parent can tell the student that it was a fork storm
    assert_nothing_left(result, mark)


# ---------------------------------------------------------------- forging the result
FAKE = json.dumps({"ok": True, "value": 999})


def forged_source(extra=""):
    # fake results (no token, or a guessed token) printed, and written to fds 3..20 and to every open fd
    # (which includes the real result pipe, found through /proc/self/fd)
    return (
        "import os, sys, json\n"
        f"fakes = [{FAKE!r}] + [json.dumps({{'token': t, 'ok': True, 'value': 999}}) for t in ('', '0' * 32, 'x')]\n"
        "fds = list(range(3, 21)) + [int(name) for name in os.listdir('/proc/self/fd')]\n"
        "for fake in fakes:\n"
        "    print(fake)\n"
        "    print(fake, file=sys.stderr)\n"
        "    for fd in fds:\n"
        "        try:\n"
        "            os.write(fd, ('\\n' + fake + '\\n').encode())\n"
        "        except OSError:\n"
        "            pass\n"
        + extra
    )


def test_fake_result_lines_do_not_change_the_value():
    result = run_source(forged_source("result = 1\n"))
    assert result.status == "ok", result.message
    assert result.value == 1
    assert FAKE in result.stdout


def test_fake_result_then_hard_exit_is_not_accepted():
    result = run_source(forged_source("result = 1\nos._exit(0)\n"))
    assert result.status == "crashed"
    assert result.value is None


def test_closing_every_descriptor_is_crashed_not_ok():
    result = run_source("import os\nos.closerange(3, 4096)\nresult = 1")
    assert result.status == "crashed"
    assert "result channel" in result.message


def test_reporting_twice_with_the_real_token_is_rejected():
    # in-process code CAN find the token (documented); writing a second authentic message is detected
    source = (
        "import sys, json, os\n"
        "f = sys._getframe()\n"
        "while f and 'token' not in f.f_locals:\n"
        "    f = f.f_back\n"
        "tok, fd = f.f_locals['token'], f.f_locals['channel']\n"
        "from autograder.sandbox.protocol import encode\n"
        "os.write(fd, encode({'token': tok, 'type': 'end', 'ok': True, 'value': 999}))\n"
        "result = 1\n"
    )
    result = run_source(source)
    assert result.status == "crashed"
    assert "tampered" in result.message
    assert result.value is None


def test_in_process_code_can_send_authentic_frames_so_frames_carry_data_only():
    # Code in the child's process can dig out the token and the channel and send a frame of its own. The sandbox
    # cannot prevent that; the grader therefore never takes a verdict from a frame (tests/test_corpus.py shows
    # that forging submissions score what their honest code deserves).
    source = (
        "import sys, os\n"
        "f = sys._getframe()\n"
        "while f and 'token' not in f.f_locals:\n"
        "    f = f.f_back\n"
        "emit = f.f_locals['emit']\n"
        "emit({'forged': True})\n"
        "result = 1\n"
    )
    result = run_source(source)
    assert result.ok, result.message
    assert [header.get("forged") for header, _ in result.events] == [True]


def test_fork_does_not_report_twice():
    # the forked copy returns from the task too; only the original process may report
    result = run_source("import os, time\npid = os.fork()\nresult = 'child' if pid == 0 else 'parent'\n"
                        "if pid: time.sleep(0.3)\n")
    assert result.status == "ok", result.message
    assert result.value == "parent"


# ---------------------------------------------------------------- environment, files, io
def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("A2_GRADER_SECRET", "s3cr3t-value")
    source = (
        "import os\n"
        "seen = dict(os.environ)\n"
        "try:\n"
        "    seen['parent'] = open(f'/proc/{os.getppid()}/environ', 'rb').read().decode('latin-1')\n"
        "except OSError as exc:\n"
        "    seen['parent'] = type(exc).__name__\n"
        "result = seen\n"
    )
    result = run_source(source, env={"A2_VISIBLE": "yes"})
    assert result.ok, result.message
    env = result.value
    assert "A2_GRADER_SECRET" not in env
    assert env["A2_VISIBLE"] == "yes"
    assert env["OMP_NUM_THREADS"] == "1"
    assert set(env) - {"parent"} <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
                                     "PYTHONIOENCODING", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MALLOC_ARENA_MAX", "MPLBACKEND", "A2_VISIBLE", "PWD"}
    if IS_ROOT:  # a non-root grader shares its uid with the child, which may then read /proc/<grader>/environ
        assert "s3cr3t-value" not in json.dumps(result.value)


def test_huge_output_is_capped_without_deadlock():
    source = "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 50_000)\n    sys.stderr.write('y' * 50_000)\nresult = 'done'"
    result = run_source(source, output_bytes=1000)
    assert result.status == "ok", result.message
    assert result.value == "done"
    for text, char in ((result.stdout, "x"), (result.stderr, "y")):
        assert text.startswith(char * 1000)
        assert "[truncated]" in text
        assert len(text) < 1200


def test_stdin_is_empty():
    result = run_source("import sys\nresult = [sys.stdin.read(), sys.stdin.readline()]", wall_seconds=10)
    assert result.value == ["", ""]
    result = run_source("input('name? ')", wall_seconds=10)
    assert result.status == "error" and "EOFError" in result.message


def test_working_directory_is_fresh_private_and_removed():
    source = (
        "import os, stat\n"
        "before = sorted(os.listdir('.'))\n"
        "open('model.pt', 'w').write('x')\n"
        "os.mkdir('sub')\n"
        "os.chmod('sub', 0)\n"
        "result = dict(cwd=os.getcwd(), before=before, home=os.environ['HOME'], tmp=os.environ['TMPDIR'],\n"
        "              mode=stat.S_IMODE(os.stat('.').st_mode))\n"
    )
    first = run_source(source)
    second = run_source(source)
    assert first.ok and second.ok, (first.message, second.message)
    assert first.value["before"] == second.value["before"] == []  # nothing of the first run is left
    assert first.value["cwd"] == first.value["home"] == first.value["tmp"] == "/tmp"
    assert not os.path.exists("/tmp/model.pt") or os.stat("/tmp/model.pt").st_uid != first.isolation["uid"]


def test_file_size_limit():
    source = "try:\n    open('big', 'wb').write(b'x' * 2_000_000)\n    result = 'wrote'\nexcept OSError as e:\n    result = e.errno\n"
    result = run_source(source, file_size_bytes=1_000_000)
    assert result.ok, result.message
    assert result.value == 27  # EFBIG


# ---------------------------------------------------------------- torch under the default limits
def test_torch_small_conv_works_under_default_limits():
    source = (
        "import torch\n"
        "conv = torch.nn.Conv2d(3, 8, 3, padding=1)\n"
        "x = torch.randn(4, 3, 32, 32)\n"
        "y = torch.relu(conv(x))\n"
        "y.mean().backward()\n"
        "result = dict(shape=list(y.shape), grad=conv.weight.grad is not None, threads=torch.get_num_threads())\n"
    )
    result = run_source(source)
    assert result.status == "ok", result.message + result.stderr
    assert result.value == {"shape": [4, 8, 32, 32], "grad": True, "threads": 1}


def test_task_module_importing_torch_with_two_threads():
    source = (
        "import os, torch\n"
        "y = torch.nn.Conv2d(3, 4, 3)(torch.randn(2, 3, 16, 16))\n"
        "import a2cnn.layers\n"  # the students' helper library is importable through extra_sys_path
        "result = [torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], list(y.shape),\n"
        "          hasattr(a2cnn.layers, 'MyConv2d')]\n"
    )
    result = run_isolated("sandbox_torch_tasks:run_student", {"source": source}, Limits(threads=2),
                          extra_sys_path=[TESTS_DIR, GRADER_ROOT / "source" / "a2-cnn"])
    assert result.status == "ok", result.message + result.stderr
    assert result.value == [2, "2", [2, 4, 14, 14], True]


def test_torch_huge_tensor_is_a_memory_error():
    result = run_source("import torch\nt = torch.empty(50 * 2**30, dtype=torch.uint8)")
    assert result.status == "memory", result.message + result.stderr


# ---------------------------------------------------------------- grader-side failures
def test_unknown_task_is_internal():
    result = run_isolated("sandbox_tasks:no_such_task", {}, Limits(), extra_sys_path=[TESTS_DIR])
    assert result.status == "internal"
    assert "AttributeError" in result.message


def test_unserialisable_value_is_internal():
    result = run_isolated("sandbox_tasks:unserialisable", {}, Limits(), extra_sys_path=[TESTS_DIR])
    assert result.status == "internal"
    assert "JSON" in result.message


def test_payload_must_be_json_in_the_grader():
    with pytest.raises(TypeError):
        run_isolated("sandbox_tasks:echo", {"x": object()}, Limits(), extra_sys_path=[TESTS_DIR])


def test_limits_validate():
    with pytest.raises(ValueError):
        Limits(wall_seconds=0)
    with pytest.raises(ValueError):
        Limits(memory_bytes=-1)


# ---------------------------------------------------------------- privileges (root grader)
@root_only
def test_child_runs_unprivileged(tmp_path):
    tmp_path.chmod(0o755)  # root-owned, readable by everyone, writable by root only
    target = GRADER_ROOT / "autograder" / "sandbox" / "runner.py"
    source = (
        "import os\n"
        "out = {'uid': os.getuid(), 'groups': os.getgroups()}\n"
        "for name, action in [\n"
        f"    ('write_grader', lambda: open({str(target)!r}, 'a')),\n"
        "    ('setuid_root', lambda: os.setuid(0)),\n"
        "    ('signal_grader', lambda: os.kill(os.getppid(), 0)),\n"
        f"    ('write_root_dir', lambda: open({str(tmp_path / 'x')!r}, 'w')),\n"
        "]:\n"
        "    try:\n"
        "        action()\n"
        "        out[name] = 'allowed'\n"
        "    except OSError as exc:\n"
        "        out[name] = type(exc).__name__\n"
        "result = out\n"
    )
    result = run_source(source)
    assert result.ok, result.message
    value = result.value
    assert value["uid"] == result.isolation["uid"] != 0
    assert value["groups"] == []
    assert value["setuid_root"] == value["signal_grader"] == "PermissionError", value
    for name in ("write_grader", "write_root_dir"):  # not even in the sandbox's view
        assert value[name] in ("PermissionError", "FileNotFoundError"), (name, value)
    assert not (tmp_path / "x").exists()


@root_only
def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        source = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    result = 'connected'\n"
            "except OSError as exc:\n"
            "    result = type(exc).__name__\n"
        )
        result = run_source(source)
    finally:
        server.close()
    assert result.ok, result.message
    assert result.value != "connected"


@root_only
def test_files_left_in_shared_tmp_are_removed():
    source = (
        "import os\n"
        "path = '/tmp/a2-sandbox-leftover-%d' % os.getpid()\n"
        "os.mkdir(path)\n"
        "open(path + '/f', 'w').write('x')\n"
        "result = path\n"
    )
    result = run_source(source)
    assert result.ok, result.message
    assert not os.path.exists(result.value)


@root_only
def test_orphans_of_a_killed_grader_are_swept_by_the_next_run():
    import subprocess
    from autograder.sandbox import privileges
    uid = privileges.UID_POOL_START + privileges.UID_POOL_SIZE - 1  # a pool uid no run holds
    orphan = subprocess.Popen(["sleep", "600"], user=uid, group=uid, extra_groups=[])
    try:
        result = run_source("result = 1")
        assert result.ok
        deadline = time.monotonic() + 5
        while alive(orphan.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(orphan.pid)
    finally:
        orphan.kill()
        orphan.wait()
