"""Hostile worker output: what a worker could send in place of its report. The parent's readers take it as invalid
output: nothing in it is executed, no exception escapes to the grader, and no check passes on it.

The worker's report is a framed message (``sandbox/protocol.py``) whose header carries JSON facts and whose blob is
safetensors (``verify/tensors.py``, ``execution.StepResult.tensors``); the checks judge it through
``checks/evidence.Evidence``. Here a real report of the reference (collected in this process) has its blob or its
facts replaced by hostile ones, and every check of the part must fail.
"""
import json
import pickle
import struct

import pytest
import safetensors.torch
import torch

from autograder.checks.evidence import Evidence
from autograder.checks.registry import checks_for
from autograder.execution import Execution, StepResult, _Tracker
from autograder.sandbox.protocol import FrameReader, encode
from autograder.verify import tensors as tensor_io
from evidence import PART_PROBES, collect, failing
from reference_solution import build_namespace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROBE = {"cnn": "cnn_structure", "unet": "unet_structure"}


class _Payload:
    """Unpickling this creates the file at ``path`` (the stand-in for any code a pickle can run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _pickle_payloads(path):
    """Pickle bytes, and torch.save's zip archive (a pickle inside), each creating ``path`` when loaded unsafely."""
    import io

    raw = pickle.dumps({"c0/train/output": _Payload(path)})
    archive = io.BytesIO()
    torch.save({"c0/train/output": _Payload(path)}, archive)
    return {"pickle": raw, "torch.save": archive.getvalue()}


def test_the_payload_is_live_when_unpickled(tmp_path):
    """Control: the payloads really run code when loaded the unsafe way (so their rejection below means something)."""
    for name, blob in _pickle_payloads(tmp_path / "control").items():
        target = tmp_path / "control"
        if name == "pickle":
            pickle.loads(blob)
        else:
            import io

            torch.load(io.BytesIO(blob), weights_only=False)
        assert target.exists(), name
        target.unlink()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_a_pickle_payload_in_place_of_safetensors_is_not_executed(kind, tmp_path):
    target = tmp_path / "created-by-payload"
    blob = _pickle_payloads(target)[kind]
    assert tensor_io.load(blob) == {}
    assert StepResult(id="probe:cnn_structure", outcome="done", blob=blob).tensors == {}
    assert not target.exists()


# ------------------------------------------------------------------------------------------------ raw blobs
def _header_only(header: dict, data: bytes = b"") -> bytes:
    """A safetensors blob written by hand: 8-byte little-endian header length, JSON header, data."""
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + data


def _hostile_blobs(valid: bytes, tmp_path) -> dict:
    return {
        **_pickle_payloads(tmp_path / "created-by-payload"),
        "truncated": valid[: len(valid) // 2],
        "truncated header": valid[:20],
        "garbage": b"\x00\xffnot safetensors at all" * 50,
        # a header that announces far more bytes than the blob holds
        "header length 2**62": struct.pack("<Q", 2**62) + b"{}",
        # a tensor whose declared shape needs 2**42 bytes, backed by 16
        "oversized tensor": _header_only({"c0/train/output": {"dtype": "F32", "shape": [2**20, 2**20],
                                                              "data_offsets": [0, 16]}}, b"\x00" * 16),
        # offsets pointing past the end of the data
        "offsets past the end": _header_only({"c0/train/output": {"dtype": "F32", "shape": [4],
                                                                  "data_offsets": [0, 2**40]}}, b"\x00" * 16),
        "unknown dtype": _header_only({"c0/train/output": {"dtype": "PICKLE", "shape": [4],
                                                           "data_offsets": [0, 16]}}, b"\x00" * 16),
    }


@pytest.fixture(scope="module")
def reference_reports():
    """{part: Evidence of the reference for the part's structure probe} (collected once)."""
    ns = build_namespace()
    return {part: collect(ns, PART_PROBES[part]) for part in PROBE}


def _with_step(evidence: Evidence, part: str, **changes) -> Evidence:
    """A fresh Evidence whose structure probe reported ``changes`` (blob and/or facts) instead of what it did."""
    step = evidence.step(PROBE[part])
    forged = StepResult(id=step.id, outcome="done", facts=changes.get("facts", step.facts),
                        blob=changes.get("blob", step.blob))
    steps = {**evidence.execution.steps, step.id: forged}
    return Evidence(evidence.program, Execution(steps=steps), evidence.secrets, evidence.tier)


def _decide(evidence: Evidence, part: str) -> dict:
    return {check.name: check.decide(evidence) for check in checks_for(part)}


def test_the_reference_report_passes_every_check(reference_reports):
    """Control: unchanged, the same reports pass (so the failures below come from the hostile data)."""
    for part, evidence in reference_reports.items():
        assert failing(_decide(_with_step(evidence, part), part)) == set(), part


@pytest.mark.parametrize("part", sorted(PROBE))
def test_unreadable_blobs_are_rejected_and_nothing_runs(part, reference_reports, tmp_path):
    evidence = reference_reports[part]
    valid = evidence.step(PROBE[part]).blob
    for name, blob in _hostile_blobs(valid, tmp_path).items():
        assert tensor_io.load(blob) == {}, name
        outcomes = _decide(_with_step(evidence, part, blob=blob), part)
        assert failing(outcomes) == {c.name for c in checks_for(part)}, (name, outcomes)
        assert all(o.message.strip() for o in outcomes.values()), name
    assert not (tmp_path / "created-by-payload").exists()


def _transformed(blob: bytes, change) -> bytes:
    tensors = safetensors.torch.load(blob)
    return safetensors.torch.save({key: change(key, value) for key, value in tensors.items()})


@pytest.mark.parametrize("part", sorted(PROBE))
@pytest.mark.parametrize("what", ["nan everywhere", "nan outputs", "int32", "float16", "complex64"])
def test_nan_or_wrong_dtype_tensors_earn_nothing(part, what, reference_reports):
    """A readable blob whose tensors are NaN or of another dtype: the reader returns data, the checks believe none."""
    def change(key, value):
        if not value.is_floating_point():
            return value
        if what == "nan everywhere":
            return torch.full_like(value, float("nan"))
        if what == "nan outputs":
            return torch.full_like(value, float("nan")) if key.endswith("/out") or key.endswith("output") else value
        return value.to(getattr(torch, what))

    evidence = reference_reports[part]
    blob = _transformed(evidence.step(PROBE[part]).blob, change)
    loaded = tensor_io.load(blob)
    assert loaded and all(isinstance(v, torch.Tensor) for v in loaded.values())
    outcomes = _decide(_with_step(evidence, part, blob=blob), part)
    assert failing(outcomes) == {c.name for c in checks_for(part)}, outcomes


# ------------------------------------------------------------------------------------------------ facts
def _hostile_facts(facts: dict) -> dict:
    config = dict(facts["configs"][0])
    return {
        "not a dict": [1, 2, 3],
        "configs not a list": {"configs": 7},
        "configs of strings": {"configs": ["c0", "c1"]},
        "calls not a list": {"configs": [{**config, "calls": 5}]},
        "calls of junk": {"configs": [{**config, "calls": [1, None, "x", {"group": ["downconv1"], "mode": 3}]}]},
        "description a list": {"configs": [{**config, "description": [["downconv1", 1]]}]},
        "children of junk": {"configs": [{**config, "description": {"type": "Sequential", "children": [1, [2]]}}]},
        "parameters not a list": {"configs": [{**config, "parameters": {"downconv1.0.weight": 1}}]},
        "index not an int": {"configs": [{**config, "index": "0"}]},
        "error of junk": {"configs": [{**config, "error": "everything passed"}]},
        "a verdict": {"passed": True, "checks": {"cnn_layers": "passed"}, "configs": []},
    }


@pytest.mark.parametrize("part", sorted(PROBE))
def test_malformed_facts_are_rejected_without_an_exception(part, reference_reports):
    evidence = reference_reports[part]
    for name, facts in _hostile_facts(evidence.step(PROBE[part]).facts).items():
        forged = _with_step(evidence, part, facts=facts if isinstance(facts, dict) else {})
        if not isinstance(facts, dict):  # what the parent's event tracker does with a header that is not an object
            tracker = _Tracker({"s": {"limit": 1}}, {"s": StepResult(id="s")})
            tracker.on_event({"step": "s", "event": "start"}, b"")
            tracker.on_event({"step": "s", "event": "done", "facts": facts, "seconds": "soon"}, b"")
            assert tracker.results["s"].facts == {} and tracker.results["s"].seconds == 0.0
        outcomes = _decide(forged, part)
        assert failing(outcomes) == {c.name for c in checks_for(part)}, (name, outcomes)
        if name not in ("not a dict", "configs not a list", "configs of strings", "a verdict", "index not an int"):
            assert "is not valid output" in outcomes[f"{part}_layers"].message, (name, outcomes)


# ------------------------------------------------------------------------------------------------ frames
def test_a_blob_over_the_limit_is_not_a_frame():
    token = "ab" * 16
    reader = FrameReader(token, max_blob_bytes=1024)
    small = encode({"token": token, "type": "event", "step": "s"}, b"x" * 1024)
    large = encode({"token": token, "type": "event", "step": "s"}, b"x" * 1025)
    assert reader.feed(large) + reader.finish() == []
    assert [blob for _h, blob in reader.feed(small) + reader.finish()] == [b"x" * 1024]


def test_a_frame_announcing_more_than_it_sends_is_dropped():
    token = "ab" * 16
    frame = encode({"token": token, "type": "event", "step": "s"}, b"x" * 100)
    reader = FrameReader(token, max_blob_bytes=2**20)
    assert reader.feed(frame[:-10]) == []
    assert reader.finish() == []
