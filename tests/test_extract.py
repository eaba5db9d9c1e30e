"""autograder.extract: definitions only, IPython syntax neutralised, syntax errors as messages."""
import ast
import json
import traceback

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autograder.extract import ExtractionError, definitions_only, neutralise_ipython, try_definitions_only
from autograder.submission import MASTER

CELL = '''\
"""A docstring is dropped silently."""
import os; x = f(); import sys
from math import (pi,
    tau); y = 2
NUM = 3
SIZES = (8, -16, 2.5, "a", None, {"k": [1, 2]})
A, B = 1, 2
T: int = 5
U: f() = 5
obj.attr = 5
z = torch.zeros(3)
@decorator
# a comment between decorators
@other(1)
class X:
    """%d items
!not a shell command
what?
"""
    def f(self):
        return 1
async def h(): pass
if __name__ == "__main__":
    main()
for i in range(3):
    print(i)
print("done")
'''

KEPT = '''\

import os; import sys
from math import (pi,
    tau); y = 2
NUM = 3
SIZES = (8, -16, 2.5, "a", None, {"k": [1, 2]})
A, B = 1, 2
T: int = 5



@decorator
# a comment between decorators
@other(1)
class X:
    """%d items
!not a shell command
what?
"""
    def f(self):
        return 1
async def h(): pass





'''

DROPPED = [
    "line 2: x = f()",
    "line 9: U: f() = 5",
    "line 10: obj.attr = 5",
    "line 11: z = torch.zeros(3)",
    'line 23: if __name__ == "__main__": ...',
    "line 25: for i in range(3): ...",
    'line 27: print("done")',
]


def test_keeps_definitions_verbatim_on_their_lines_and_reports_the_rest():
    code, dropped = definitions_only(CELL)
    assert code == KEPT
    assert dropped == DROPPED
    assert len(code.split("\n")) == len(CELL.split("\n"))
    compile(code, "<cell>", "exec")


def test_tracebacks_point_at_the_students_lines():
    source = 'train_for_an_hour()\n\n\ndef broken():\n    """doc"""\n    return 1 / 0\n'
    code, dropped = definitions_only(source, filename="<cnn_model>")
    assert dropped == ["line 1: train_for_an_hour()"]
    namespace = {}
    exec(compile(code, "<cnn_model>", "exec"), namespace)
    with pytest.raises(ZeroDivisionError) as info:
        namespace["broken"]()
    frame = traceback.extract_tb(info.tb)[-1]
    assert (frame.filename, frame.lineno) == ("<cnn_model>", 6)


@pytest.mark.parametrize("statement", [
    "x = f()", "x = [f() for f in fs]", "x += 1", "del x", "global x", "x = y", "x = 1 + y", "obj.x = 1",
    "d['k'] = 1", "x = lambda: 1", "with open('f') as h:\n    pass", "try:\n    import torchvision\nexcept ImportError:\n    pass",
    "while True:\n    break", "assert x", "raise SystemExit", "x: f() = 1", "x: int", "await thing()", "return 5",
])
def test_everything_but_definitions_is_dropped(statement):
    code, dropped = definitions_only(statement)
    assert code.strip() == ""
    assert dropped == [f"line 1: {statement.splitlines()[0]}" + (" ..." if "\n" in statement else "")]


@pytest.mark.parametrize("statement", [
    "import torch", "import torch.nn as nn", "from a2cnn.layers import MyConv2d", "from x import *", "X = 3", "X = Y = -3.5",
    "X = 'text'", "X = b'raw'", "X = (1, (2, 3))", "X = {'a': {1, 2}}", "X = None", "X = True", "(A, B) = (1, 2)",
    "X: float = 1e-3", "X = 1 + 2j", "def f(a, b=3, *c, d, **e):\n    return a",
    "@torch.no_grad()\ndef f():\n    pass", "class A(nn.Module):\n    pass", "async def f():\n    await g()",
])
def test_definitions_and_literal_constants_are_kept_verbatim(statement):
    code, dropped = definitions_only(statement)
    assert (code, dropped) == (statement, [])


def test_pass_and_bare_strings_are_dropped_silently():
    assert definitions_only('"""doc"""\npass\n...\n') == ("\n\n\n", ["line 3: ..."])


@pytest.mark.parametrize("source, kept, dropped", [
    ("%matplotlib inline\nimport torch", "\nimport torch", ["line 1: %matplotlib inline (IPython magic, ignored)"]),
    ("!pip install torch\nX = 1", "\nX = 1", ["line 1: !pip install torch (shell command, ignored)"]),
    ("files = !ls\nX = 1", "\nX = 1", ["line 1: files = !ls (IPython magic, ignored)"]),
    ("t = %timeit -o f()\nX = 1", "\nX = 1", ["line 1: t = %timeit -o f() (IPython magic, ignored)"]),
    ("torch.zeros?\nX = 1", "\nX = 1", ["line 1: torch.zeros? (IPython help, ignored)"]),
    ("??torch.zeros\nX = 1", "\nX = 1", ["line 1: ??torch.zeros (IPython help, ignored)"]),
    ("%%time\nimport os\ntrain()", "\nimport os\n", ["line 1: %%time (IPython cell magic, ignored)", "line 3: train()"]),
    ("\n%%capture out\nimport os", "\n\nimport os", ["line 2: %%capture out (IPython cell magic, ignored)"]),
    ("%%bash\nls -l\nrm -rf x", "\n\n", ["line 1: %%bash (a cell that is not Python, ignored)"]),
    ("%%writefile x.py\nimport os", "\n", ["line 1: %%writefile x.py (a cell that is not Python, ignored)"]),
    ("!pip install \\\n   torch\nX = 1", "\n\nX = 1", ["line 1: !pip install \\ (shell command, ignored)"]),
    ("def f():\n    %time g()\n", "def f():\n    pass\n", ["line 2: %time g() (IPython magic, ignored)"]),
    ("class A:\n    def f(self):\n        !ls\n        return 1\n", "class A:\n    def f(self):\n        pass\n        return 1\n",
     ["line 3: !ls (shell command, ignored)"]),
])
def test_ipython_syntax_is_neutralised_with_stable_line_numbers(source, kept, dropped):
    assert definitions_only(source) == (kept, dropped)


def test_magic_lookalikes_inside_strings_and_brackets_are_left_alone():
    source = ('%matplotlib inline\n'
              'def f():\n    """%d items\n!important\nwhat?\n%%time\n"""\n    return 1\n'
              "X = '''\n%s\n'''\n"
              "Y = ('a',\n     'b?')\n"
              "Z = 'x' \\\n    '%y'\n")
    code, dropped = definitions_only(source)
    assert dropped == ["line 1: %matplotlib inline (IPython magic, ignored)"]
    namespace = {}
    exec(code, namespace)
    assert namespace["f"].__doc__ == "%d items\n!important\nwhat?\n%%time\n"
    assert (namespace["X"], namespace["Y"], namespace["Z"]) == ("\n%s\n", ("a", "b?"), "x%y")


def test_valid_python_is_never_rewritten():
    source = "def f():\n    return (3\n% 2)\nX = 1 % 2\nZ = not 1 != 2\n"  # '%' at a line start inside valid code
    assert definitions_only(source) == ("def f():\n    return (3\n% 2)\n\n\n", ["line 4: X = 1 % 2", "line 5: Z = not 1 != 2"])


@pytest.mark.parametrize("source, line, offset, text", [
    ("import os\n\ndef f(:\n    pass\n", 3, 7, "def f(:\n"),
    ("class A:\nx = 1\n", 2, 1, "x = 1\n"),
    ("X = (1,\n%time 2)\n", 2, 1, "%time 2)\n"),
])
def test_syntax_errors_come_back_as_clear_messages(source, line, offset, text):
    with pytest.raises(ExtractionError) as info:
        definitions_only(source)
    error = info.value
    assert (error.line, error.offset, error.text) == (line, offset, text)
    code, dropped, message = try_definitions_only(source)
    assert code is None and dropped == []
    assert message.startswith(f"Python could not read your code at line {line}, column {offset}: ")
    assert text.strip() in message


@pytest.mark.parametrize("source, phrase", [
    ("X = 1\0", "null bytes"),
    ("(" * 300, "too many nested parentheses"),
    ("X = " + "-" * 200000 + "1", "nested too deeply"),
    ("def f():\n    nonlocal q\n", "line 2"),
    (b"import os", "not text"),
    (None, "not text"),
])
def test_unreadable_code_never_raises_out_of_try_definitions_only(source, phrase):
    code, dropped, message = try_definitions_only(source)
    assert code is None and dropped == []
    assert phrase in message


def test_the_master_solutions_keep_their_definitions():
    # Plain JSON (importing nbformat is slow); test_submission covers reading the master properly.
    cells = json.loads(MASTER.read_text(encoding="utf-8"))["cells"]
    master = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in cells if "nbgrader" in c["metadata"]}
    for grade_id, name in [("cnn_model", "CNN"), ("unet_model", "UNet"), ("finetune_train", "train"), ("finetune_setup", "freeze_and_replace")]:
        code, dropped = definitions_only(master[grade_id])
        assert dropped == [], grade_id
        assert [n.name for n in ast.parse(code).body] == [name]
    code, dropped = definitions_only(master["setup_imports"])
    assert "import torch.nn as nn" in code and "%matplotlib" not in code
    assert dropped[0] == "line 1: %matplotlib inline (IPython magic, ignored)"
    assert any("print(" in d for d in dropped)


def test_neutralise_keeps_the_line_count():
    text, report = neutralise_ipython("%a\r\n!b\rc?\nX = 1")
    assert text == "pass\npass\npass\nX = 1"
    assert len(report) == 3


# --- Random cells --------------------------------------------------------------------------------------------------

KEEP = [
    "import os", "import torch.nn as nn", "from math import (pi,\n    tau)", "from a2cnn.layers import MyConv2d",
    "NUM = 3", "NAMES = ('a', 'b')", "RATE: float = 1e-3", "A, B = 1, 2",
    "def f(x, y=2):\n    return x + y", "async def g():\n    await f()",
    "@decorate(1)\nclass C(Base):\n    '''%d lines\n!kept\nwhy?\n'''\n    def m(self):\n        return 1",
    "class D:\n    pass",
]
DROP = [
    "x = f()", "print('hi')", "for i in range(3):\n    print(i)", "if __name__ == '__main__':\n    main()",
    "obj.attr = 1", "train(model, epochs=100)", "while False:\n    pass", "with open('x') as h:\n    h.read()",
    "try:\n    import torchvision\nexcept ImportError:\n    pass", "x += 1", "y = [i for i in range(3)]",
]
MAGIC = ["%matplotlib inline", "!pip install torch", "files = !ls", "torch.zeros?", "??f", "%time f()", "%%timeit -n1"]

snippets = st.lists(st.one_of(
    st.sampled_from(KEEP).map(lambda s: ("keep", s)),
    st.sampled_from(DROP).map(lambda s: ("drop", s)),
    st.sampled_from(MAGIC).map(lambda s: ("magic", s)),
    st.sampled_from(['"""a docstring"""', "pass"]).map(lambda s: ("silent", s)),
), max_size=12)


def _dump(source):
    return [ast.dump(node) for node in ast.parse(source).body]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=snippets, indented_magic=st.sampled_from(MAGIC[:6]))
def test_random_cells_keep_exactly_their_definitions(parts, indented_magic):
    # A magic may also sit inside a function body, at the body's indentation.
    parts = parts + [("keep", f"def h():\n    {indented_magic}\n    return 1")] if parts and parts[0][0] == "magic" else parts
    source = "\n".join(text for _, text in parts)
    code, dropped = definitions_only(source)
    compile(code, "<cell>", "exec")
    expected = [d for kind, text in parts if kind == "keep" for d in _dump(text.replace(indented_magic, "pass"))]
    assert _dump(code) == expected
    assert len(dropped) == sum(kind in ("drop", "magic") for kind, _ in parts) + sum(
        kind == "keep" and indented_magic in text for kind, text in parts)
    # Kept snippets sit on their original lines, verbatim.
    lines, line = code.split("\n"), 0
    for kind, text in parts:
        count = text.count("\n") + 1
        if kind == "keep":
            assert lines[line:line + count] == text.replace(indented_magic, "pass").split("\n")
        line += count


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.sampled_from(KEEP[:8] + DROP[:2] + DROP[4:6]), min_size=1, max_size=5))
def test_statements_sharing_a_line_are_split_correctly(parts):
    simple = [p for p in parts if "\n" not in p]
    if not simple:
        return
    code, dropped = definitions_only("; ".join(simple))
    assert _dump(code) == [d for p in simple if p in KEEP for d in _dump(p)]
    assert len(dropped) == sum(p not in KEEP for p in simple)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("%!?\"'#()[]{}\\ \n\tabcdef=:;.,0123456789")), max_size=80))
def test_arbitrary_text_never_raises(text):
    code, dropped, message = try_definitions_only(text)
    assert (code is None) == (message is not None)
    if code is not None:
        compile(code, "<cell>", "exec")
        assert len(code.split("\n")) == len(text.replace("\r\n", "\n").split("\n"))
