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
