"""(Parent side.) Re-derive facts from what a worker reported, with the grader's own, untouched code.

A worker's report is data the student's code may have forged. Everything a check relies on is re-derived here from
inputs the parent chose (secret seeds) and recomputation with the parent's own layer classes; what cannot be
re-derived is reported as *unverified* and earns nothing.
"""
from autograder.reference import ensure_helper_on_path

ensure_helper_on_path()  # the parent's a2cnn is the pristine one in source/a2-cnn
