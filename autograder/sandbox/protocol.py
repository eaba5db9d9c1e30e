"""The channel from the sandbox child to the parent: a stream of framed messages.

A frame is ``MAGIC`` + 4-byte header length + UTF-8 JSON header + 8-byte blob length + blob (both lengths
big-endian). The header is an object carrying the per-run token and a ``type``; the blob is opaque bytes (the
worker sends tensors as safetensors there). The child sends any number of ``"event"`` frames while it works and
exactly one ``"end"`` frame last:

    {"token": str, "type": "event", ...anything JSON...}                          (+ blob, possibly empty)
    {"token": str, "type": "end", "ok": true,  "value": <JSON>}
    {"token": str, "type": "end", "ok": false, "kind": KIND, "error_type": str, "error": str}

Bytes between frames that are not authentic frames (no token, bad header) are skipped as noise, so printing or
writing protocol-looking text to guessed descriptors changes nothing. Code in the child's own process can find
the token and send authentic frames; so nothing in a frame is believed by the grader without checking it: frames
only carry data, and the parent decides what it proves.
"""
from __future__ import annotations

import json
import struct

MAGIC = b"\x00A2F"
_HEADER_LEN = struct.Struct(">I")
_BLOB_LEN = struct.Struct(">Q")
MAX_HEADER_BYTES = 4 * 2**20
MAX_ERROR_CHARS = 8000

KINDS = frozenset({
    "exception",  # the task (i.e. the student code it ran) raised an exception
    "memory",     # MemoryError / allocator failure
    "exit",       # SystemExit (sys.exit(), exit(), quit())
    "grader",     # the grader task itself is broken (import failure, non-JSON result, ...)
})
_END_OK_KEYS = frozenset({"token", "type", "ok", "value"})
_END_ERR_KEYS = frozenset({"token", "type", "ok", "kind", "error_type", "error"})


def encode(header: dict, blob: bytes = b"", encoder=json.JSONEncoder(allow_nan=True)) -> bytes:
    """One frame (the encoder is bound at import time, before untrusted code can patch ``json``)."""
    head = encoder.encode(header).encode("utf-8")
    return b"".join((MAGIC, _HEADER_LEN.pack(len(head)), head, _BLOB_LEN.pack(len(blob)), blob))


def _valid(header: object, token: str) -> bool:
    if not isinstance(header, dict) or header.get("token") != token:
        return False
    if header.get("type") == "event":
        return True
    if header.get("type") != "end":
        return False
    if header.get("ok") is True:
        return set(header) == _END_OK_KEYS
    if header.get("ok") is False:
        return (set(header) == _END_ERR_KEYS and header["kind"] in KINDS
                and isinstance(header["error_type"], str) and isinstance(header["error"], str))
    return False


class FrameReader:
    """Incremental parser: ``feed(bytes)`` returns the complete, authentic frames as ``(header, blob)`` pairs.

    Bytes that are not a frame (output other code wrote to the same fd) are skipped and counted in ``noise``: the
    parser looks for the next ``MAGIC`` whose header parses and carries the token. ``finish()`` at end of stream
    also gets past a stray ``MAGIC`` that announced more bytes than ever came.
    """

    def __init__(self, token: str, max_blob_bytes: int):
        self.token = token
        self.max_blob_bytes = max_blob_bytes
        self.buffer = bytearray()
        self.noise = 0

    def feed(self, data: bytes) -> list[tuple[dict, bytes]]:
        self.buffer += data
        return self._drain(final=False)

    def finish(self) -> list[tuple[dict, bytes]]:
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[tuple[dict, bytes]]:
        frames = []
        while self.buffer:
            start = self.buffer.find(MAGIC)
            if start < 0:
                keep = len(MAGIC) - 1 if not final else 0  # a MAGIC may be split across reads
                dropped = max(0, len(self.buffer) - keep)
                self.noise += dropped
                del self.buffer[:dropped]
                break
            if start:
                self.noise += start
                del self.buffer[:start]
            status, frame = self._parse()
            if status == "frame":
                frames.append(frame)
            elif status == "bad" or final:
                self.noise += 1
                del self.buffer[:1]  # not a frame after all: look for the next MAGIC
            else:  # incomplete: wait for more bytes
                break
        return frames

    def _parse(self):
        buf = self.buffer
        head_start = len(MAGIC) + _HEADER_LEN.size
        if len(buf) < head_start:
            return "incomplete", None
        (head_len,) = _HEADER_LEN.unpack_from(buf, len(MAGIC))
        if head_len > MAX_HEADER_BYTES:
            return "bad", None
        blob_start = head_start + head_len + _BLOB_LEN.size
        if len(buf) < blob_start:
            return "incomplete", None
        try:
            header = json.loads(bytes(buf[head_start:head_start + head_len]))
        except (ValueError, RecursionError):
            return "bad", None
        if not _valid(header, self.token):
            return "bad", None
        (blob_len,) = _BLOB_LEN.unpack_from(buf, head_start + head_len)
        if blob_len > self.max_blob_bytes:
            return "bad", None
        if len(buf) < blob_start + blob_len:
            return "incomplete", None
        blob = bytes(buf[blob_start:blob_start + blob_len])
        del buf[:blob_start + blob_len]
        return "frame", (header, blob)
