"""autograder.sandbox: rules that hold for all inputs (hypothesis). Each example is a real sandboxed run (~0.2 s)."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.sandbox import Limits, run_isolated
from autograder.sandbox.protocol import FrameReader, encode
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


def _read(data, token, chunk=7):
    """Feed ``data`` in small pieces, as a pipe delivers it, then finish."""
    reader = FrameReader(token, max_blob_bytes=2**20)
    frames = []
    for i in range(0, len(data), chunk):
        frames += reader.feed(data[i:i + chunk])
    return frames + reader.finish()


@settings(max_examples=200, deadline=None)
@given(st.binary(), json_values, st.binary(max_size=64), st.binary())
def test_protocol_finds_exactly_the_framed_messages_among_noise(before, value, blob, after):
    token = "ab" * 16
    end = {"token": token, "type": "end", "ok": True, "value": value}
    event = {"token": token, "type": "event", "step": "x"}
    data = before + encode(event, blob) + after + encode(end) + after
    assert _read(data, token) == [(event, blob), (end, b"")]
    assert _read(before + after, token) == []


@settings(max_examples=100, deadline=None)
@given(json_values, st.sampled_from(["", "0" * 32, "cd" * 16]))
def test_frames_without_the_token_are_noise(value, wrong):
    token = "ab" * 16
    data = encode({"token": wrong, "type": "end", "ok": True, "value": value})
    assert _read(data, token) == []
