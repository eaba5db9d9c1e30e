"""Definitions only: the imports, classes, functions and literal constants of a notebook cell, via ``ast``.

A student's answer cell should define things (``class CNN``, ``def train``) but may also *do* things: train for an
hour, print, plot, call a half-written function. The grader wants the definitions only, so it parses the cell and
keeps these top-level statements, verbatim:

* ``import ...`` and ``from ... import ...``;
* ``class`` and ``def`` / ``async def``, each with its decorators;
* simple constant assignments of literals to plain names (``NUM = 3``, ``SIZES = (8, 16)``, ``X: int = 3``).

Everything else at the top level (calls, loops, ``if __name__ == "__main__":`` blocks, ``try`` blocks, assignments
from calls, assignments to attributes or items, ...) is dropped and reported, one short line per statement.
Dropped lines become empty lines, so the kept code has the cell's line numbers and a traceback points at the
student's own line.

IPython syntax is neutralised first (only when the cell is not already valid Python): line magics (``%time``),
shell escapes (``!ls``, ``files = !ls``), help (``obj?``, ``?obj``) and cell magics (``%%time``) at the start of a
logical line become ``pass`` at the same indentation (so a block keeps a body and the line count stays the same).
A first-line cell magic whose body is not Python (``%%bash``, ``%%writefile``, ...) blanks the whole cell.

**Not a security boundary.** Keeping only definitions does not mean that executing the result runs no student code:
a class body runs when the class is defined, default arguments, decorators and annotations are evaluated at
definition time, and an ``import`` runs a module. Isolation is the sandbox's job (``autograder/sandbox``); this
module only keeps accidental work (training runs, prints, plots) out of the grader.
"""
from __future__ import annotations

import ast
import re
import warnings

__all__ = ["ExtractionError", "definitions_only", "try_definitions_only", "neutralise_ipython"]

# Cell magics whose body is Python code: only the ``%%`` line is removed.
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit", "mprun", "py", "python", "python3"})

_HELP = re.compile(r"^[A-Za-z_*][\w.*]*\?{1,2}$")  # obj?  obj.attr??  np.*load*?
_ASSIGN_MAGIC = re.compile(r"^[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s*=\s*[%!]")  # files = !ls ; t = %timeit -o f()
_SHOWN = 70  # characters of a dropped statement shown in the report


class ExtractionError(Exception):
    """The cell is not valid Python (after IPython syntax is neutralised); ``line``/``offset`` are 1-based."""

    def __init__(self, msg: str, line: int | None = None, offset: int | None = None, text: str | None = None):
        super().__init__(msg)
        self.msg = msg
        self.line = line
        self.offset = offset
        self.text = text

    @classmethod
    def from_syntax_error(cls, error: BaseException) -> "ExtractionError":
        if isinstance(error, SyntaxError):
            return cls(error.msg or "invalid syntax", error.lineno, error.offset, error.text)
        return cls(str(error) or type(error).__name__)

    def __str__(self) -> str:
        where = f" at line {self.line}" if self.line else ""
        if self.line and self.offset:
            where += f", column {self.offset}"
        message = f"Python could not read your code{where}: {self.msg}"
        text = (self.text or "").rstrip("\r\n")
        if text.strip():
            stripped = text.lstrip()
            message += f"\n    {stripped}"
            if len(stripped) > 2 * _SHOWN:
                return message[: -len(stripped)] + stripped[: 2 * _SHOWN] + " ..."
            if self.offset and self.offset > 0:
                column = self.offset - 1 - (len(text) - len(stripped))
                if 0 <= column <= len(stripped):
                    message += "\n    " + " " * column + "^"
        return message


# --- IPython syntax ------------------------------------------------------------------------------------------------

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


# --- Definitions only ----------------------------------------------------------------------------------------------

_UNSAFE_IN_ANNOTATION = (ast.Call, ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom,
                         ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _plain_target(target: ast.AST) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return bool(target.elts) and all(isinstance(e, ast.Name) for e in target.elts)
    return False


def _keep(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if isinstance(node, ast.Assign):
        return all(_plain_target(t) for t in node.targets) and _is_literal(node.value)
    if isinstance(node, ast.AnnAssign):
        return (isinstance(node.target, ast.Name) and node.value is not None and _is_literal(node.value)
                and not any(isinstance(n, _UNSAFE_IN_ANNOTATION) for n in ast.walk(node.annotation)))
    return False


def _silent(node: ast.stmt) -> bool:
    """Dropped without a report: ``pass`` (also what magics became) and bare strings (docstrings)."""
    return isinstance(node, ast.Pass) or (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))


def _segment(lines: list[str], node: ast.stmt) -> tuple[int, list[str]]:
    """The node's text as (first line index, pieces per line), decorators included; columns are UTF-8 offsets."""
    start_line, start_col = node.lineno, node.col_offset
    decorators = getattr(node, "decorator_list", None)
    if decorators:
        start_line, start_col = min(d.lineno for d in decorators), 0
    end_line, end_col = node.end_lineno, node.end_col_offset
    raw = [lines[k].encode("utf-8") for k in range(start_line - 1, end_line)]
    if len(raw) == 1:
        pieces = [raw[0][start_col:end_col]]
    else:
        pieces = [raw[0][start_col:], *raw[1:-1], raw[-1][:end_col]]
    return start_line - 1, [p.decode("utf-8") for p in pieces]


def _parse(text: str, filename: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning/DeprecationWarning about the student's escapes etc.
        return ast.parse(text, filename=filename)


def definitions_only(source: str, filename: str = "<cell>") -> tuple[str, list[str]]:
    """Return ``(code, dropped)``: the cell's top-level definitions, verbatim and on their original lines, and one
    line per dropped statement (``"line 12: cnn = CNN(...)"``), IPython commands included.

    Raises :class:`ExtractionError` when the cell is not valid Python (after IPython syntax is neutralised), or when
    the kept code does not compile (e.g. ``nonlocal`` without a binding). Executing ``code`` still runs class
    bodies, decorators, default arguments and imports: this is not a security boundary.
    """
    if not isinstance(source, str):
        raise ExtractionError(f"the cell's source is a {type(source).__name__}, not text")
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    magics: list[tuple[int, str]] = []
    try:
        try:
            tree = _parse(text, filename)
        except (SyntaxError, ValueError):
            text, magics = _neutralise(text)
            tree = _parse(text, filename)
    except (SyntaxError, ValueError) as error:  # ValueError: null bytes (Python < 3.12)
        raise ExtractionError.from_syntax_error(error) from None
    except (RecursionError, MemoryError) as error:
        raise ExtractionError(f"the code is nested too deeply for Python to read ({type(error).__name__})") from None
    lines = text.split("\n")
    out = [""] * len(lines)
    dropped: list[tuple[int, str]] = list(magics)
    for node in tree.body:
        if _keep(node):
            first, pieces = _segment(lines, node)
            for k, piece in enumerate(pieces):
                index = first + k
                # Only a statement after ``;`` shares a line: join it to what is kept there, at column 0.
                out[index] = f"{out[index]}; {piece}" if out[index] else piece
        elif not _silent(node):
            shown = _segment(lines, node)[1]
            dropped.append((node.lineno, f"line {node.lineno}: {_brief(shown[0], multiline=len(shown) > 1)}"))
    code = "\n".join(out)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        raise ExtractionError.from_syntax_error(error) from None
    except (RecursionError, MemoryError) as error:
        raise ExtractionError(f"the code is nested too deeply for Python to compile ({type(error).__name__})") from None
    return code, [message for _, message in sorted(dropped, key=lambda item: item[0])]


def try_definitions_only(source: str, filename: str = "<cell>") -> tuple[str | None, list[str], str | None]:
    """Like :func:`definitions_only` but never raises: ``(code, dropped, None)`` or ``(None, [], message)``."""
    try:
        code, dropped = definitions_only(source, filename)
    except ExtractionError as error:
        return None, [], str(error)
    except Exception as error:  # noqa: BLE001 - the grader must go on; report what happened
        return None, [], f"Python could not read your code: {type(error).__name__}: {error}"
    return code, dropped, None
