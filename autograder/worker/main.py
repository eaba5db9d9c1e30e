"""Worker entry point (``autograder.worker.main:run``): run a program of steps in notebook order and stream, for
each step, a ``start`` event and a ``done`` event carrying its facts (JSON) and tensors (safetensors).

Steps, in the order the parent lists them:

* ``cell``: a code cell of the notebook, run as written in the notebook's namespace, under a time limit;
* ``gate``: the visible tests of a part (the master's code), run where the notebook has its test cell;
* ``probe``: a probe of the student's definitions at that point (``colouriser_probe``, ``finetune_probe``,
  ``finetune_learning_probe``).

Steps the parent lists in ``skip`` are left out (after a restart, those already done and the one that stopped the
worker). The worker decides nothing; the parent judges every step from what it reports.
"""
import builtins
import os
import sys
import time

import safetensors.torch
import torch

import a2cnn.layers  # the pristine helper package, imported before any student code can replace it

from . import colouriser_probe, finetune_learning_probe, finetune_probe
from .cells import run_code

PROBES = {"colouriser": colouriser_probe.probe, "finetune": finetune_probe.probe,
          "finetune_learning": finetune_learning_probe.probe}
_LAYERS = a2cnn.layers
_monotonic, _save = time.monotonic, safetensors.torch.save


def notebook_namespace() -> dict:
    return {"__name__": "__main__", "__builtins__": builtins}


def run_step(step: dict, ns: dict, emit) -> tuple[dict, dict]:
    kind = step["kind"]
    if kind == "cell":
        return run_code(ns, step["source"], f"<cell {step['name']}>", step["limit"]), {}
    if kind == "gate":
        return run_code(ns, step["source"], "<visible tests>", step["limit"]), {}
    if kind == "probe":
        def progress(info):
            emit({"event": "progress", "step": step["id"], **info})
        return PROBES[step["probe"]](ns, step["args"], progress, step["stage_limit"], _LAYERS)
    raise ValueError(f"unknown step kind {kind!r}")


def run(payload: dict, emit) -> dict:
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # as under nbgrader: the notebook's long runs skip themselves
    ns = notebook_namespace()
    skip = set(payload.get("skip", ()))
    done = 0
    for step in payload["steps"]:
        if step["id"] in skip:
            continue
        emit({"event": "start", "step": step["id"]})
        started = _monotonic()
        facts, tensors = run_step(step, ns, emit)
        blob = _save(tensors) if tensors else b""
        emit({"event": "done", "step": step["id"], "seconds": round(_monotonic() - started, 3), "facts": facts}, blob)
        done += 1
        sys.stdout.flush()
    return {"steps": done}
