"""README's table of the reference's results is generated from the calibration files and kept in sync."""
import json
import shutil

from autograder import calibrate, calibration_table


def test_the_readme_table_is_the_one_the_calibration_files_give():
    block = calibration_table.readme_block(calibration_table.README.read_text())
    assert block == calibration_table.table(), "run `python -m autograder calibrate --update-readme`"


def test_rows_are_mean_and_sd_of_the_recorded_runs(tmp_path):
    record = json.loads((calibrate.CALIBRATION_DIR / "cpu.json").read_text())
    for run, loss in zip(record["models"]["unet"]["runs"], (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)):
        run["val_loss"] = loss
    (tmp_path / "cpu.json").write_text(json.dumps(record))
    text = calibration_table.table(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| `cpu`"))
    assert "| 4.500 ± 2.449 |" in row  # mean and sample sd of 1..8
    assert "Not calibrated yet: gpu." in text  # no gpu.json in this folder


def test_a_partial_calibration_is_not_in_the_table_and_the_readme_follows_the_files(tmp_path):
    shutil.copy(calibrate.CALIBRATION_DIR / "cpu.json", tmp_path / "cpu.json")
    partial = json.loads((calibrate.CALIBRATION_DIR / "gpu.json").read_text())
    partial["status"], partial["seeds"] = "partial", partial["seeds"][:2]
    (tmp_path / "gpu.json").write_text(json.dumps(partial))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{calibration_table.BEGIN}\nold table\n{calibration_table.END}\noutro\n")
    assert calibration_table.update_readme(readme, tmp_path) is True
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    assert "| `gpu`" not in text and "Not calibrated yet: gpu." in text
    assert calibration_table.update_readme(readme, tmp_path) is False
