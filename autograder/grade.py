"""(Parent side.) Grade one submitted notebook.

1. Read the notebook and the master (``submission.py``); lay out the worker's program: the notebook's cells in
   order, each graded part's visible tests and probes where its test cell is (``program.py``), with inputs drawn
   from secret seeds of this run (``probes.py``).
2. Run it in sandboxed workers (``execution.py``): they return data only.
3. Decide every check here, from that data re-derived by the parent (``checks/``), with points from the registry.

A part whose visible tests fail scores 0, as in nbgrader. A fault of the grader itself (never the student's) makes
the part "not run", to be regraded; the other parts are still graded.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from . import feedback
from . import submission as sub
from .checks.evidence import Evidence, limit_hint, stop_words
from .checks.learning import training_helper, training_in_background
from .checks.registry import checks_for
from .config import GraderConfig
from .execution import Weights, execute, find_weights, tmp_inputs_dir
from .learning import (DataUnavailableError, finetune_data, finetune_unavailable, torch_threads,
                       write_finetune_inputs)
from .parts import part as part_named
from .probes import PROBES, Secrets
from .program import build_program
from .report import CheckResult, GradeReport, PartReport
from .tiers import TIERS, TierError, select_tier
from .worker.finetune_learning_probe import STAND_IN

GRADER_FAULT = "not graded because of a grader error (not your fault); the instructor will regrade it"
LOG_CHARS = 16 * 1024


def available_probes(tier=None, weights=None) -> set:
    """Probes this grader can run: Part C's training probe needs the tier's pretrained weights, mounted for the
    workers, and the official masks (for the parent's measurement)."""
    names = set(PROBES)
    ready = tier is not None and (tier.finetune_arch == STAND_IN or (weights is not None and weights.host))
    if not ready or finetune_unavailable(tier):
        names.discard("finetune_learning")
    return names


@contextlib.contextmanager
def finetune_inputs(program, tier):
    """The folder of input files the workers see (``/a2/in``): Part C's training pictures when the program runs its
    training probe, else None. Removed afterwards."""
    if "finetune_learning" not in program.probes:
        yield None
        return
    folder = tmp_inputs_dir()
    try:
        images, masks = finetune_data(tier)
        if len(images) != tier.finetune_images:  # the probe's batches index that many pictures
            raise DataUnavailableError(f"{len(images)} official training pictures, {tier.finetune_images} needed")
        write_finetune_inputs(folder, images, masks)
        for name in os.listdir(folder):
            os.chmod(os.path.join(folder, name), 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fill(part_report: PartReport, status: str, message: str) -> None:
    part_report.results = [CheckResult(c.name, c.part, c.title, 0.0, c.points, status, feedback.message(message))
                           for c in checks_for(part_report.part)]


def _cell_notes(program, execution) -> list:
    """One student-visible note per notebook cell that failed in the worker."""
    notes = []
    for step in program.steps:
        if step["kind"] != "cell" or step.get("name") == "setup_imports":
            continue
        result = execution.result(step["id"])
        label = program.labels.get(step["id"], "a cell")
        if result.outcome == "done":
            status = result.facts.get("status")
            if status == "error":
                error = result.facts.get("error")
                notes.append(f"{label} raised {feedback.error_excerpt(error)}{limit_hint(error, execution.limits)}; "
                             "the grader went on with the next cells, as a notebook run with errors allowed would")
            elif status == "timeout":
                notes.append(f"{label} did not finish within {step['limit']:g} s; the grader went on without it, "
                             "as if the cell had been skipped")
        elif result.outcome in ("timeout", "memory", "crashed", "processes", "file size"):
            notes.append(f"{label} {stop_words(result.outcome, step, program, execution.limits)}; the grader "
                         "restarted the notebook without it")
        elif result.outcome == "not reached":
            notes.append(f"{label} was not run: earlier cells stopped the notebook too often")
    return notes


def _gate_failure(program, execution, part: str) -> str | None:
    result = execution.result(program.gates.get(part))
    if result.outcome != "done":
        step = program.step(program.gates.get(part, ""))
        return f"the visible tests of this part {stop_words(result.outcome, step, program, execution.limits)}"
    status = result.facts.get("status")
    if status == "ok":
        return None
    if status == "timeout":
        return "the visible tests of this part did not finish within their time limit"
    return f"the visible tests of this part fail: {feedback.error_excerpt(result.facts.get('error'))}"


def _name_hint(evidence: Evidence, part: str) -> str:
    """When the part's class is missing but a name that looks like it is defined (``СNN``, ``Cnn``), say so."""
    from .checks.colouriser import CLASS, PROBE

    if part not in PROBE:
        return ""
    try:
        configs = evidence.configs(PROBE[part])
    except Exception:  # noqa: BLE001 - a hint only; the verdict does not depend on it
        return ""
    error = (configs[0].error or {}) if configs else {}
    if error.get("stage") != "lookup" or error.get("type") != "missing" or not isinstance(error.get("names"), list):
        return ""
    hint = feedback.lookalike(CLASS[part], error["names"])
    return f" (no class {CLASS[part]} is defined: {hint})" if hint else ""


def grade_notebook(path, config: GraderConfig | None = None, parts=None, on_part=None,
                   secrets: Secrets | None = None) -> GradeReport:
    """Grade the notebook at ``path``; never raises for anything the submission contains."""
    config = config or GraderConfig()
    started = time.perf_counter()
    part_names = tuple(parts or config.parts)
    for name in part_names:
        part_named(name)  # ValueError for an unknown part: a usage error, before any work
    report = GradeReport(submission=str(path), parts=[PartReport(name) for name in part_names])
    master = sub.load_master()
    submission = sub.read_submission(Path(path))
    if submission.fatal:
        report.fatal = feedback.message(submission.fatal)
        for part_report in report.parts:
            _fill(part_report, "failed", f"not graded: {submission.fatal}")
        report.seconds = time.perf_counter() - started
        return report
    secrets = secrets or Secrets()
    tier_problem = ""
    try:
        tier = select_tier(config.tier)
    except TierError as exc:
        tier, tier_problem = TIERS["cpu"], str(exc)
    weights = (Weights(None, log="pretrained weights: none needed by the stand-in model") if tier.finetune_arch == STAND_IN
               else find_weights(tier.finetune_arch))
    report.log.append(weights.log)
    program = build_program(submission, master, part_names, secrets, tier, config, available_probes(tier, weights))
    report.notes += [feedback.note(n) for n in program.notes]
    if on_part:
        on_part("notebook")
    # a second grader process for the training checks, started now: its imports overlap the worker's run
    processes = config.training_processes if "learning" in part_names and not tier_problem else 1
    with training_helper(processes) as helper:
        return _execute_and_decide(program, config, tier, tier_problem, weights, secrets, report, started, on_part,
                                   helper)


def _execute_and_decide(program, config, tier, tier_problem, weights, secrets, report, started, on_part, helper):
    """Run the program in workers, then decide every check of every part from what they returned."""
    try:
        with finetune_inputs(program, tier) as inputs:
            execution = execute(program.steps, config, inputs=inputs, weights=weights)
    except DataUnavailableError as exc:  # the mirror changed under the grader: Part C's check says not run
        report.log.append(f"Part C's training pictures could not be prepared: {exc}")
        program.probes.pop("finetune_learning", None)
        program.steps = [s for s in program.steps if s.get("probe") != "finetune_learning"]
        execution = execute(program.steps, config, weights=weights)
    report.log += execution.log
    for stream in ("stdout", "stderr"):
        text = getattr(execution, stream).strip()
        if text:
            report.log.append(f"{stream} of the student's code:\n{feedback.bound(text, LOG_CHARS)}")
    if execution.internal:
        for part_report in report.parts:
            part_report.grader_error = execution.internal
            _fill(part_report, "not run", GRADER_FAULT)
        report.seconds = time.perf_counter() - started
        return report
    report.notes += [feedback.note(n) for n in _cell_notes(program, execution)]
    evidence = Evidence(program, execution, secrets, tier)
    # Re-derive with the workers' number of threads: the same kernels sum in the same order, so recomputed tensors
    # match what an honest worker reported, even where BatchNorm amplifies float noise.
    with torch_threads(config.threads):
        for part_report in report.parts:
            if on_part:
                on_part(part_report.part)
            gate = _gate_failure(program, execution, part_report.part)
            if gate:
                gate += _name_hint(evidence, part_report.part)
            if gate:
                _fill(part_report, "failed", f"{gate}, so it scores 0 (as in nbgrader)")
                continue
            # the UNet trains in the second grader process while the CNN trains here (checks/learning.py)
            try:
                with training_in_background(evidence, helper if part_report.part == "learning" else None):
                    for check in checks_for(part_report.part):
                        if part_report.part == "learning" and tier_problem and check.name != "finetune_learns":
                            outcome_status, message = "not run", f"not run: grader configuration: {tier_problem}"
                        else:
                            outcome = check.decide(evidence)
                            outcome_status, message = outcome.status, outcome.message
                        ok = outcome_status == "passed"
                        part_report.results.append(CheckResult(check.name, check.part, check.title,
                                                               check.points if ok else 0.0, check.points,
                                                               outcome_status, feedback.message(message)))
            except Exception as exc:  # noqa: BLE001 - a grader bug: this part is regraded, the others stand
                part_report.grader_error = f"{type(exc).__name__}: {exc}"
                report.log.append(f"grader error in part {part_report.part}: {part_report.grader_error}")
                _fill(part_report, "not run", GRADER_FAULT)
    report.seconds = time.perf_counter() - started
    return report
