"""The Gradescope autograder package: its layout, and setup.sh + run_autograder end to end in a scratch root laid
out like Gradescope's (``source``, ``submission``, ``results`` under a folder standing for ``/autograder``)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.cli import main as cli_main
from autograder.config import GraderConfig
from autograder.package import gradescope as package
from autograder.package import gradescope_runtime as runtime
from tests.corpus import BY_NAME, build
from tests.results_schema import assert_valid_results


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "autograder.zip"
    assert cli_main(["package", "gradescope", "--out", str(out), "--parts", "cnn",
                     "--check-visibility", "cnn_layers=after_due_date"]) == 0
    return out


def test_the_scripts_are_at_the_root_and_executable_and_the_grader_is_beside_them(zip_path):
    with zipfile.ZipFile(zip_path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        settings = json.loads(archive.read("grader/settings.json"))
        torch_requirements = archive.read("grader/requirements-torch.txt").decode().split()
        requirements = archive.read("grader/requirements.txt").decode().split()
    for script in ("setup.sh", "run_autograder"):
        assert infos[script].external_attr >> 16 & 0o111, script
    names = set(infos)
    assert {"grader/autograder/grade.py", "grader/autograder/calibration/cpu.json",
            "grader/source/a2-cnn/a2-cnn.ipynb", "grader/source/a2-cnn/a2cnn/layers.py"} <= names
    # nothing the grader does not need: no tests, course tools, release, data or caches
    assert not [n for n in names if n.startswith(("grader/tests/", "grader/coursetools/", "grader/release/"))
                or "__pycache__" in n or n.endswith((".pyc", ".gz", ".tar"))]
    assert settings == {"parts": ["cnn"], "tier": "auto", "visibility": "visible",
                        "check_visibility": [["cnn_layers", "after_due_date"]], "not_run_policy": "zero"}
    assert [r.split("==")[0] for r in torch_requirements] == ["torch", "torchvision"]
    assert all("==" in r and "+" not in r for r in torch_requirements + requirements)
    assert "nbformat" in {r.split("==")[0] for r in requirements}


def test_the_same_sources_give_the_same_zip(zip_path, tmp_path):
    again = tmp_path / "again.zip"
    package.build(again, package.config_from_settings(
        {"parts": ["cnn"], "check_visibility": [["cnn_layers", "after_due_date"]]}))
    assert again.read_bytes() == zip_path.read_bytes()


def test_the_courses_settings_reach_the_package(tmp_path):
    course = tmp_path / "grader.py"
    course.write_text("c = get_config()\nc.A2Grader.cell_seconds = 90\nc.A2Grader.threads = 2\nc.A2Grader.jobs = 4\n")
    out = tmp_path / "autograder.zip"
    assert cli_main(["package", "gradescope", "--out", str(out), "--config", str(course)]) == 0
    with zipfile.ZipFile(out) as archive:
        settings = json.loads(archive.read("grader/settings.json"))
    assert settings["cell_seconds"] == 90 and settings["threads"] == 2
    assert "jobs" not in settings and "helper_dir" not in settings  # batch scheduling; the package's own helper
    config = package.config_from_settings(settings)
    assert (config.cell_seconds, config.threads) == (90, 2)


def test_a_settings_file_with_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown settings"):
        package.config_from_settings({"parts": ["cnn"], "visiblity": "hidden"})
    assert package.config_from_settings({}).parts == GraderConfig().parts
    with pytest.raises(ValueError, match="settings.json: cell_seconds = 'soon': expected a number"):
        package.config_from_settings({"cell_seconds": "soon"})


def _notebook(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def test_the_notebook_to_grade_is_found_or_the_student_is_told_why(tmp_path):
    assert runtime.find_notebook(tmp_path)[0] is None and "no notebook" in runtime.find_notebook(tmp_path)[1]
    only = _notebook(tmp_path / "my work" / "homework.ipynb")
    _notebook(tmp_path / "my work" / ".ipynb_checkpoints" / "homework-checkpoint.ipynb")
    assert runtime.find_notebook(tmp_path) == (only, "")
    _notebook(tmp_path / "other.ipynb")
    found, why = runtime.find_notebook(tmp_path)
    assert found is None and "2 notebooks" in why and "a2-cnn.ipynb" in why
    named = _notebook(tmp_path / "a2-cnn.ipynb")
    assert runtime.find_notebook(tmp_path) == (named, "")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _gradescope_root(zip_path, root):
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():  # as Gradescope's unzip does, with the modes the zip records
            target = root / "source" / info.filename
            archive.extract(info, root / "source")
            os.chmod(target, info.external_attr >> 16 & 0o777)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return root


def _script(root, name, **env):
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), **env}
    return subprocess.run(["bash", str(root / name)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_setup_and_run_autograder_grade_a_submission_into_valid_results(zip_path, tmp_path, mirror_dir):
    root = _gradescope_root(zip_path, tmp_path / "autograder")
    # the network part of setup.sh (apt-get, pip) is skipped by giving it an interpreter that has the stack
    setup = _script(root, "source/setup.sh", A2_PYTHON=sys.executable, A2_DATA_DIR=str(mirror_dir))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "bubblewrap works here" in setup.stdout
    grader = root / "source" / "grader"
    # what decides a score is root-only; what the sandbox shows a worker is readable by its unprivileged user
    for secret in ("source/a2-cnn/a2-cnn.ipynb", "autograder/calibration/cpu.json", "autograder/grade.py",
                   "settings.json"):
        assert _mode(grader / secret) & 0o077 == 0, secret
    for shown in ("autograder/worker/main.py", "autograder/sandbox/child.py", "source/a2-cnn/a2cnn/layers.py"):
        assert _mode(grader / shown) & 0o004, shown

    # nothing submitted: a valid results file that says so
    empty = _script(root, "run_autograder")
    assert empty.returncode == 0, empty.stderr
    results = assert_valid_results(root / "results" / "results.json")
    assert results["score"] == 0 and "no notebook" in results["output"]

    build(BY_NAME["missing_relu"], root / "submission" / "a2-cnn.ipynb")
    run = _script(root, "run_autograder")
    assert run.returncode == 0, run.stdout + run.stderr
    results = assert_valid_results(root / "results" / "results.json")
    assert results["score"] == 1.5 and sum(t["max_score"] for t in results["tests"]) == 2
    by_check = {t["tags"][1]: t for t in results["tests"]}
    assert by_check["cnn_layers"]["status"] == "failed" and "ReLU" in by_check["cnn_layers"]["output"]
    assert by_check["cnn_layers"]["visibility"] == "after_due_date"
    assert by_check["cnn_only_myconv"]["visibility"] == "visible"
    # the instructor's log goes to the script's output (instructors only), never into results.json
    assert "score: 1.5 / 2" in run.stdout
    assert str(root) not in (root / "results" / "results.json").read_text()
    assert not list((root / "results").glob("*.log"))
