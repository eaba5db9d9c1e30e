"""The worker's cell runner: a cell that runs past its limit counts as not run, one that raises keeps what it defined."""
from autograder.worker.cells import run_code


def test_a_cell_that_runs_past_its_limit_leaves_the_names_as_they_were_before_it():
    ns = {"kept": 1, "replaced": "old"}
    source = "class CNN:\n    pass\nreplaced = 'new'\ndel kept\nwhile True:\n    pass\n"
    result = run_code(ns, source, "<cell cnn_model>", 0.2)
    assert result["status"] == "timeout"
    assert "CNN" not in ns and ns["replaced"] == "old" and ns["kept"] == 1


def test_a_cell_that_swallows_the_first_interrupt_is_still_taken_back():
    ns = {}
    source = "class CNN:\n    pass\ntry:\n    while True:\n        pass\nexcept BaseException:\n    pass\nwhile True:\n    pass\n"
    result = run_code(ns, source, "<cell cnn_model>", 0.2)
    assert result["status"] == "timeout" and "CNN" not in ns


def test_a_cell_that_raises_keeps_what_it_defined_before_the_error_as_in_jupyter():
    ns = {}
    result = run_code(ns, "class CNN:\n    pass\nraise ValueError('late')\n", "<cell cnn_model>", 5)
    assert result["status"] == "error" and result["error"]["type"] == "ValueError"
    assert "CNN" in ns


def test_a_cell_that_finishes_keeps_its_names():
    ns = {}
    assert run_code(ns, "x = 41 + 1\n", "<cell scratch>", 5)["status"] == "ok"
    assert ns["x"] == 42
