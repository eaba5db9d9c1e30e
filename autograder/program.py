"""The worker's program for one submission: its code cells in notebook order, as nbgrader would run them.

* Answer cells and any other code cell of the student's (scratch cells, the training cells) run as written.
* Read-only cells run as the master has them, as nbgrader restores them: ``setup_imports`` runs (the imports, from
  the grader's pristine helper package); the other read-only code cells only load data sets, which a worker never
  sees, and do not run (a cell that uses their names gets a NameError, as reported in its note).
* A read-only cell missing from the notebook is put back where the master has it, and one the student moved runs
  in its master place; copies of a cell run as ordinary cells (nbgrader strips the metadata of duplicates).
* Where a graded part's test cell is, the worker runs the part's visible tests (they gate the part, as in nbgrader)
  and then the part's probes. The program ends after the last graded part.

Nothing here runs code; ``execution.py`` sends the steps to a worker.
"""
from __future__ import annotations

import dataclasses

from . import parts as parts_module
from . import submission as sub
from .probes import PROBES

SETUP_CELL = "setup_imports"


@dataclasses.dataclass
class Program:
    steps: list = dataclasses.field(default_factory=list)   # the worker's steps, in order
    notes: list = dataclasses.field(default_factory=list)   # student-visible notes on how the notebook was run
    labels: dict = dataclasses.field(default_factory=dict)  # step id -> how to name it to a student
    gates: dict = dataclasses.field(default_factory=dict)   # part -> gate step id
    probes: dict = dataclasses.field(default_factory=dict)  # probe name -> probe step id
    answer_steps: dict = dataclasses.field(default_factory=dict)  # answer grade_id -> step id
    memory_bytes: int = 0                                    # a worker's memory limit, to name it to a student

    def step(self, step_id: str) -> dict | None:
        return next((s for s in self.steps if s["id"] == step_id), None)


def _kind(master_cells, grade_id):
    cell = master_cells.get(grade_id)
    return sub.kind_of(cell["metadata"]["nbgrader"]) if cell is not None else None


def _with_restored_cells(submission, master_cells, notes):
    """The notebook's cells, with every read-only code cell of the master that is missing (deleted, renamed, or
    turned into another cell type) put back after the master cell that precedes it."""
    cells = [dict(c) for c in submission.order]
    for c in cells:
        if c["grade_id"] in submission.unusable:
            c["grade_id"] = None
    present = {c["grade_id"] for c in cells if c["grade_id"]}
    master_ids = list(master_cells)
    for position, grade_id in enumerate(master_ids):
        cell = master_cells[grade_id]
        if grade_id in present or cell["cell_type"] != "code" or _kind(master_cells, grade_id) not in ("locked", "tests"):
            continue
        before = set(master_ids[:position])
        at = 0
        for i, c in enumerate(cells):
            if c["grade_id"] in before:
                at = i + 1
        cells.insert(at, {"type": "code", "grade_id": grade_id, "source": "", "restored": True})
        present.add(grade_id)
        notes.append(f"The read-only cell '{grade_id}' is missing from your notebook; the grader put the original "
                     "back in its place and graded the notebook normally.")
    return cells


def _longest_ordered(ranks):
    """Indices (into ``ranks``) of a longest strictly increasing subsequence: the cells that stayed in order."""
    tails, tail_at, parent = [], [], [None] * len(ranks)
    for i, r in enumerate(ranks):
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if tails[mid] < r else (lo, mid)
        parent[i] = tail_at[lo - 1] if lo else None
        tails[lo:lo + 1], tail_at[lo:lo + 1] = [r], [i]
    kept, i = set(), tail_at[-1] if tail_at else None
    while i is not None:
        kept.add(i)
        i = parent[i]
    return kept


def _locked_cells_in_place(cells, master_cells, notes):
    """``cells`` with every read-only code cell that the student moved put back after the last code cell that
    precedes it in the master, and the student told in one line per cell. The read-only cells that moved are those
    outside the longest run of read-only cells still in the master's order. Answer cells are the student's to place:
    a moved answer cell runs where it is, as nbgrader would run it, and is not blamed on the read-only cells."""
    rank = {grade_id: i for i, grade_id in enumerate(master_cells) if master_cells[grade_id]["cell_type"] == "code"}
    locked = {g for g in rank if _kind(master_cells, g) in ("locked", "tests")}
    seen, positions = set(), []
    for i, c in enumerate(cells):
        if c.get("type") == "code" and c.get("grade_id") in locked and c["grade_id"] not in seen:
            seen.add(c["grade_id"])
            positions.append(i)
    kept = _longest_ordered([rank[cells[i]["grade_id"]] for i in positions])
    moved = [cells[i] for n, i in enumerate(positions) if n not in kept]
    for cell in sorted(moved, key=lambda c: rank[c["grade_id"]]):
        cells.remove(cell)
        own = rank[cell["grade_id"]]
        target = 1 + max((i for i, c in enumerate(cells) if c.get("type") == "code" and rank.get(c.get("grade_id"), own) < own),
                         default=-1)
        cells.insert(target, cell)
        notes.append(f"The read-only cell '{cell['grade_id']}' was moved in your notebook; the grader ran it in its "
                     "original place and graded the notebook normally.")
    return cells


def build_program(submission, master_cells, part_names, secrets, tier, config, available_probes=None) -> Program:
    """The steps for grading ``part_names`` of ``submission``. ``available_probes``: probe names that can run on
    this grader (a probe needing pretrained weights is left out when they are absent); None = all."""
    program = Program(memory_bytes=config.memory_bytes)
    graded = [parts_module.part(name) for name in part_names]
    last_test_cell = max((list(master_cells).index(p.test_cell) for p in graded), default=-1)
    for grade_id, problem in submission.problems.items():
        kind = _kind(master_cells, grade_id)
        if kind in ("locked", "tests") and "missing" in problem:
            continue  # restored below, with its own note
        if kind == "answer" and "missing" in problem:
            program.notes.append(f"The answer cell '{grade_id}' is missing from your notebook (deleted, or its "
                                 "nbgrader id changed): the code your notebook has was run and graded as it "
                                 "stands; put the cell back, or restore its id, so that nbgrader finds your answer.")
            continue
        program.notes.append(problem)
    cells = _locked_cells_in_place(_with_restored_cells(submission, master_cells, program.notes), master_cells,
                                   program.notes)
    number = 0
    for cell in cells:
        if cell.get("type") != "code":
            continue
        number += 1
        grade_id = cell.get("grade_id")
        kind = _kind(master_cells, grade_id)
        label = f"cell '{grade_id}'" if grade_id else f"code cell {number}"
        step_id = f"cell:{number}"
        if kind == "locked":
            if grade_id == SETUP_CELL:
                program.steps.append({"id": step_id, "kind": "cell", "name": grade_id,
                                      "source": sub.setup_code(master_cells), "limit": config.cell_seconds})
                program.labels[step_id] = label
            continue
        if kind == "tests":
            part = parts_module.BY_TEST_CELL.get(grade_id)
            visible = sub.strip_hidden_tests(sub._text(master_cells[grade_id]))
            if part is not None and part.name in part_names:
                gate_id = f"gate:{part.name}"
                program.steps.append({"id": gate_id, "kind": "gate", "part": part.name, "source": visible,
                                      "limit": config.cell_seconds})
                program.gates[part.name] = gate_id
                program.labels[gate_id] = f"the visible tests of '{grade_id}'"
                for probe_name in part.probes:
                    if available_probes is not None and probe_name not in available_probes:
                        continue
                    probe = PROBES[probe_name]
                    probe_id = f"probe:{probe_name}"
                    program.steps.append({"id": probe_id, "kind": "probe", "probe": probe.kind,
                                          "args": probe.args(secrets, tier), "stage_limit": probe.stage_seconds,
                                          "limit": probe.step_seconds})
                    program.probes[probe_name] = probe_id
            elif visible.strip():
                program.steps.append({"id": step_id, "kind": "cell", "name": grade_id, "source": visible,
                                      "limit": config.cell_seconds})
                program.labels[step_id] = label
            if grade_id in master_cells and list(master_cells).index(grade_id) >= last_test_cell:
                break
            continue
        if kind == "manual":
            continue
        program.steps.append({"id": step_id, "kind": "cell", "name": grade_id or f"cell {number}",
                              "source": cell.get("source", ""), "limit": config.cell_seconds})
        program.labels[step_id] = label
        if kind == "answer":
            program.answer_steps[grade_id] = step_id
    return program
