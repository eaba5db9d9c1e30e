"""The result channel between the sandbox child and the parent: message format and validation.

The child writes exactly one message, framed as ``b"\\n" + json + b"\\n"`` (the leading newline separates it from any
bytes other code may have written to the same fd without a newline). A message is *authentic* only when it carries
the per-run token and has exactly one of these shapes:

    {"token": str, "ok": true,  "value": <any JSON>}
    {"token": str, "ok": false, "kind": KIND, "error_type": str, "error": str}

Lines that are not JSON, not an object, or lack the token are ignored ("noise"). More than one authentic message
means someone else wrote to the channel, and the parent rejects the run.
"""
from __future__ import annotations

import json

KINDS = frozenset({
    "exception",  # the task (i.e. the student code it ran) raised an exception
    "memory",     # MemoryError / allocator failure
    "exit",       # SystemExit (sys.exit(), exit(), quit())
    "grader",     # the grader task itself is broken (import failure, non-JSON result, ...)
})

_OK_KEYS = frozenset({"token", "ok", "value"})
_ERR_KEYS = frozenset({"token", "ok", "kind", "error_type", "error"})
MAX_ERROR_CHARS = 8000


def encode(message: dict, encoder=json.JSONEncoder(allow_nan=True)) -> bytes:
    """Frame one message (the encoder is bound at import time, before untrusted code can patch ``json``)."""
    return b"\n" + encoder.encode(message).encode("utf-8") + b"\n"


def _valid(message: object, token: str) -> bool:
    if not isinstance(message, dict) or message.get("token") != token:
        return False
    if message.get("ok") is True:
        return set(message) == _OK_KEYS
    if message.get("ok") is False:
        return (set(message) == _ERR_KEYS and message["kind"] in KINDS
                and isinstance(message["error_type"], str) and isinstance(message["error"], str))
    return False


def parse(data: bytes, token: str) -> tuple[list[dict], int]:
    """Return (authentic messages in order, number of ignored non-empty lines)."""
    authentic, noise = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            noise += 1
            continue
        if _valid(message, token):
            authentic.append(message)
        else:
            noise += 1
    return authentic, noise
