"""IPython-only syntax in a notebook cell, made harmless so that the cell runs as plain Python.

Line magics (``%time``), shell escapes (``!ls``, ``files = !ls``), help (``obj?``, ``?obj``) and cell magics
(``%%time``) at the start of a logical line become ``pass`` at the same indentation (so a block keeps a body and the
line count stays the same). A first-line cell magic whose body is Python (``%%time``, ``%%capture``, ...) is
dropped and its body kept; one whose body is not Python (``%%bash``, ``%%writefile``, ...) blanks the whole cell.
Only cells that are not already valid Python are rewritten.
"""
from __future__ import annotations

import ast
import re
import warnings

__all__ = ["neutralise_ipython", "prepare"]

# Cell magics whose body is Python code: only the ``%%`` line is removed.
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit", "mprun", "py", "python", "python3"})

_HELP = re.compile(r"^[A-Za-z_*][\w.*]*\?{1,2}$")  # obj?  obj.attr??  np.*load*?
_ASSIGN_MAGIC = re.compile(r"^[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s*=\s*[%!]")  # files = !ls ; t = %timeit -o f()
_SHOWN = 70  # characters of an ignored line shown in the report


class _LineScanner:
    """Tracks, line by line, whether the next physical line starts a new logical line (not inside a string,
    brackets or a backslash continuation). Approximate for exotic f-strings; only used on cells that do not parse."""

    def __init__(self):
        self.quote: str | None = None  # the open string's delimiter: ' " ''' or \"\"\"
        self.depth = 0
        self.continued = False

    def at_logical_start(self) -> bool:
        return self.quote is None and self.depth == 0 and not self.continued

    def feed(self, line: str) -> None:
        i, n, in_comment = 0, len(line), False
        while i < n:
            ch = line[i]
            if self.quote is not None:
                if ch == "\\":
                    i += 2
                elif line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                else:
                    i += 1
                continue
            if ch == "#":
                in_comment = True
                break
            if ch in "\"'":
                self.quote = ch * 3 if line.startswith(ch * 3, i) else ch
                i += len(self.quote)
                continue
            if ch in "([{":
                self.depth += 1
            elif ch in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        ends_with_backslash = (len(line) - len(line.rstrip("\\"))) % 2 == 1
        if self.quote is not None and len(self.quote) == 1 and not ends_with_backslash:
            self.quote = None  # unterminated one-line string: a syntax error Python will report
        self.continued = self.quote is None and not in_comment and ends_with_backslash


def _magic_kind(line: str) -> str | None:
    code = line.strip()
    if not code:
        return None
    if code.startswith("%%"):
        return "cell magic"
    if code[0] in "%!?":
        return {"%": "IPython magic", "!": "shell command", "?": "IPython help"}[code[0]]
    if _HELP.match(code):
        return "IPython help"
    if _ASSIGN_MAGIC.match(code):
        return "IPython magic"
    return None


def _brief(text: str, multiline: bool = False) -> str:
    first = text.strip()
    if len(first) > _SHOWN:
        return first[: _SHOWN - 3].rstrip() + "..."
    return first + (" ..." if multiline else "")


def _neutralise(source: str) -> tuple[str, list[tuple[int, str]]]:
    lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    report: list[tuple[int, str]] = []
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].strip()[2:].split(maxsplit=1)
        if name and name[0] in PYTHON_BODY_CELL_MAGICS:
            report.append((first + 1, f"line {first + 1}: {_brief(lines[first])} (IPython cell magic, ignored)"))
            lines[first] = ""
        else:
            report.append((first + 1, f"line {first + 1}: {_brief(lines[first])} (a cell that is not Python, ignored)"))
            return "\n".join("" for _ in lines), report
    scanner, continued_magic = _LineScanner(), False
    for i, line in enumerate(lines):
        if continued_magic:  # a magic or shell command continued with a backslash
            continued_magic = line.rstrip().endswith("\\")
            lines[i] = ""
            continue
        kind = _magic_kind(line) if scanner.at_logical_start() else None
        if kind is None:
            scanner.feed(line)
            continue
        report.append((i + 1, f"line {i + 1}: {_brief(line)} ({kind}, ignored)"))
        indent = line[: len(line) - len(line.lstrip())]
        lines[i] = indent + "pass"
        continued_magic = line.rstrip().endswith("\\")
    return "\n".join(lines), report


def neutralise_ipython(source: str) -> tuple[str, list[str]]:
    """Replace IPython-only lines by ``pass`` (same indentation, same line count); return the text and a report
    (one line per IPython command). Lines inside strings and brackets are left alone."""
    text, report = _neutralise(source)
    return text, [message for _, message in report]


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def prepare(source: str) -> tuple[str, list[str]]:
    """The cell as plain Python (line numbers kept) and one line per IPython command that was ignored."""
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    if _parses(text):
        return text, []
    return neutralise_ipython(text)
