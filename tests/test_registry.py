"""The grader's points agree with the notebook's: each part's checks sum to its test cell's points."""
import nbformat

from autograder.checks.registry import CHECKS, PART_POINTS, checks_for
from autograder.submission import MASTER, PART_TEST_CELLS


def test_part_points_equal_the_test_cells_points():
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(MASTER, as_version=4).cells if "nbgrader" in c.metadata}
    for part, test_cell in PART_TEST_CELLS.items():
        assert cells[test_cell].metadata["nbgrader"]["points"] == PART_POINTS[part] == sum(c.points for c in checks_for(part))
    assert set(PART_TEST_CELLS) == set(PART_POINTS)


def test_check_names_are_unique_and_every_check_has_a_title():
    names = [check.name for check in CHECKS]
    assert len(names) == len(set(names))
    assert all(check.title and check.points > 0 for check in CHECKS)
