"""Instructor commands: regenerate the student release and execute notebooks headless."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a2-cnn"
SOURCE_DIR = REPO_ROOT / "source" / ASSIGNMENT
RELEASE_DIR = REPO_ROOT / "release" / ASSIGNMENT
SOLUTIONS_DIR = REPO_ROOT / "solutions"
MASTER_NOTEBOOK = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
