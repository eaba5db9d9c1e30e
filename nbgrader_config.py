"""nbgrader configuration for the a2-cnn course. The course root is the folder of this file."""
import os

c = get_config()  # noqa: F821  (injected by nbgrader/traitlets)

c.CourseDirectory.course_id = "a2-cnn"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
# Never ship caches or editor litter with the helper package.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache", ".hypothesis"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

# Autograding never trains for long (those cells check NBGRADER_EXECUTION), so ten minutes per cell is generous
# and still stops a student's runaway loop.
c.ExecutePreprocessor.timeout = 600
c.ExecutePreprocessor.interrupt_on_timeout = True

# Autograding runs the isolated grader (autograder/nbgrader_grading.py) instead of executing the submission in a
# kernel: the points of every autograded cell are decided outside the student's code.
#
# The grader is the `autograder` package beside this file when the course folder is this repository; a course kept
# elsewhere uses the one installed in nbgrader's Python (or on PYTHONPATH). It is named, not imported, here: nbgrader
# only logs an exception raised while loading this file and then autogrades with its defaults, whose Execute runs
# the master's hidden tests, which give 0 points on purpose. Named, a missing or outdated grader makes `nbgrader
# autograde` fail for the submission (no grades recorded) instead of recording 0 for everyone.
import sys  # noqa: E402

from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.preprocessors import Execute  # noqa: E402

if os.path.isfile(os.path.join(c.CourseDirectory.root, "autograder", "nbgrader_grading.py")):
    sys.path.insert(0, c.CourseDirectory.root)
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_grading.IsolatedGrading" if pp is Execute else f"{pp.__module__}.{pp.__name__}"
    for pp in Autograde.class_traits()["autograde_preprocessors"].default()
]

# The isolated grader's settings, for `python -m autograder` (which reads this file beside it) and `nbgrader autograde`
# (`python -m autograder config` lists every setting, its value and where that came from; flags override these):
# c.A2Grader.tier = "cpu"
# c.A2Grader.cell_seconds = 90
# c.A2Grader.check_visibility = {"cnn_learns": "after_due_date"}
