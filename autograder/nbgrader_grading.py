"""``nbgrader autograde`` with the isolated grader: a preprocessor that takes the place of nbgrader's ``Execute``.

nbgrader would run the submission in a kernel and let the master's hidden test cells decide the points next to the
student's code. Instead, :class:`IsolatedGrading` hands the (sanitized) notebook to :func:`autograder.grade.grade_notebook`,
which runs it in sandboxed workers and decides every check in the grader's own process, and writes each autograded
test cell's outputs: the checks' feedback on stdout and the part's points as the cell's result, which nbgrader's
``SaveAutoGrades`` records as partial credit. Other cells keep no outputs. The course's ``nbgrader_config.py``
installs it by name (so that a grader that cannot be imported fails ``nbgrader autograde`` instead of leaving
nbgrader's own ``Execute`` in place, whose hidden tests score 0), and its ``A2Grader`` section sets the grader's
settings exactly as for the command line (``settings.py``)::

    c.Autograde.autograde_preprocessors = [..., "autograder.nbgrader_grading.IsolatedGrading", ...]

The notebook it receives is nbgrader's sanitized copy: ``OverwriteCells`` has already restored every read-only cell
from the gradebook and set its ``checksum`` to the gradebook's, which nbgrader computes on the master cell *with*
its hidden tests. The grader compares checksums with the released cells (hidden tests removed), so those checksums
are dropped from the copy it grades; otherwise every submission would be told its test cells' checksums were altered.
"""
from __future__ import annotations

import os
import tempfile
from copy import deepcopy

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from .config import GraderConfig
from .parts import BY_TEST_CELL
from .settings import SECTION, from_section

_MARK = {"passed": "PASS", "failed": "FAIL", "not run": "NOT RUN"}


def part_feedback(report, part: str) -> str:
    lines = [f"[{_MARK[r.status]}] {r.score:g}/{r.max_score:g} {r.title}: {r.message}"
             for r in report.results if r.part == part]
    if report.fatal:
        lines.insert(0, f"The notebook could not be graded: {report.fatal}")
    lines += [f"Note: {note}" for note in report.notes] if part == "cnn" else []
    return "\n".join(lines)


class IsolatedGrading(NbGraderPreprocessor):
    """Grade the notebook in sandboxed workers and write the autograded cells' feedback and points."""

    def grader_config(self) -> GraderConfig:
        """The grader's settings from the ``A2Grader`` section of nbgrader's configuration (the course's
        ``nbgrader_config.py``), checked as the command line checks them: a wrong value fails the autograde."""
        section = self.config[SECTION] if SECTION in self.config else {}
        return from_section(section, "nbgrader configuration")

    def preprocess(self, nb, resources):
        from .grade import grade_notebook

        with tempfile.TemporaryDirectory(prefix="a2-nbgrader-") as folder:
            path = os.path.join(folder, "submission.ipynb")
            nbformat.write(_without_checksums(nb), path)
            report = grade_notebook(path, self.grader_config())
        for line in report.log:
            self.log.debug("isolated grader: %s", line[:2000])
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            part = BY_TEST_CELL.get(grade_id)
            if part is None:
                continue
            # the autograded copy is what formgrader and generate_feedback show: the master's hidden tests, which
            # OverwriteCells restored, stay out of it (nbgrader itself would reveal them in the feedback)
            cell.source = _without_hidden_tests(cell.source)
            earned = report.part_score(part.name)
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text=part_feedback(report, part.name) + "\n"),
                nbformat.v4.new_output("execute_result", data={"text/plain": f"{earned:g}"}, execution_count=None),
            ]
        return nb, resources


def _without_hidden_tests(source: str) -> str:
    """``source`` without its ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` blocks."""
    kept, hidden = [], False
    for line in source.splitlines(keepends=True):
        marker = line.strip().upper()
        if marker.startswith("### BEGIN HIDDEN TESTS"):
            hidden = True
        elif marker.startswith("### END HIDDEN TESTS"):
            hidden = False
        elif not hidden:
            kept.append(line)
    return "".join(kept).rstrip("\n")


def _without_checksums(nb):
    """A copy of the sanitized notebook without nbgrader's checksums (nbgrader has checked them already)."""
    copy = deepcopy(nb)
    for cell in copy.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict):
            meta.pop("checksum", None)
    return copy


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with ``Execute`` replaced by :class:`IsolatedGrading`."""
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import Execute

    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    return [IsolatedGrading if pp is Execute else pp for pp in defaults]
