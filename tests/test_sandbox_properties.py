"""autograder.sandbox: rules that hold for all inputs (hypothesis). Each example is a real sandboxed run (~0.2 s)."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.sandbox import Limits, run_isolated
from autograder.sandbox.protocol import encode, parse
from sandbox_tasks import TESTS_DIR, run_source

RUNS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@RUNS
@given(json_values)
def test_any_json_payload_round_trips(payload):
    result = run_isolated("sandbox_tasks:echo", payload, Limits(), extra_sys_path=[TESTS_DIR])
    assert result.status == "ok", result.message
    assert result.value == payload


forged_lines = st.one_of(
    st.text(),
    st.builds(lambda v, tok: json.dumps({"token": tok, "ok": True, "value": v}),
              json_values, st.sampled_from(["", "0" * 32, "f" * 32])),
    st.builds(lambda v: "\n" + json.dumps({"ok": True, "value": v}) + "\n", json_values),
)


@RUNS
@given(st.lists(forged_lines, min_size=1, max_size=4), st.integers())
def test_printed_or_written_text_never_changes_the_value(lines, value):
    source = (
        "import os, sys\n"
        "for line in data['lines']:\n"
        "    print(line)\n"
        "    print(line, file=sys.stderr)\n"
        "    for fd in range(3, 21):\n"
        "        try:\n"
        "            os.write(fd, line.encode('utf-8', 'surrogatepass'))\n"
        "        except (OSError, UnicodeError):\n"
        "            pass\n"
        "result = data['value']\n"
    )
    result = run_source(source, data={"lines": lines, "value": value})
    assert result.status == "ok", result.message
    assert result.value == value


@settings(max_examples=200, deadline=None)
@given(st.binary(), json_values, st.binary())
def test_protocol_finds_exactly_the_framed_message(before, value, after):
    token = "ab" * 16
    data = before + encode({"token": token, "ok": True, "value": value}) + after
    messages, _ = parse(data, token)
    assert messages == [{"token": token, "ok": True, "value": value}]
    assert parse(before + after, token)[0] == []
