"""Student-visible text: the grader's own words, bounded, with machine paths removed.

The only text of a submission that may reach a student is an *excerpt* of an error its code raised: the exception
type and the first line of its message, cut short and path-scrubbed. Whole tracebacks, what the code printed and
sandbox details go to the instructor log (``results.write_instructor_log``), never here.
"""
import re

EXCERPT_CHARS = 200     # the student's own error message, first line only
MESSAGE_CHARS = 1200    # one check's feedback
NOTE_CHARS = 400        # one note about the notebook
WORKER_MESSAGE_CHARS = 600  # feedback composed in a process that ran student code (see from_worker)
MAX_NOTES = 20          # notes per report (more are counted, not shown)

# An absolute POSIX or Windows path of two components or more, or a home-relative one.
_PATH = re.compile(r"(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"<>|]+){2,}[/\\]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_.]")
_PATH_ROOM = 4096


def bound(text, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 3, 0)].rstrip() + "..."


def scrub(text) -> str:
    """``text`` with file paths replaced by ``<path>`` and control or direction-changing characters removed."""
    return _PATH.sub("<path>", _CONTROL.sub(" ", str(text)))


def _clean(text, limit: int) -> str:
    # Cut before scrubbing (the text may be megabytes), with room for paths that straddle the cut, then cut again.
    return bound(scrub(str(text)[: limit + _PATH_ROOM]), limit)


def identifier(text, limit: int = 60) -> str:
    """A name chosen by student code (an exception type, a class) reduced to identifier characters."""
    return bound(_NOT_IDENTIFIER.sub("", str(text)[: limit * 4]), limit) or "?"


def first_line(text) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def error_excerpt(error_type, error_message) -> str:
    """``"TypeError: first line of the message"``, bounded and scrubbed: how student-visible text names an error
    that the student's code raised. Both arguments are untrusted."""
    kind = identifier(error_type)
    try:
        raw = str(error_message)
    except Exception:  # noqa: BLE001 - an exception whose __str__ itself raises
        raw = ""
    text = _clean(" ".join(first_line(raw[: EXCERPT_CHARS + _PATH_ROOM]).split()), EXCERPT_CHARS)
    return f"{kind}: {text}" if text else kind


def exception_line(error_type, traceback_text) -> str:
    """The ``Type: message`` line of a formatted traceback (the last line that starts with the type), as an
    excerpt; the traceback itself is instructor-only."""
    kind = str(error_type)
    lines = [line for line in str(traceback_text)[-100_000:].splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped == kind or stripped.startswith(kind + ":"):
            return error_excerpt(kind, stripped[len(kind) + 1:])
    return error_excerpt(kind, "")


def message(text) -> str:
    """One check's student-visible feedback."""
    return _clean(text, MESSAGE_CHARS)


def from_worker(text) -> str:
    """Feedback that a process which ran student code composed: its first line only, bounded and scrubbed. The
    grader's own messages are one line; a student's error is shown as an excerpt, so nothing legitimate is lost."""
    return _clean(first_line(str(text)[: WORKER_MESSAGE_CHARS + _PATH_ROOM]), WORKER_MESSAGE_CHARS)


def note(text) -> str:
    """One student-visible note about the notebook."""
    return _clean(text, NOTE_CHARS)


def notes(texts) -> list:
    """Student-visible notes: each bounded, at most ``MAX_NOTES`` of them, duplicates dropped."""
    kept = []
    for text in texts:
        text = note(text)
        if text not in kept:
            kept.append(text)
    if len(kept) > MAX_NOTES:
        hidden = len(kept) - (MAX_NOTES - 1)
        kept = kept[: MAX_NOTES - 1] + [f"... and {hidden} more note(s), not shown."]
    return kept
