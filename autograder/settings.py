"""Where each grader setting's value comes from, and the checks every value passes on its way in.

Every setting is defined once, in ``config.GraderConfig`` (name, type, default, meaning, allowed values). It takes its
value from, the later winning:

1. its default;
2. the course's settings file: ``--config PATH``, else the course's ``nbgrader_config.py`` beside the grader (the
   folder holding the ``autograder`` package, where nbgrader runs too) when there is one; never a file found in the
   current folder, which may be a student's (the file is Python, run by the grading parent). It is the course's
   nbgrader configuration (traitlets); the grader reads its ``A2Grader`` section::

       c.A2Grader.cell_seconds = 90
       c.A2Grader.check_visibility = {"cnn_learns": "after_due_date"}

   A ``.json`` file holds the same as ``{"A2Grader": {"cell_seconds": 90}}``;
3. the command line: ``--set NAME=VALUE`` and the named flags (``--tier``, ``--parts``, ...).

A value that a setting cannot take, or a setting that does not exist, is a :class:`SettingError` whose one line
names the setting and where the value came from. The settings file is Python the instructor wrote: only the grading
parent reads it, before any worker starts, and :func:`resolve` refuses a file that the workers' sandbox would show
them. ``nbgrader autograde`` reads the same section from nbgrader's own configuration (``nbgrader_grading.py``).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
from pathlib import Path

from .config import GRADER_ROOT, GraderConfig

SECTION = "A2Grader"
COURSE_FILE = "nbgrader_config.py"
COURSE_ROOT = GRADER_ROOT  # where the course's own settings file is looked for
DEFAULT = "default"
COMMAND_LINE = "command line"
FIELDS = {f.name: f for f in dataclasses.fields(GraderConfig)}


class SettingError(ValueError):
    """A setting that does not exist or a value it cannot take: one line naming it and where it came from."""


@dataclasses.dataclass
class Settings:
    config: GraderConfig
    sources: dict                # setting name -> DEFAULT, the settings file's path, or COMMAND_LINE
    file: Path | None = None     # the settings file that was read, if any


# ------------------------------------------------------------------------------------------------ one value
def _number(value, kind):
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise ValueError("expected " + ("a whole number" if kind is int else "a number")) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected " + ("a whole number" if kind is int else "a number"))
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("expected a whole number")
        return int(value)
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return float(value)


def _names(value):
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ValueError("expected a list of names (or one comma-separated string)")
    return tuple(item.strip() for item in value)


def _pairs(value):
    if isinstance(value, str):
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("expected CHECK=VISIBILITY pairs separated by commas")
        value = pairs
    elif isinstance(value, dict):
        value = list(value.items())
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in value):
        raise ValueError("expected {check name: visibility} (or CHECK=VISIBILITY pairs)")
    pairs = tuple((name.strip(), visibility.strip()) for name, visibility in value)
    from .gradescope import ResultsSettingError, check_settings

    try:
        check_settings(check_visibility=dict(pairs))
    except ResultsSettingError as exc:
        raise ValueError(str(exc)) from None
    return pairs


def parse(name: str, value, base: Path | None = None):
    """``value`` (from a file, or text from the command line) as setting ``name`` takes it; ValueError says why not."""
    spec = FIELDS[name]
    kind, optional = spec.type, False
    if isinstance(kind, types.UnionType):  # ``float | None``
        optional = type(None) in kind.__args__
        kind = next(k for k in kind.__args__ if k is not type(None))
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none"))):
        return None
    choices, minimum = spec.metadata["choices"], spec.metadata["minimum"]
    if kind in (int, float):
        value = _number(value, kind)
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
    elif kind is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        value = value.strip()
    elif kind is Path:
        if not isinstance(value, (str, Path)):
            raise ValueError("expected a folder's path")
        value = Path(value).expanduser()
        value = value if value.is_absolute() or base is None else base / value
        if not value.is_dir():
            raise ValueError("no such folder")
    elif name == "check_visibility":
        value = _pairs(value)
    elif kind is tuple:
        value = _names(value)
        if not value:
            raise ValueError("expected at least one name")
        if len(set(value)) != len(value):
            raise ValueError("a name is given twice")
    if choices:
        for item in value if isinstance(value, tuple) else (value,):
            if item not in choices:
                raise ValueError(f"{item!r} is not one of {', '.join(choices)}")
    return value


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, FIELDS, n=1)
    return f"no such setting{f' (did you mean {close[0]}?)' if close else ''}; `python -m autograder config` " \
           "lists them"


def apply(values: dict, source: str, label: str = "", base: Path | None = None, config=None, sources=None):
    """Set each of ``values`` ({name: raw value}) on ``config``, recording ``source``; ``label`` prefixes the names
    in messages (``A2Grader.`` for a file)."""
    config = config or GraderConfig()
    sources = sources if sources is not None else {name: DEFAULT for name in FIELDS}
    for name, raw in values.items():
        if name not in FIELDS:
            raise SettingError(f"{source}: {label}{name}: {_unknown(name)}")
        try:
            setattr(config, name, parse(name, raw, base))
        except ValueError as exc:
            raise SettingError(f"{source}: {label}{name} = {raw!r}: {exc}") from None
        sources[name] = source
    return config, sources


def from_section(section: dict, source: str) -> GraderConfig:
    """The GraderConfig an ``A2Grader`` section describes (for ``nbgrader autograde``, from nbgrader's config)."""
    return apply(dict(section), source, f"{SECTION}.")[0]


# ------------------------------------------------------------------------------------------------ the file
def find_file(given=None) -> Path | None:
    """The settings file: ``given`` (which must exist), else the course's ``nbgrader_config.py`` when there is one."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise SettingError(f"{given}: no such settings file")
        return path.resolve()
    path = COURSE_ROOT / COURSE_FILE
    return path.resolve() if path.is_file() else None


def read_file(path: Path) -> dict:
    """The ``A2Grader`` section of the settings file at ``path``, as {name: raw value} (empty when it has none)."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get(SECTION, {}), dict):
                raise SettingError(f"{path}: expected a JSON object with an object {SECTION!r}")
            return dict(data.get(SECTION, {}))
        from traitlets.config.loader import PyFileConfigLoader

        loaded = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
        return dict(loaded[SECTION]) if SECTION in loaded else {}
    except SettingError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the file does wrong, one line and exit 2
        first = (str(exc).strip().splitlines() or [""])[0]
        raise SettingError(f"{path}: cannot be read: {type(exc).__name__}: {first}") from None


def shown_to_workers(path: Path, config: GraderConfig) -> bool:
    """Whether the sandbox of a grading worker (with ``config``) could read ``path``."""
    from .execution import worker_view
    from .sandbox.runner import full_view
    from .sandbox.view import ViewError, shows

    try:
        return shows(full_view(worker_view(config), ()), path)
    except ViewError:  # no sandbox can start here, so no worker runs (grading refuses with a grader error)
        return False


# ------------------------------------------------------------------------------------------------ all together
def resolve(file=None, overrides: dict | None = None) -> Settings:
    """Defaults, then the settings file (``file``, else the course's ``nbgrader_config.py``), then ``overrides``
    (the command line's {name: value})."""
    path = find_file(file)
    config, sources = GraderConfig(), {name: DEFAULT for name in FIELDS}
    if path is not None:
        apply(read_file(path), str(path), f"{SECTION}.", path.parent, config, sources)
    apply(overrides or {}, COMMAND_LINE, "", Path.cwd(), config, sources)
    if path is not None and shown_to_workers(path, config):
        raise SettingError(f"{path}: the settings file is inside a folder the sandboxed workers can read; keep it "
                           "with the course (outside the grader's worker code, the helper package and Python)")
    return Settings(config, sources, path)


def describe(settings: Settings) -> str:
    """Every setting with its effective value, where that value came from, and what it means."""
    origin = (f"{settings.file} (section {SECTION})" if settings.file else
              f"none (no {COURSE_ROOT / COURSE_FILE}; --config PATH names one)")
    lines = [f"settings file: {origin}", "each setting: value (from default, the settings file, or the command line)"]
    for name, spec in FIELDS.items():
        lines.append(f"{name} = {getattr(settings.config, name)!r}  ({settings.sources[name]})")
        lines.append(f"    {spec.metadata['description']}")
    return "\n".join(lines)
