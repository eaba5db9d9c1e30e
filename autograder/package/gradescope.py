"""``python -m autograder package gradescope --out autograder.zip``: the zip Gradescope's autograder setup takes.

Layout of the zip (Gradescope unpacks it into ``/autograder/source``; ``setup.sh`` and ``run_autograder`` must be at
its root):

    setup.sh           installs the pinned stack, locks the grader's files to root, checks the machine can grade
    run_autograder     grades /autograder/submission/*.ipynb into /autograder/results/results.json
    grader/            the grader's own source (``PACKAGED``), its pinned requirements and ``settings.json``

The master notebook travels inside ``grader/`` because the parent needs it (expected values, locked cells); student
code never reads it: it runs as another user, in a sandbox whose view holds only the worker's code and the helper
package, and ``setup.sh`` makes ``/autograder/source`` readable by root only besides.
"""
from __future__ import annotations

import dataclasses
import io
import json
import stat
import zipfile
from importlib import metadata
from pathlib import Path

from ..config import GRADER_ROOT, GraderConfig, grading_settings
from ..results import settings_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
SCRIPTS = ("setup.sh", "run_autograder")
# What the grader needs at grading time, relative to the project root (tests, course tools and data are not in it).
PACKAGED = ("autograder", "source/a2-cnn/a2cnn", "source/a2-cnn/a2-cnn.ipynb", "pyproject.toml")
SKIPPED_PARTS = ("__pycache__", ".pytest_cache")
TORCH_PACKAGES = ("torch", "torchvision")
SETTINGS_FILE = "settings.json"
# A fixed time for every entry, so that the same sources give the same zip, byte for byte.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _project_dependencies() -> list[str]:
    """The names of the project's runtime dependencies, as pyproject.toml lists them."""
    import re

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((GRADER_ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def _pinned(name: str) -> str:
    """``name==version`` of what is installed here (without a local build label such as ``+cu130``)."""
    return f"{name}=={metadata.version(name).split('+', 1)[0]}"


def requirements() -> tuple[str, str]:
    """(requirements-torch.txt, requirements.txt): the versions this grader was tested with, pinned."""
    names = _project_dependencies()
    torch = [_pinned(n) for n in names if n in TORCH_PACKAGES]
    rest = [_pinned(n) for n in names if n not in TORCH_PACKAGES]
    return "\n".join(torch) + "\n", "\n".join(rest) + "\n"


def package_settings(config: GraderConfig) -> dict:
    """What ``run_autograder`` grades with: the parts, the tier, the results settings, and every other setting that
    can change a grade and is not its default (limits, threads), so that the course's settings file reaches
    Gradescope. ``helper_dir`` stays behind: the package carries its own helper package."""
    settings = {"parts": list(config.parts), "tier": config.tier, **settings_of(config),
                "check_visibility": [list(pair) for pair in config.check_visibility]}
    default = grading_settings(GraderConfig())
    for name, value in grading_settings(config).items():
        if name not in settings and name != "helper_dir" and value != default[name]:
            settings[name] = value
    return settings


def _packaged_files():
    for entry in PACKAGED:
        path = GRADER_ROOT / entry
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in candidates:
            relative = file.relative_to(GRADER_ROOT)
            if any(part in SKIPPED_PARTS for part in relative.parts) or file.suffix == ".pyc":
                continue
            yield relative.as_posix(), file.read_bytes()


def _entry(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    archive.writestr(info, data)


def build(out, config: GraderConfig | None = None) -> dict:
    """Write the package to ``out``; returns {path, bytes, files}."""
    config = config or GraderConfig()
    torch_requirements, other_requirements = requirements()
    buffer = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buffer, "w") as archive:
        for script in SCRIPTS:
            _entry(archive, script, (TEMPLATES / script).read_bytes(), executable=True)
        for name, data in _packaged_files():
            _entry(archive, f"grader/{name}", data)
            count += 1
        _entry(archive, "grader/requirements-torch.txt", torch_requirements.encode())
        _entry(archive, "grader/requirements.txt", other_requirements.encode())
        settings = json.dumps(package_settings(config), indent=2) + "\n"
        _entry(archive, f"grader/{SETTINGS_FILE}", settings.encode())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return {"path": str(out), "bytes": out.stat().st_size, "files": count + len(SCRIPTS) + 3}


def config_from_settings(settings: dict) -> GraderConfig:
    """The GraderConfig ``settings`` (a package's settings.json) describes."""
    known = {field.name for field in dataclasses.fields(GraderConfig)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"unknown settings in {SETTINGS_FILE}: {', '.join(sorted(unknown))}")
    from ..settings import apply

    return apply(settings, SETTINGS_FILE)[0]  # each value checked as from the course's settings file
