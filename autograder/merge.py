"""Put a class back together from the result folders of its shards (``batch --shard i/n``, one per CI job).

Every student's files (``<student>.json``, ``<student>.instructor.log``, ``.state/<student>.json``) are copied into
one folder, each atomically and the record last, and ``grades.csv`` is rebuilt from the records there, so it agrees
with the per-student files. The folder's own records count as one more source. Nothing is copied when the sources
disagree: the same student with two different results, a record without its results file, or records from
different graders or settings (a class is graded by one grader).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .batch import STATE_DIR, Record, load_record, save_record, write_table

SHOWN = 10  # conflicts named in the message; the rest are counted


class MergeError(ValueError):
    """The sources cannot be merged; nothing was written."""


def read_folder(folder: Path) -> dict:
    """{student: Record} of one result folder."""
    if not (folder / STATE_DIR).is_dir():
        raise MergeError(f"{folder}: no graded results here (no {STATE_DIR}/ folder); is it a batch --out folder?")
    records = {}
    for path in sorted((folder / STATE_DIR).glob("*.json")):
        record = load_record(folder, path.stem)
        if record is None or record.student != path.stem:
            raise MergeError(f"{path}: not a grade record (damaged, or from another version of the grader)")
        if not record.grader_errors and not (folder / f"{record.student}.json").is_file():
            raise MergeError(f"{folder}: {record.student} has a record but no {record.student}.json")
        records[record.student] = record
    return records


def _describe(record: Record, folder: Path) -> str:
    what = "grader error" if record.grader_errors else f"{record.score:g}/{record.max_score:g}"
    return f"{folder} ({what}, submission key {record.key[:8]})"


def plan(sources: list, out_dir: Path) -> dict:
    """{student: (Record, source folder)}; MergeError when the sources disagree."""
    folders = [Path(s) for s in sources]
    out_dir = Path(out_dir)
    if (out_dir / STATE_DIR).is_dir() and all(f.resolve() != out_dir.resolve() for f in folders):
        folders.append(out_dir)  # what is there already must agree too
    chosen, conflicts, graders = {}, [], {}
    for folder in folders:
        for student, record in read_folder(folder).items():
            if record.grader:
                graders.setdefault(record.grader, folder)
            if student not in chosen:
                chosen[student] = (record, folder)
            elif chosen[student][0].verdict() != record.verdict():
                conflicts.append(f"{student}: {_describe(*chosen[student])} vs {_describe(record, folder)}")
    if conflicts:
        more = f" and {len(conflicts) - SHOWN} more" if len(conflicts) > SHOWN else ""
        raise MergeError(f"{len(conflicts)} students have different results in different folders (grade each "
                         f"student in one shard only, or regrade them): " + "; ".join(conflicts[:SHOWN]) + more)
    if len(graders) > 1:
        seen = ", ".join(f"{folder} ({grader[:8]})" for grader, folder in graders.items())
        raise MergeError(f"the folders were graded by different graders or settings: {seen}; regrade them all with "
                         "the same grader and settings (a rerun of batch regrades only what is out of date)")
    return chosen


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.merging")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def merge(sources: list, out_dir) -> dict:
    """Merge the result folders ``sources`` into ``out_dir``; returns {student: Record} of the merged class."""
    out_dir = Path(out_dir)
    chosen = plan(sources, out_dir)
    (out_dir / STATE_DIR).mkdir(parents=True, exist_ok=True)
    for student, (record, folder) in sorted(chosen.items()):
        if folder.resolve() == out_dir.resolve():
            continue
        for name in (f"{student}.json", f"{student}.instructor.log"):
            if (folder / name).is_file():
                _copy_atomic(folder / name, out_dir / name)
            else:
                (out_dir / name).unlink(missing_ok=True)
        save_record(out_dir, record)  # last: it says the files above are complete
    table = {student: record for student, (record, _folder) in chosen.items()}
    write_table(out_dir, table)
    return dict(sorted(table.items()))
