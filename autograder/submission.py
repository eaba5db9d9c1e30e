"""Read and validate a submitted notebook; find its cells by nbgrader grade id; report what the student broke.

``read_submission(path)`` never raises for a bad submission. A file that cannot be used at all (missing,
unreadable, empty, not UTF-8, not JSON, not a notebook, failing ``nbformat.validate``) gives a :class:`Submission`
with ``fatal`` set to a message for the student and no cells. Otherwise ``cells`` maps grade ids to cells and
``problems`` maps grade ids to messages, for:

* every nbgrader cell of the master (the contract cells of docs/design.md included) that is missing: deleted, or
  its grade id renamed;
* a cell whose type (code/markdown/raw) differs from the master's;
* a grade id used by more than one cell (the first is kept);
* every *locked* cell of the master (read-only text and code, ``setup_imports``, the test cells) whose source
  differs from the master's. Sources are compared line by line with trailing white space stripped; a test cell
  may be the released version (hidden tests removed) or the full master version;
* nbgrader metadata that was altered: the grade/solution/locked flags or points of a cell, or the checksum that
  nbgrader stored in a locked cell when the assignment was released. The checksum is recomputed from the MASTER
  (as ``nbgrader.utils.compute_checksum`` does on the released cell), never from the student's own metadata, which
  a student can edit as easily as the source. A notebook that carries no checksums at all (the master itself, an
  executed solution notebook) is not blamed for lacking them.

The grader never runs the student's copy of a locked cell: it runs the master's (``setup_code``,
``visible_test_code``), as nbgrader restores read-only cells. Editing a locked cell changes nothing and is
reported to the student; it costs nothing. ``order`` lists every cell in notebook order, for running the notebook
as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

MASTER = Path(__file__).resolve().parents[1] / "source" / "a2-cnn" / "a2-cnn.ipynb"

# The notebook contract (docs/design.md): grade_id -> kind, as `kind_of` names it.
CONTRACT = {
    "setup_imports": "locked",
    "cnn_model": "answer", "unet_model": "answer", "finetune_train": "answer", "finetune_setup": "answer",
    "test_cnn": "tests", "test_unet": "tests", "test_finetune": "tests", "test_learning": "tests",
    "answer_a2_results": "manual", "answer_a3_counts": "manual", "answer_a4_preprocess": "manual",
    "answer_b3_compare": "manual", "answer_b4_batch": "manual",
    "answer_c4_complexity": "manual", "answer_c5_resolution": "manual",
}
# The answer cells graded by each autograded part, and the test cell whose visible tests gate the part.
# "learning" trains the student's models, so it needs all four answer cells.
PART_CELLS = {
    "cnn": ["cnn_model"],
    "unet": ["unet_model"],
    "finetune": ["finetune_train", "finetune_setup"],
    "learning": ["cnn_model", "unet_model", "finetune_train", "finetune_setup"],
}
PART_TEST_CELLS = {"cnn": "test_cnn", "unet": "test_unet", "finetune": "test_finetune", "learning": "test_learning"}

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"  # as nbgrader's ClearHiddenTests matches them
_RESUBMIT = "Submit the .ipynb file that Jupyter saved, starting from the released notebook."


def kind_of(meta: Mapping) -> str:
    """The contract kind of a cell's nbgrader metadata: manual, answer, tests, locked or other."""
    if meta.get("solution") and meta.get("grade"):
        return "manual"
    if meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "tests"
    return "locked" if meta.get("locked") else "other"


@dataclass
class Submission:
    path: Path
    cells: dict = field(default_factory=dict)  # grade_id -> nbformat cell (the first cell with that id)
    problems: dict = field(default_factory=dict)  # grade_id -> message for the student
    fatal: str | None = None  # set when the file cannot be used at all (then cells is empty)
    unknown_ids: list = field(default_factory=list)  # grade ids the master does not have
    unusable: set = field(default_factory=set, repr=False)  # grade ids present but not usable (cell type changed)
    order: list = field(default_factory=list)  # every cell in notebook order: {"type", "grade_id", "source"}

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.problems

    def source(self, grade_id: str) -> str | None:
        """The student's source of a cell (an answer cell, normally); None if it is missing or of the wrong type."""
        if self.fatal is not None or grade_id in self.unusable or grade_id not in self.cells:
            return None
        source = self.cells[grade_id].get("source", "")
        return source if isinstance(source, str) else None

    def affected(self, grade_ids: Iterable[str]) -> list[str]:
        """The messages about any of these cells (the fatal message alone if the notebook is unusable)."""
        if self.fatal is not None:
            return [self.fatal]
        ids = [grade_ids] if isinstance(grade_ids, str) else list(grade_ids)
        return [self.problems[g] for g in dict.fromkeys(ids) if g in self.problems]

    def _add(self, grade_id: str, message: str) -> None:
        self.problems[grade_id] = f"{self.problems[grade_id]} {message}" if grade_id in self.problems else message


# --- Reading a notebook file ---------------------------------------------------------------------------------------

def _load(path: Path, max_bytes: int):
    """(notebook, None) or (None, message for the student). Never raises."""
    import nbformat  # slow to import; only needed here

    name = path.name or str(path)
    try:
        if path.is_dir():
            return None, f"'{name}' is a folder, not a notebook file. {_RESUBMIT}"
        size = path.stat().st_size
        if size > max_bytes:
            return None, (f"The notebook '{name}' is too large to grade ({size / 2**20:.0f} MiB, at most "
                          f"{max_bytes / 2**20:.0f} MiB): clear the outputs (Kernel > Restart & Clear Output), save "
                          "and submit again.")
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return None, f"No notebook was found: the file '{name}' does not exist. {_RESUBMIT}"
    except PermissionError:
        return None, f"The notebook '{name}' could not be opened (permission denied). {_RESUBMIT}"
    except (OSError, ValueError) as error:
        return None, f"The notebook '{name}' could not be read ({type(error).__name__}: {error}). {_RESUBMIT}"
    if not raw.strip():
        return None, f"The notebook '{name}' is empty. {_RESUBMIT}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return None, (f"The file '{name}' is not a notebook: it is not UTF-8 text (undecodable byte at position "
                      f"{error.start}). It may be a PDF, a zip or an HTML export. {_RESUBMIT}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return None, (f"The file '{name}' is not a valid notebook: it is not valid JSON ({error.msg} at line "
                      f"{error.lineno}, column {error.colno}); it may be truncated or edited by hand. {_RESUBMIT}")
    except (RecursionError, MemoryError, ValueError) as error:
        return None, f"The file '{name}' is not a valid notebook: its JSON cannot be read ({type(error).__name__}). {_RESUBMIT}"
    if not isinstance(data, dict):
        return None, (f"The file '{name}' is JSON but not a Jupyter notebook (it holds a JSON "
                      f"{_json_type(data)}, not an object with cells). {_RESUBMIT}")
    version = data.get("nbformat")
    if "cells" not in data and "worksheets" not in data or version is None:
        return None, f"The file '{name}' is JSON but not a Jupyter notebook (no 'nbformat' and 'cells'). {_RESUBMIT}"
    if type(version) is not int or version not in (3, 4):
        return None, (f"The notebook '{name}' has notebook format {version!r}; only format 4 (and 3) can be graded. "
                      "Open it in a current Jupyter, save it and submit again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.from_dict(data)
            if version != 4:
                nb = nbformat.convert(nb, 4)
            nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return None, f"The notebook '{name}' is damaged: it fails the notebook format check ({_short(error)}). {_RESUBMIT}"
    except Exception as error:  # noqa: BLE001 - anything nbformat trips over is a broken submission
        return None, (f"The notebook '{name}' is damaged: it fails the notebook format check ({type(error).__name__}: "
                      f"{_short(error)}). {_RESUBMIT}")
    if nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        return None, f"The notebook '{name}' could not be converted to notebook format 4. {_RESUBMIT}"
    for cell in nb.cells:
        if isinstance(cell.get("source"), list):  # nbformat.reads joins these; from_dict does not
            cell["source"] = "".join(cell["source"])
    return nb, None


def _json_type(value) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}.get(type(value), "value")


def _short(error: BaseException, limit: int = 200) -> str:
    text = getattr(error, "message", None) or str(error)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    if isinstance(meta, Mapping) and isinstance(meta.get("grade_id"), str):
        return meta["grade_id"]
    return None


def _nbgrader_cells(nb) -> tuple[dict, dict]:
    """({grade_id: first cell}, {grade_id: number of cells with it})."""
    cells, counts = {}, {}
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        counts[grade_id] = counts.get(grade_id, 0) + 1
        cells.setdefault(grade_id, cell)
    return cells, counts


def _order(nb) -> list:
    """Every cell in notebook order; a grade id is kept on its first cell only (nbgrader strips the nbgrader
    metadata of duplicates, which then run as ordinary cells)."""
    seen, order = set(), []
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id in seen:
            grade_id = None
        elif grade_id is not None:
            seen.add(grade_id)
        source = cell.get("source", "")
        order.append({"type": cell.get("cell_type"), "grade_id": grade_id,
                      "source": source if isinstance(source, str) else ""})
    return order


_MASTER_CACHE: dict = {}


def load_master(master_path: os.PathLike | str = MASTER) -> dict:
    """The master notebook's nbgrader cells by grade id (cached). Raises: a broken master is the instructor's bug."""
    path = Path(master_path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _MASTER_CACHE:
        nb, error = _load(path, max_bytes=max(MAX_NOTEBOOK_BYTES, stat.st_size))
        if error:
            raise RuntimeError(f"master notebook {path}: {error}")
        cells, counts = _nbgrader_cells(nb)
        duplicated = [g for g, n in counts.items() if n > 1]
        if duplicated:
            raise RuntimeError(f"master notebook {path}: duplicate grade ids {duplicated}")
        _MASTER_CACHE.clear()
        _MASTER_CACHE[key] = cells
    return _MASTER_CACHE[key]


# --- Master-derived code -------------------------------------------------------------------------------------------

def _text(cell) -> str:
    source = cell["source"] if isinstance(cell, Mapping) else cell
    return "".join(source) if isinstance(source, list) else source


def strip_hidden_tests(source: str) -> str:
    """The source without its hidden-test regions, exactly as nbgrader's ClearHiddenTests releases it."""
    kept, inside = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            if inside:
                raise ValueError("nested BEGIN HIDDEN TESTS")
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError("BEGIN HIDDEN TESTS without END HIDDEN TESTS")
    return "\n".join(kept)


def visible_test_code(master_cells: Mapping, part: str) -> str:
    """The master's test cell of a part, hidden tests removed: what the student saw, and what gates the part."""
    return strip_hidden_tests(_text(master_cells[PART_TEST_CELLS[part]]))


def setup_code(master_cells: Mapping) -> str:
    """The master's ``setup_imports`` source (it may hold IPython magics such as ``%matplotlib inline``)."""
    return _text(master_cells["setup_imports"])


# --- Comparing a submission with the master ------------------------------------------------------------------------

def normalise(source: str) -> str:
    """Lines with trailing white space stripped, line endings unified, no trailing blank lines."""
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _flags(meta: Mapping) -> tuple[bool, bool, bool]:
    """(grade, solution, locked) as nbgrader.utils understands them."""
    grade, solution = bool(meta.get("grade", False)), bool(meta.get("solution", False))
    locked = False if solution else True if grade else bool(meta.get("locked", False))
    return grade, solution, locked


def release_checksum(master_cell) -> str:
    """The checksum nbgrader stores in the released version of a master cell (``nbgrader.utils.compute_checksum``
    applied after hidden tests are removed)."""
    meta = master_cell["metadata"]["nbgrader"]
    md5 = hashlib.md5()
    md5.update(strip_hidden_tests(_text(master_cell)).encode("utf-8"))
    md5.update(master_cell["cell_type"].encode("utf-8"))
    md5.update(str(meta.get("grade", False)).encode("utf-8"))
    md5.update(str(meta.get("solution", False)).encode("utf-8"))
    # nbgrader.utils.is_locked: False for a solution cell, True for a grade cell, else the raw 'locked' value.
    locked = False if meta.get("solution", False) else True if meta.get("grade", False) else meta.get("locked", False)
    md5.update(str(locked).encode("utf-8"))
    md5.update(meta["grade_id"].encode("utf-8"))
    if meta.get("grade", False):
        md5.update(str(float(meta["points"])).encode("utf-8"))
    return md5.hexdigest()


def _first_difference(submitted: str, expected: str) -> str:
    got, want = submitted.split("\n"), expected.split("\n")
    for number, (a, b) in enumerate(zip(got, want), start=1):
        if a != b:
            return f"line {number} differs" + (f" ({a.strip()[:60]!r})" if a.strip() else "")
    short, long_, what = (got, want, "deleted") if len(got) < len(want) else (want, got, "added")
    if len(long_) - len(short) == 1:
        return f"line {len(long_)} was {what}"
    return f"lines {len(short) + 1} to {len(long_)} were {what}"


def _points(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _metadata_changes(meta: Mapping, master_meta: Mapping) -> list[str]:
    changes = []
    for name, got, want in zip(("grade", "solution", "locked"), _flags(meta), _flags(master_meta)):
        if got != want:
            changes.append(f"'{name}' is {got}, should be {want}")
    if _flags(master_meta)[0]:
        got, want = _points(meta.get("points")), float(master_meta["points"])
        if got != want:
            changes.append(f"'points' is {meta.get('points')!r}, should be {master_meta['points']!r}")
    return changes


def read_submission(path: os.PathLike | str, master_path: os.PathLike | str = MASTER,
                    max_bytes: int = MAX_NOTEBOOK_BYTES) -> Submission:
    """Read a submitted notebook and compare it with the master. Never raises for a bad submission (a broken
    master raises: that is the instructor's bug)."""
    try:
        path = Path(path)
    except TypeError:
        return Submission(path=Path("?"), fatal=f"No notebook was submitted ({type(path).__name__} given). {_RESUBMIT}")
    nb, fatal = _load(path, max_bytes)
    if fatal is not None:
        return Submission(path=path, fatal=fatal)
    master = load_master(master_path)
    cells, counts = _nbgrader_cells(nb)
    sub = Submission(path=path, cells=cells, order=_order(nb))
    sub.unknown_ids = [g for g in cells if g not in master]
    has_checksums = any(isinstance(c.get("metadata", {}).get("nbgrader"), Mapping)
                        and "checksum" in c["metadata"]["nbgrader"] for c in nb.cells)
    for grade_id, count in counts.items():
        if count > 1 and grade_id in master:
            sub._add(grade_id, f"The cell '{grade_id}' appears {count} times in your notebook (copied or split?); "
                               "the first one is graded and the copies run as ordinary cells, as in nbgrader.")
    renamed_hint = ""
    if sub.unknown_ids:
        renamed_hint = " Your notebook has cells with unknown ids: " + ", ".join(f"'{g}'" for g in sub.unknown_ids[:5]) + "."
    for grade_id, master_cell in master.items():
        master_meta = master_cell["metadata"]["nbgrader"]
        cell = cells.get(grade_id)
        if cell is None:
            sub._add(grade_id, f"The cell '{grade_id}' is missing from your notebook: it was deleted or its nbgrader "
                               f"id was renamed.{renamed_hint} Copy your work into a fresh copy of the released notebook.")
            continue
        if cell.get("cell_type") != master_cell["cell_type"]:
            sub.unusable.add(grade_id)
            sub._add(grade_id, f"The cell '{grade_id}' should be a {master_cell['cell_type']} cell, but in your "
                               f"notebook it is a {cell.get('cell_type')} cell.")
            continue
        meta = cell["metadata"]["nbgrader"]
        changes = _metadata_changes(meta, master_meta)
        if changes:
            sub._add(grade_id, f"The nbgrader metadata of the cell '{grade_id}' was changed ({'; '.join(changes)}).")
        if not _flags(master_meta)[2]:
            continue  # an answer cell: the student's to edit
        submitted = normalise(cell.get("source", ""))
        full = normalise(_text(master_cell))
        released = normalise(strip_hidden_tests(_text(master_cell)))
        if submitted not in (full, released):
            sub._add(grade_id, f"The read-only cell '{grade_id}' was edited ({_first_difference(submitted, released)}); "
                               "the grader ran the original cell instead, as nbgrader does.")
        if has_checksums and meta.get("checksum") != release_checksum(master_cell):
            sub._add(grade_id, f"The nbgrader checksum of the read-only cell '{grade_id}' was altered or removed.")
    return sub
