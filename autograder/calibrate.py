"""Calibrate the training checks: train the reference over several seeds, write thresholds with their provenance.

    python -m autograder calibrate --tier cpu|gpu|auto [--seeds 0,1,2,3,4,5,6,7] [--out FILE] [--no-rerun] [--restart]

Resumable: the file is rewritten after each seed (``partial`` until 5 seeds are in); a rerun keeps the seeds already
measured with the same settings, data, reference and kind of device, and measures only the others.

For every seed the reference ``CNN`` and ``UNet`` (from the master notebook's solution cells) are measured exactly
as a submission is: the learning probe describes each model, the parent rebuilds it from that verified report
(:func:`autograder.in_process.learning_graphs`) and trains it with its own measuring code
(:func:`autograder.learning.measure_graph`); the final validation losses are recorded; Part C is measured too when the pretrained DeepLabV3 weights and the official
Oxford-17 masks are present, otherwise the reason is recorded and the fine-tuning check will report "not run".
The first seed is trained a second time to record whether a run is bit-for-bit reproducible.

Rule (``RULE``): threshold = max(reference losses) + max(3 x sample standard deviation, 2 % of the mean).
The worst reference run passes by construction; the margin covers seed-to-seed spread that the calibration
seeds did not happen to show, and small numerical differences between machines (the 2 % floor keeps a suspiciously
small measured spread from producing a razor-thin margin).

The result goes to ``autograder/calibration/<tier>.json`` (schema ``SCHEMA_VERSION``), committed with the code;
the checks read their thresholds only from there (:func:`load_thresholds`) and refuse a file whose recorded tier
settings differ from the current ones.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from . import learning
from .checks.base import Outcome
from .in_process import learning_graphs
from .reference import MASTER_NOTEBOOK, REFERENCE_CELLS, cell_sources, load_reference
from .tiers import TIER_CHOICES, TierError, select_tier

SCHEMA_VERSION = 1
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
CALIBRATION_ENV = "A2_GRADER_CALIBRATION_DIR"
RULE = "threshold = max(reference losses) + max(3 * sample std (ddof=1), 0.02 * mean)"
STD_FACTOR = 3.0
RELATIVE_FLOOR = 0.02
MODELS = ("cnn", "unet")
MIN_SEEDS = 5
# Tier settings that do not change what a graded run computes (so changing them does not invalidate a file).
_NOT_COMPARED = ("calibration_seeds",)


class CalibrationError(RuntimeError):
    """No usable calibration for a tier: file missing, unreadable, of another schema, or stale."""


# ---------------------------------------------------------------------------------------------- the rule
def threshold_from(losses):
    """Statistics of the reference losses and the threshold the rule gives."""
    losses = [float(v) for v in losses]
    if len(losses) < 2:
        raise ValueError("the rule needs at least two reference losses to measure their spread")
    mean = statistics.fmean(losses)
    std = statistics.stdev(losses)
    margin = max(STD_FACTOR * std, RELATIVE_FLOOR * mean)
    return {"n": len(losses), "mean": mean, "std": std, "min": min(losses), "max": max(losses),
            "spread": max(losses) - min(losses), "margin": margin, "threshold": max(losses) + margin}


# --------------------------------------------------------------------------------------------- provenance
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_record(device):
    device = torch.device(device)
    record = {
        "torch_device": str(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_model": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        record["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        record["load_average_at_start"] = None
    return record


def calibration_dir(directory=None):
    return Path(directory or os.environ.get(CALIBRATION_ENV) or CALIBRATION_DIR)


def calibration_path(tier, directory=None):
    return calibration_dir(directory) / f"{tier.name}.json"


# ---------------------------------------------------------------------------------------------- calibrate
def reference_fingerprint(notebook=MASTER_NOTEBOOK):
    """SHA-256 (16 hex digits) of the master's reference solution cells: seeds measured on another reference
    cannot be pooled with new ones."""
    sources = cell_sources(notebook, REFERENCE_CELLS)
    digest = hashlib.sha256()
    for grade_id, source in sources.items():
        digest.update(f"{grade_id}\0{source}\0".encode())
    return digest.hexdigest()[:16]


def _machine(device):
    """One line naming the machine a run was measured on (a resumed calibration may span several sessions)."""
    record = device_record(device)
    return f"{record['gpu_model'] or record['cpu_model']}, torch {record['torch']}"


def _resumable(path, tier, fingerprints, device, log):
    """The record at ``path`` when its seeds can be pooled with new ones (same tier settings, data, reference
    and kind of device); else None, with the reason logged. Never mixes measurements of different things."""
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log(f"[calibrate {tier.name}] starting over: {path} cannot be read ({exc})")
        return None
    reasons = []
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        reasons.append("another schema")
    else:
        recorded, current = dict(record.get("settings") or {}), tier.settings()
        for key in _NOT_COMPARED:
            recorded.pop(key, None)
            current.pop(key, None)
        if record.get("tier") != tier.name or recorded != current:
            reasons.append("other tier settings")
        for key, value in fingerprints.items():
            if record.get(key) != value:
                reasons.append(f"another {key.replace('_', ' ')}")
        if (record.get("device") or {}).get("torch_device", "").split(":")[0] != device.type:
            reasons.append("another kind of device")
    if reasons:
        log(f"[calibrate {tier.name}] starting over: {path} was measured with {', '.join(reasons)}")
        return None
    return record


def _runs_by_seed(record):
    """``{model: {seed: run}}`` of a previous record (empty when there is none)."""
    runs = {name: {} for name in (*MODELS, "finetune")}
    for name, model in ((record or {}).get("models") or {}).items():
        for run in model.get("runs") or []:
            runs.setdefault(name, {})[int(run["seed"])] = run
    return runs


def _write(path, record, log):
    """Write atomically: an interrupted calibration leaves the previous complete file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    log(f"[calibrate {record['tier']}] wrote {path} ({record['status']}, {len(record['seeds'])} seed(s))")


def calibrate(tier, seeds=None, device=None, out=None, log=print, rerun=True, min_seeds=MIN_SEEDS, data=None,
              resume=True):
    """Train the reference over ``seeds`` in ``tier``; write and return the calibration record.

    ``device`` must be the tier's device (default); ``out`` defaults to ``autograder/calibration/<tier>.json``
    (``None`` and ``False`` differ: ``out=False`` writes nothing). ``data``: a ColourData to draw the tier's subset
    from (default: all horses). Raises if a reference run fails: the reference must always be measurable.

    Resumable: the file is rewritten after every seed (status ``partial`` until ``min_seeds`` seeds are in, then
    ``calibrated``), and with ``resume`` a rerun keeps the seeds already measured under the same settings, data,
    reference and kind of device, and measures only the others.
    """
    seeds = [int(s) for s in (tier.calibration_seeds if seeds is None else seeds)]
    if len(set(seeds)) < min_seeds:
        raise ValueError(f"calibration needs at least {min_seeds} different seeds, got {seeds}")
    device = torch.device(device or tier.device)
    if device.type != torch.device(tier.device).type:
        raise TierError(f"tier {tier.name} grades on {tier.device}; calibrating it on {device} would give "
                        "thresholds for another machine")
    log = log or (lambda *_: None)
    started = datetime.datetime.now(datetime.timezone.utc)
    ref = load_reference()
    data = learning.tier_data(tier, data)
    fingerprints = {"data_fingerprint": learning.data_fingerprint(data), "reference_fingerprint": reference_fingerprint()}
    path = None if out is False else (Path(out) if out else calibration_path(tier))
    previous = _resumable(path, tier, fingerprints, device, log) if resume else None
    runs = _runs_by_seed(previous)
    finetune_reason = (((previous or {}).get("models") or {}).get("finetune") or {}).get("not_run")
    state = {"tier": tier, "min_seeds": min_seeds, "device": device, "data": data, "fingerprints": fingerprints,
             "started": (previous or {}).get("date") or started.isoformat(timespec="seconds")}
    # the reference is measured as a submission is graded: the parent trains the graph it rebuilt from the report
    graphs = learning_graphs(dict(ref), tier)
    labels = {"cnn": "reference CNN", "unet": "reference UNet"}
    machine = _machine(device)

    for seed in seeds:
        missing = [name for name in MODELS if seed not in runs[name]]
        if not missing and (finetune_reason or seed in runs["finetune"]):
            log(f"[calibrate {tier.name}] seed {seed}: already measured, kept")
            continue
        for name in missing:
            result = learning.measure_graph(graphs[name], tier, seed, data=data, device=device, label=labels[name])
            if isinstance(result, Outcome):
                raise RuntimeError(f"the reference {name} could not be measured (seed {seed}): {result.message}")
            runs[name][seed] = {**result, "machine": machine}
            log(f"[calibrate {tier.name}] seed {seed} {name}: val loss {result['val_loss']:.4f} "
                f"(train {result['train_loss']:.4f}, accuracy {100 * result['val_accuracy']:.1f}%) "
                f"in {result['seconds']:.1f} s")
        if not finetune_reason and seed not in runs["finetune"]:
            result = learning.measure_finetune(dict(ref), tier, seed, device=device)
            if isinstance(result, Outcome):
                if result.status != "not run":
                    raise RuntimeError(f"the reference fine-tuning failed (seed {seed}): {result.message}")
                finetune_reason = result.message
                runs["finetune"] = {}
                log(f"[calibrate {tier.name}] fine-tuning {result.message}")
            else:
                runs["finetune"][seed] = {**result, "machine": machine}
                log(f"[calibrate {tier.name}] seed {seed} finetune: loss {result['initial_loss']:.4f} -> "
                    f"{result['loss']:.4f} in {result['seconds']:.1f} s")
        record = _record(state, runs, finetune_reason, (previous or {}).get("determinism"))
        if path is not None:
            _write(path, record, log)

    determinism = (previous or {}).get("determinism")
    done = _seeds_done(runs)
    if rerun and done and not (determinism and determinism.get("seed") in done):
        first_seed = done[0]
        determinism = {"seed": first_seed, "runs": {}}
        for name in MODELS:
            again = learning.measure_graph(graphs[name], tier, first_seed, data=data, device=device, label=labels[name])
            first = runs[name][first_seed]
            keys = ("val_loss", "train_loss", "val_accuracy", "val_loss_per_epoch")
            determinism["runs"][name] = {"first_val_loss": first["val_loss"], "rerun_val_loss": again["val_loss"],
                                         "bit_identical": all(first[k] == again[k] for k in keys)}
        determinism["bit_identical"] = all(r["bit_identical"] for r in determinism["runs"].values())
        log(f"[calibrate {tier.name}] rerun of seed {first_seed} bit-identical: {determinism['bit_identical']}")
    record = _record(state, runs, finetune_reason, determinism)
    if path is not None:
        _write(path, record, log)
    return record


def _seeds_done(runs):
    """Seeds with every colouriser measured, in the order they were measured."""
    return [seed for seed in runs[MODELS[0]] if all(seed in runs[name] for name in MODELS)]


def _record(state, runs, finetune_reason, determinism):
    """The calibration record of the seeds measured so far: ``calibrated`` from ``min_seeds`` on, else ``partial``
    (thresholds absent, so a partial file never grades)."""
    tier, done = state["tier"], _seeds_done(runs)
    complete = len(done) >= state["min_seeds"]
    models = {}
    for name in MODELS:
        model_runs = [runs[name][seed] for seed in done]
        stats = threshold_from([r["val_loss"] for r in model_runs]) if complete else {"threshold": None}
        models[name] = {"compared": "val_loss", "runs": model_runs, **stats,
                        "mean_seconds": statistics.fmean(r["seconds"] for r in model_runs) if model_runs else None}
    finetune_runs = [runs["finetune"][seed] for seed in done if seed in runs["finetune"]]
    if finetune_runs and not finetune_reason and len(finetune_runs) == len(done):
        stats = threshold_from([r["loss"] for r in finetune_runs]) if complete else {"threshold": None}
        models["finetune"] = {"compared": "loss", "runs": finetune_runs, **stats,
                              "mean_seconds": statistics.fmean(r["seconds"] for r in finetune_runs)}
    else:
        models["finetune"] = {"compared": "loss", "runs": [], "threshold": None, "not_run": finetune_reason}
    per_submission = (sum(models[name]["mean_seconds"] for name in MODELS) + (models["finetune"].get("mean_seconds") or 0.0)
                      if done else None)
    return {
        "schema_version": SCHEMA_VERSION,
        "tier": tier.name,
        "status": "calibrated" if complete else "partial",
        "seeds_needed": state["min_seeds"],
        "settings": tier.settings(),
        "seeds": done,
        "date": state["started"],
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_record(state["device"]),
        "reference": f"solution cells cnn_model, unet_model, finetune_train, finetune_setup of {MASTER_NOTEBOOK.name}",
        "data": learning.describe_data(state["data"]),
        **state["fingerprints"],
        "measurement": ("colourisers: the model the grader rebuilds from the learning probe's verified report "
                        "(GraphModel), trained by the grader; mean per-pixel cross-entropy on the validation subset "
                        "after the last epoch (a2cnn.training.train_colourizer, deterministic=True, "
                        f"{tier.threads or 'default'} torch thread(s)); fine-tuning: grader-measured loss on the "
                        "training pictures after the student's train()"),
        "rule": RULE,
        "models": models,
        "thresholds": {name: models[name]["threshold"] for name in (*MODELS, "finetune")},
        "determinism": determinism,
        "timing": {"mean_training_seconds_per_submission": None if per_submission is None else round(per_submission, 2),
                   "time_budget_s": tier.time_budget_s,
                   "within_budget": None if per_submission is None else per_submission <= tier.time_budget_s},
    }


# ------------------------------------------------------------------------------------------------- verify
def verify(tier, seeds=None, device=None, log=print, directory=None, data=None):
    """Train the reference here with ``seeds`` (default: the tier's grade seed) and check that each result falls
    inside the committed calibration's band: ``[min - margin, threshold]`` of the recorded losses. A machine whose
    reference lands outside would grade with thresholds that do not describe it: recalibrate there first.

    Returns ``{"ok": bool, "runs": [{"model", "seed", "val_loss", "low", "high", "inside"}]}``."""
    record = load_calibration(tier, directory)
    seeds = [int(s) for s in (seeds or [tier.grade_seed])]
    device = torch.device(device or tier.device)
    log = log or (lambda *_: None)
    data = learning.tier_data(tier, data)
    graphs = learning_graphs(dict(load_reference()), tier)
    runs = []
    for name in MODELS:
        model = record["models"][name]
        low, high = model["min"] - model["margin"], model["threshold"]
        for seed in seeds:
            result = learning.measure_graph(graphs[name], tier, seed, data=data, device=device, label=f"reference {name}")
            if isinstance(result, Outcome):
                raise RuntimeError(f"the reference {name} could not be measured (seed {seed}): {result.message}")
            inside = low <= result["val_loss"] <= high
            runs.append({"model": name, "seed": seed, "val_loss": result["val_loss"], "low": low, "high": high,
                         "inside": inside})
            log(f"[verify {tier.name}] seed {seed} {name}: val loss {result['val_loss']:.4f}, recorded band "
                f"[{low:.4f}, {high:.4f}]: {'inside' if inside else 'OUTSIDE'}")
    return {"ok": all(run["inside"] for run in runs), "runs": runs}


# ------------------------------------------------------------------------------------------------ reading
def load_calibration(tier, directory=None):
    """The calibration record of ``tier``; CalibrationError when missing, unreadable, foreign or stale."""
    path = calibration_path(tier, directory)
    hint = f"run `python -m autograder calibrate --tier {tier.name}` on a {tier.device} machine and commit the file"
    if not path.is_file():
        raise CalibrationError(f"no calibration for tier {tier.name}: {path} is missing; {hint}")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"calibration {path} cannot be read ({exc}); {hint}") from exc
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION:
        raise CalibrationError(f"calibration {path} has schema {record.get('schema_version') if isinstance(record, dict) else '?'}, "
                               f"this grader reads schema {SCHEMA_VERSION}; {hint}")
    if record.get("tier") != tier.name:
        raise CalibrationError(f"calibration {path} is for tier {record.get('tier')!r}, not {tier.name!r}")
    if record.get("status") != "calibrated":
        raise CalibrationError(f"calibration {path} is {record.get('status', 'incomplete')}: "
                               f"{len(record.get('seeds') or [])} of the {record.get('seeds_needed', MIN_SEEDS)} seeds "
                               f"needed are measured; rerun `python -m autograder calibrate --tier {tier.name}` "
                               "to measure the rest (the seeds already there are kept)")
    recorded, current = dict(record.get("settings") or {}), tier.settings()
    for key in _NOT_COMPARED:
        recorded.pop(key, None)
        current.pop(key, None)
    changed = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    if changed:
        detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise CalibrationError(f"calibration {path} is stale: tier {tier.name} settings changed since ({detail}); {hint}")
    return record


def load_thresholds(tier, directory=None):
    """``{"cnn", "unet", "finetune" (None when not calibrated), "finetune_reason", "data", "data_fingerprint",
    "provenance"}`` of ``tier``."""
    record = load_calibration(tier, directory)
    thresholds = record.get("thresholds") or {}
    values = {}
    for name in (*MODELS, "finetune"):
        value = thresholds.get(name)
        if value is None and name == "finetune":
            values[name] = None
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CalibrationError(f"calibration of tier {tier.name} has no valid {name} threshold ({value!r})")
        values[name] = float(value)
    device = record.get("device") or {}
    where = device.get("gpu_model") or device.get("cpu_model") or device.get("torch_device", "?")
    values["data"] = record.get("data", "")
    values["data_fingerprint"] = record.get("data_fingerprint")
    values["finetune_reason"] = (record.get("models", {}).get("finetune", {}) or {}).get("not_run") or ""
    values["provenance"] = (f"calibrated {str(record.get('date', '?'))[:10]} on {where}, torch {device.get('torch', '?')}, "
                            f"{len(record.get('seeds') or [])} seeds")
    return values


# ---------------------------------------------------------------------------------------------------- CLI
def summary(record):
    lines = [f"tier {record['tier']} on {record['device']['gpu_model'] or record['device']['cpu_model']}, "
             f"torch {record['device']['torch']}, seeds {record['seeds']}", f"data: {record['data']}",
             f"rule: {record['rule']}"]
    if record["status"] != "calibrated":
        lines.append(f"status: {record['status']}, {len(record['seeds'])} of {record['seeds_needed']} seeds needed")
    for name, model in record["models"].items():
        if model.get("threshold") is None:
            losses = ", ".join(f"{r[model['compared']]:.4f}" for r in model["runs"])
            lines.append(f"{name}: not calibrated ({model.get('not_run') or 'losses so far: [' + losses + ']'})")
            continue
        losses = ", ".join(f"{r[model['compared']]:.4f}" for r in model["runs"])
        lines.append(f"{name}: {model['compared']} [{losses}] mean {model['mean']:.4f} std {model['std']:.4f} "
                     f"max {model['max']:.4f} -> threshold {model['threshold']:.4f} ({model['mean_seconds']:.1f} s/run)")
    if record.get("determinism"):
        lines.append(f"rerun of seed {record['determinism']['seed']} bit-identical: {record['determinism']['bit_identical']}")
    timing = record["timing"]
    if timing["mean_training_seconds_per_submission"] is not None:
        lines.append(f"training checks per submission: {timing['mean_training_seconds_per_submission']:.1f} s "
                     f"(budget {timing['time_budget_s']:.0f} s)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", choices=TIER_CHOICES, default="auto", help="tier to calibrate (default: auto)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the tier's calibration_seeds; at least 5)")
    parser.add_argument("--out", help="file to write (default: autograder/calibration/<tier>.json)")
    parser.add_argument("--no-rerun", action="store_true", help="skip the determinism rerun of the first seed")
    parser.add_argument("--table", action="store_true",
                        help="print the reference's results per calibrated tier (mean ± sd over seeds) and stop")
    parser.add_argument("--update-readme", action="store_true",
                        help="rewrite README.md's table of the reference's results from the calibration files and stop")
    parser.add_argument("--verify", action="store_true",
                        help="train the reference here (--seeds, default the grade seed) and check it falls inside the "
                             "committed calibration's band; exit 1 when it does not (recalibrate here first)")
    parser.add_argument("--restart", action="store_true",
                        help="measure every seed again instead of keeping those already in the file")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.table or args.update_readme:
        from . import calibration_table

        if args.update_readme:
            changed = calibration_table.update_readme()
            print(f"README.md {'updated' if changed else 'already up to date'}")
        else:
            print(calibration_table.table())
        return 0
    try:
        tier = select_tier(args.tier)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else None
        if args.verify:
            outcome = verify(tier, seeds=seeds)
            print(f"tier {tier.name}: the reference here is {'inside' if outcome['ok'] else 'OUTSIDE'} the calibrated band"
                  + ("" if outcome["ok"] else f"; recalibrate on this machine: python -m autograder calibrate "
                                                f"--tier {tier.name} --restart"))
            return 0 if outcome["ok"] else 1
        record = calibrate(tier, seeds=seeds, out=args.out, rerun=not args.no_rerun, resume=not args.restart)
    except (TierError, ValueError, CalibrationError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    print(summary(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
