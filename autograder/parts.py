"""The autograded parts of the assignment, each declared once.

A part is one test cell of the master notebook: its points are that cell's points (the checks of the part, in
``checks/registry.py``, add up to them), it is graded where the notebook has that cell, after the cells before it
ran, and its visible tests gate it as in nbgrader. ``probes`` are what the worker collects there (``probes.py``).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    test_cell: str        # grade_id of its test cell
    answer_cells: tuple   # the answer cells whose code it grades
    probes: tuple         # probe names (probes.py) run where the test cell is
    title: str


PARTS = (
    Part("cnn", "test_cnn", ("cnn_model",), ("cnn_structure",), "Question A1: the CNN"),
    Part("unet", "test_unet", ("unet_model",), ("unet_structure",), "Question B1: the UNet"),
    Part("finetune", "test_finetune", ("finetune_train", "finetune_setup"), ("finetune_behaviour",),
         "Questions C1 and C2: fine-tuning set-up"),
    Part("learning", "test_learning", ("cnn_model", "unet_model", "finetune_train", "finetune_setup"),
         ("cnn_learning", "unet_learning", "finetune_learning"), "Training checks"),
)
BY_NAME = {part.name: part for part in PARTS}
NAMES = tuple(part.name for part in PARTS)
BY_TEST_CELL = {part.test_cell: part for part in PARTS}


def part(name: str) -> Part:
    if name not in BY_NAME:
        raise ValueError(f"unknown part {name!r}; parts are {', '.join(NAMES)}")
    return BY_NAME[name]
