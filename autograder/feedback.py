"""Student-visible text: the grader's own words, bounded, with machine paths removed.

Every message a student sees is built by the parent from its own words; the only text of the student's code that
may enter it is an *excerpt* of an error that code raised (its type, the first line of its message, the line in
the cell), cut to a fixed length and path-scrubbed. Tracebacks, what the code printed and sandbox details go to the
instructor log (``results.write_instructor_log``), never here.
"""
import re
import unicodedata

EXCERPT_CHARS = 160     # the student's own error message, first line only
MESSAGE_CHARS = 1200    # one check's feedback
NOTE_CHARS = 400        # one note about the notebook
MAX_NOTES = 20          # notes per report (more are counted, not shown)

# An absolute POSIX or Windows path of two components or more, or a home-relative one.
_PATH = re.compile(r"(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"<>|]+){2,}[/\\]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_.]")
_PATH_ROOM = 4096       # cut this much beyond a limit before scrubbing, for paths that straddle the cut


def bound(text, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 3, 0)].rstrip() + "..."


def scrub(text) -> str:
    """``text`` with file paths replaced by ``<path>`` and control or direction-changing characters removed."""
    return _PATH.sub("<path>", _CONTROL.sub(" ", str(text)))


def _clean(text, limit: int) -> str:
    # Cut before scrubbing (the text may be megabytes), then cut again.
    return bound(scrub(str(text)[: limit + _PATH_ROOM]), limit)


def identifier(text, limit: int = 60) -> str:
    """A name chosen by student code (an exception type, a class) reduced to identifier characters."""
    return bound(_NOT_IDENTIFIER.sub("", str(text)[: limit * 4]), limit) or "?"


def first_line(text) -> str:
    for line in str(text)[: 100_000].splitlines():
        if line.strip():
            return line.strip()
    return ""


def error_excerpt(facts, where: str = "") -> str:
    """``"TypeError: message (line 12 of cell cnn_model)"`` from a worker's error facts (untrusted data: a dict
    with ``type``, ``message`` and ``line``), bounded and scrubbed."""
    if not isinstance(facts, dict):
        return "an error"
    kind = identifier(facts.get("type", "Exception"))
    message = _clean(" ".join(first_line(str(facts.get("message", ""))[: EXCERPT_CHARS + _PATH_ROOM]).split()),
                     EXCERPT_CHARS)
    line = facts.get("line")
    place = ""
    if isinstance(line, int) and not isinstance(line, bool) and 0 < line < 100000:
        place = f" (line {line}{' of ' + where if where else ''})"
    return f"{kind}: {message}{place}" if message else f"{kind}{place}"


def message(text) -> str:
    """One check's student-visible feedback."""
    return _clean(text, MESSAGE_CHARS)


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


# Unicode letter names (their last word) of other scripts' letters that look like a Latin letter:
# "CYRILLIC CAPITAL LETTER ES" looks like C.
_LOOKS_LATIN = {"ES": "C", "A": "A", "IE": "E", "O": "O", "ER": "P", "HA": "X", "EN": "H", "KA": "K", "TE": "T",
                "EM": "M", "BE": "B", "VE": "B", "NU": "N", "ALPHA": "A", "BETA": "B", "EPSILON": "E", "ETA": "H",
                "IOTA": "I", "KAPPA": "K", "MU": "M", "OMICRON": "O", "RHO": "P", "TAU": "T", "UPSILON": "Y",
                "CHI": "X", "ZETA": "Z", "I": "I", "JE": "J", "DZE": "S"}


def _skeleton(name: str) -> str:
    """``name`` as it looks: letters from other scripts that look Latin (Cyrillic С, Greek Ν) mapped to Latin,
    compatibility forms folded, case ignored."""
    out = []
    for char in unicodedata.normalize("NFKC", name):
        if ord(char) > 127:
            words = unicodedata.name(char, "").split()
            if "LETTER" in words and words[-1] in _LOOKS_LATIN:
                char = _LOOKS_LATIN[words[-1]]
        out.append(char)
    return "".join(out).casefold()


def lookalike(expected: str, names) -> str:
    """A sentence about a defined name that looks like ``expected`` but is not it (another script's letters, other
    case), or "" when there is none. ``names`` come from student code: they are shown as identifiers, bounded."""
    target = _skeleton(expected)
    for name in names:
        name = str(name)[:40]
        if name == expected or _skeleton(name) != target:
            continue
        foreign = [c for c in name if ord(c) > 127]
        if foreign:
            letters = ", ".join(unicodedata.name(c, "?").title() for c in dict.fromkeys(foreign))[:120]
            return (f"a name that looks the same is defined, but it has letters from another alphabet ({letters}): "
                    f"retype {expected} on a plain keyboard")
        return f"{bound(name, 40)!r} is defined instead: names are case-sensitive, call it {expected}"
    return ""
