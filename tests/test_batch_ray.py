"""The Ray engine of ``batch``: one Ray task per submission on a local Ray instance started here; the notebooks go
to the tasks as bytes and the grades come back as text, and the driver writes the same files as the local pool."""
import json

import pytest

from autograder import batch, batch_ray
from autograder.config import GraderConfig
from tests.corpus import BY_NAME, build
from tests.test_batch import assert_consistent

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_task_resources_follow_the_grade():
    assert batch_ray.task_resources(GraderConfig(threads=2, tier="cpu")) == {
        "num_cpus": 2, "memory": batch.MEMORY_PER_GRADE, "num_gpus": 0}


@pytest.mark.slow
def test_ray_gives_every_submission_the_score_of_the_local_pool(tmp_path, local_ray):
    submitted = tmp_path / "submitted"
    examples = {"alice": "missing_relu", "bob": "reference", "dave": "not_json"}
    for student, example in examples.items():
        folder = submitted / student / "a2-cnn"
        folder.mkdir(parents=True)
        build(BY_NAME[example], folder / "a2-cnn.ipynb")
    config = GraderConfig(parts=("cnn",))
    on_ray = dict(batch.grade_tree(submitted, tmp_path / "ray", config, progress=False, engine="ray"))
    local = dict(batch.grade_tree(submitted, tmp_path / "local", config, progress=False, jobs=1))
    assert {s: r.verdict() for s, r in on_ray.items()} == {s: r.verdict() for s, r in local.items()}
    assert {s: r.score for s, r in on_ray.items()} == {"alice": 1.5, "bob": 2.0, "dave": 0.0}
    for out in ("ray", "local"):
        assert_consistent(tmp_path / out)
    results = {out: json.loads((tmp_path / out / "bob.json").read_text()) for out in ("ray", "local")}
    for result in results.values():
        result.pop("execution_time")
    assert results["ray"] == results["local"]
    # a rerun finds everyone current and starts no task
    again = dict(batch.grade_tree(submitted, tmp_path / "ray", config, progress=False, engine="ray"))
    assert {s: r.seconds for s, r in again.items()} == {s: r.seconds for s, r in on_ray.items()}


@pytest.mark.slow
def test_a_task_that_dies_is_a_grader_error_never_a_score(tmp_path, local_ray, monkeypatch):
    """A grading process killed on its node (twice: Ray retries once) is recorded as a grader error, without
    results, and is graded again on the next run."""
    submitted = tmp_path / "submitted"
    folder = submitted / "erin" / "a2-cnn"
    folder.mkdir(parents=True)
    (folder / "a2-cnn.ipynb").write_text("{}")

    def dies(*_args):
        import os

        os._exit(9)

    monkeypatch.setattr(batch_ray, "grade_remote", dies)
    rows = dict(batch.grade_tree(submitted, tmp_path / "out", GraderConfig(parts=("cnn",)), progress=False,
                                 engine="ray"))
    assert rows["erin"].grader_errors and rows["erin"].score == 0.0
    assert not (tmp_path / "out" / "erin.json").exists()
    assert not batch.is_current(rows["erin"], rows["erin"].key)
