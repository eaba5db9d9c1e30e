"""coursetools.reference_run trains the reference with the notebook's loop and prints one line per model."""
import math
import re

import pytest

from coursetools import reference_run


@pytest.mark.slow
def test_one_epoch_of_the_reference_cnn_beats_guessing(mirror_dir, monkeypatch, capsys):
    monkeypatch.setenv("A2_DATA_DIR", str(mirror_dir))
    monkeypatch.delenv("A2_FAST", raising=False)
    reference_run.main(["--epochs", "1", "--models", "CNN"])
    out = capsys.readouterr().out
    assert "5000 training and 1000 validation horses" in out
    match = re.search(r"CNN: 1 epochs: .*val loss (\d+\.\d+), val accuracy (\d+\.\d)%", out)
    assert match, out
    assert float(match.group(1)) < math.log(24)  # better than a uniform guess over the 24 colours
