"""What a person sees on stderr while a class is graded: one line for the class, live counts, final tables."""
import io

from autograder.batch import Record
from autograder.progress import ClassProgress, duration


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _record(student, seconds, checks=None, not_run=(), errors=()):
    checks = {"cnn_layers": 0.5, "cnn_params": 0.0} if checks is None else checks
    return Record(student=student, key="k", score=sum(checks.values()), max_score=1.0, checks=checks,
                  not_run=list(not_run), grader_errors=list(errors), seconds=seconds)


def test_on_a_terminal_the_class_line_has_count_rate_eta_and_live_counts():
    stream, clock = io.StringIO(), Clock()
    progress = ClassProgress(total=4, current=2, jobs=2, stream=stream, tty=True, clock=clock, width=200)
    assert "grading 4 submissions (2 already graded and current), 2 at a time" in stream.getvalue()
    clock.now += 30
    progress.update(_record("alice", 29.0))
    clock.now += 30
    progress.update(_record("bob", 31.0, {"cnn_layers": 0.5, "finetune_learns": 0.0}, not_run=["finetune_learns"]))
    line = stream.getvalue().split("\r\x1b[2K")[-1]
    assert line.startswith("2/4 [") and " 50% " in line
    assert "2.0/min" in line and "ETA 1m00s" in line  # 2 in 60 s, 2 to go
    assert "checks: 2 passed, 1 failed, 1 not run" in line


def test_elsewhere_only_a_line_now_and_then_and_one_at_the_end():
    stream, clock = io.StringIO(), Clock()
    progress = ClassProgress(total=100, stream=stream, tty=False, every=60, clock=clock)
    for i in range(100):
        clock.now += 5  # a grade every 5 s: 500 s in all
        progress.update(_record(f"s{i:03d}", 5.0))
    progress.close()
    lines = stream.getvalue().splitlines()
    progress_lines = [line for line in lines if line.startswith(("0/", "1", "2", "3", "4", "5", "6", "7", "8", "9"))]
    assert 8 <= len(progress_lines) <= 10  # every 60 s, not every grade
    assert "\r" not in stream.getvalue()
    assert progress_lines[-1].startswith("100/100 [") and "in 8m20s" in progress_lines[-1]


def test_the_end_shows_the_slowest_submissions_and_every_grader_error():
    stream, clock = io.StringIO(), Clock()
    progress = ClassProgress(total=7, stream=stream, tty=False, clock=clock)
    for i, seconds in enumerate([3.0, 50.0, 7.0, 41.5, 2.0, 9.0]):
        progress.update(_record(f"s{i}", seconds))
    progress.update(_record("carol", 1.0, errors=["cnn: grading process failed: BrokenProcessPool: " + "x" * 1000]))
    progress.close()
    text = stream.getvalue()
    slowest = text[text.index("slowest submissions:"):text.index("grader errors")].splitlines()[2:]
    assert [row.split()[0] for row in slowest] == ["s1", "s3", "s5", "s2", "s0"]
    assert "50.0" in slowest[0]
    errors = text[text.index("grader errors"):].splitlines()[2:]
    assert errors[0].split()[0] == "carol" and "BrokenProcessPool" in errors[0] and len(errors[0]) < 260
    assert "| 1 grader error" in text


def test_durations_read_as_a_person_writes_them():
    assert [duration(s) for s in (4.4, 61, 3599, 3600 * 5 + 120)] == ["4s", "1m01s", "59m59s", "5h02m"]
