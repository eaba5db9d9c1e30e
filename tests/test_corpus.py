"""Every example submission grades without a grader crash, to its exact expected score and message."""
import io
import json
import pickle
from pathlib import Path

import pytest

from autograder.checks.registry import PART_POINTS
from autograder.cli import main as cli_main
from autograder.config import GraderConfig
from autograder.grade import grade_notebook
from tests.corpus import CRAFTED_PRELUDE, EXAMPLES, REACHABLE, build
from tests.results_schema import assert_valid_results

STRUCTURE_PARTS = ("cnn", "unet", "finetune")


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_grades_to_its_expected_score(example, tmp_path, request, monkeypatch):
    path = build(example, tmp_path / f"{example.name}.ipynb")
    if example.never_created:
        Path(example.never_created).unlink(missing_ok=True)
    parts = example.parts()
    if "learning" in parts:  # the grader trains on the horses of the data mirror
        monkeypatch.setenv("A2_DATA_DIR", str(request.getfixturevalue("mirror_dir")))
    # the UNet trains beside the CNN for the reference (the default); the other cases train in turn, because under
    # pytest -n 2 the cores are taken and a second training process would only add its start-up
    processes = 2 if example.name == "reference" else 1
    report = grade_notebook(path, GraderConfig(parts=parts, cell_seconds=example.timeout, tier="cpu",
                                               training_processes=processes))
    assert not report.grader_errors, report.grader_errors
    got = {part: report.part_score(part) for part in parts}
    # the expected words must be in a failing check's feedback (or in the notes), not in a passing one's
    feedback = {part: " | ".join(r.message for r in report.results if r.part == part and r.status != "passed")
                for part in parts}
    feedback["notes"] = " | ".join(report.notes)
    assert got == {part: example.expected[part] for part in parts}, feedback
    for part, text in example.messages.items():
        assert text.lower() in feedback[part].lower(), (part, feedback[part])
    assert report.max_score == sum(PART_POINTS[part] for part in parts)
    if example.never_created:
        assert not Path(example.never_created).exists(), "the parent ran code the worker sent"


def test_every_flawed_example_is_graded_on_the_part_it_breaks():
    for example in EXAMPLES:
        broken = {part for part, points in example.expected.items() if points < REACHABLE[part]}
        assert broken <= set(example.parts()), example.name


@pytest.mark.slow
def test_cli_writes_gradescope_results(tmp_path, capsys):
    example = next(e for e in EXAMPLES if e.name == "missing_relu")
    path = build(example, tmp_path / "submission.ipynb")
    out = tmp_path / "results.json"
    assert cli_main(["grade", str(path), "--parts", "cnn", "--json", str(out)]) == 0
    results = assert_valid_results(out)
    assert results["score"] == 1.5 and sum(t["max_score"] for t in results["tests"]) == 2
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"cnn"}
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
    failing = [t for t in results["tests"] if t["score"] < t["max_score"]]
    assert len(failing) == 1 and "ReLU" in failing[0]["output"]
    assert "1.5 / 2" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_the_crafted_payloads_are_live_when_loaded_unsafely(kind, tmp_path):
    """Control for the crafted_* cases: their blobs really run code when unpickled, so a grade that leaves the marker
    absent shows the parent never did."""
    import torch

    marker = tmp_path / "ran"
    maker = CRAFTED_PRELUDE.format(kind=kind, marker=str(marker)).split("_frame = sys._getframe()")[0]
    ns = {"torch": torch}
    exec(maker, ns)
    blob = ns["_crafted_blob"]({})
    if kind == "pickle":
        pickle.loads(blob)
    else:
        torch.load(io.BytesIO(blob), weights_only=False)
    assert marker.exists()
