"""Validate a results.json against the grader's schema (autograder/schemas/), plus what a schema cannot say."""
import json
from pathlib import Path

import jsonschema

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "autograder" / "schemas" /
                     "gradescope-results.schema.json").read_text())
MAX_BYTES = 256 * 1024


def assert_valid_results(path_or_text):
    """Raise AssertionError (or jsonschema.ValidationError) unless the file follows the schema and its bounds."""
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else str(path_or_text)
    assert len(text.encode("utf-8")) <= MAX_BYTES, f"results.json is {len(text.encode())} bytes"
    results = json.loads(text)
    jsonschema.validate(results, SCHEMA)
    for test in results["tests"]:
        assert test["score"] <= test["max_score"] or test["max_score"] == 0 and test["score"] == 0, test
        assert (test["status"] == "passed") == (test["score"] == test["max_score"] > 0) or test["max_score"] == 0, test
    assert abs(results["score"] - sum(t["score"] for t in results["tests"])) < 1e-6
    return results
