"""Command line of the grader.

    python -m autograder grade SUBMISSION.ipynb [--json results.json] [--parts cnn,unet,...] [--tier cpu|gpu|auto]
    python -m autograder grade SUBMISSION.ipynb --classroom [--min-score POINTS]   (GitHub Classroom, CI)
    python -m autograder batch SUBMITTED_DIR [--out results/] [--tier ...] [--jobs N] [--regrade] [--student ID,...]
                                             [--shard i/n] [--regrade-not-run] [--engine ray [--address A]]
    python -m autograder merge RESULTS_DIR ... --out DIR     one class folder from the shards' folders
    python -m autograder calibrate --tier cpu|gpu|auto [--seeds 0,1,2,3,4]
    python -m autograder package gradescope --out autograder.zip [--parts ...] [--tier ...] [results options]
    python -m autograder config [--config PATH] [--set NAME=VALUE]   every setting's value, source and meaning

Settings (`config` lists them) come from their defaults, then the settings file (--config PATH, else the course's
nbgrader_config.py beside the grader, never one in the current folder: its A2Grader section, e.g.
`c.A2Grader.cell_seconds = 90`), then the command line (--set NAME=VALUE, --tier, --parts, ...), the later winning
(autograder/settings.py).

`grade --classroom` (autograder/classroom.py) has exit codes of its own: 0 the score reaches the bar, 1 it
does not, 2 usage error, 4 grader error; stderr empty unless something went wrong.
"""
import argparse
import sys
import textwrap
from pathlib import Path

from . import class_report
from .config import TIER_CHOICES, GraderConfig
from .gradescope import NOT_RUN_POLICIES, VISIBILITIES, ResultsSettingError
from .settings import FIELDS, SettingError, Settings, describe, resolve


def _settings(args) -> Settings:
    """Defaults, then the settings file, then the command line (``--set``, then the named flags)."""
    overrides = {}
    for item in getattr(args, "set", None) or ():
        name, equals, value = item.partition("=")
        if not equals:
            raise SettingError(f"command line: --set {item!r}: expected NAME=VALUE")
        overrides[name.strip()] = value
    overrides.update({name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None})
    return resolve(getattr(args, "config", None), overrides)


def _config(args) -> GraderConfig:
    return _settings(args).config


def _settings_options(command):
    command.add_argument("--config", metavar="PATH", help="the settings file (default: the course's "
                                                          "nbgrader_config.py beside the grader; its A2Grader section)")
    command.add_argument("--set", action="append", metavar="NAME=VALUE",
                         help="set any setting (repeat for more; `config` lists them); wins over the file")


def _results_options(command):
    _settings_options(command)
    command.add_argument("--visibility", choices=VISIBILITIES, help="Gradescope visibility of every test")
    command.add_argument("--check-visibility", metavar="CHECK=VIS,...",
                         help="visibility of some checks (e.g. cnn_learns=after_due_date)")
    command.add_argument("--not-run-policy", choices=NOT_RUN_POLICIES,
                         help="a check that cannot run here: zero (default) or exclude")


def cmd_grade(args):
    from .grade import grade_notebook
    from .results import instructor_log_path, settings_of, summary_text, write_json

    if not Path(args.submission).is_file():
        print(f"no such file: {args.submission}", file=sys.stderr)
        return 2
    settings = _settings(args)
    config = settings.config
    if args.classroom:
        return _grade_classroom(args, settings)
    report = grade_notebook(args.submission, config, on_part=lambda part: print(f"grading {part} ...", file=sys.stderr, flush=True))
    print(summary_text(report, show_logs=args.show_output))
    if args.json:
        write_json(report, args.json, **settings_of(config))
        print(f"results written to {args.json} (instructor log: {instructor_log_path(args.json)})")
    return class_report.exit_code([report_outcome(report)])


def report_outcome(report):
    """What the exit code needs of one grade: its grader errors and the checks that could not run."""
    import types

    return types.SimpleNamespace(grader_errors=report.grader_errors,
                                 not_run=[r.name for r in report.results if r.status == "not run"])


def print_class_summary(records, out_dir, what):
    """The lines after a class: where the results are, what could not run and why, who to regrade."""
    not_run = class_report.not_run_summary(records)
    print(f"{what}; results in {out_dir}/ (one JSON per student, grades.csv)")
    if not_run:
        print(not_run)
    failed = [record.student for record in records if record.grader_errors]
    if failed:  # the progress table on stderr says why
        print(f"grader errors (regrade these: a rerun does): {', '.join(failed)}")
    return class_report.exit_code(records)


def _grade_classroom(args, settings: Settings) -> int:
    """``grade --classroom``: exit 0 at or above the bar, 1 below it, 4 on a grader error; stderr only for errors
    (``classroom.py``)."""
    from . import classroom
    from .grade import grade_notebook
    from .results import settings_of, write_json

    config = settings.config
    if args.show_output:
        raise SettingError("command line: --show-output is for instructors, not with --classroom (use --json: its "
                           "instructor log holds what the code printed)")
    try:
        classroom.check_bar(config)
    except ValueError as exc:
        raise SettingError(f"{settings.sources['min_score']}: {exc}") from None
    kept = []
    try:
        with classroom.quiet_stderr(kept):
            report = grade_notebook(args.submission, config)
    except Exception as exc:  # noqa: BLE001 - a grader bug; its text may hold machine paths, so only its kind here
        print(f"grader error: the grader failed ({type(exc).__name__}), not the submission; grade it again without "
              "--classroom to see why", file=sys.stderr)
        return classroom.GRADER_ERROR
    report.log += kept
    verdict = classroom.verdict(report, config)
    print(classroom.summary(report, verdict))
    if args.json:
        write_json(report, args.json, **settings_of(config))
    if report.grader_errors:
        parts = ", ".join(part.part for part in report.parts if part.grader_error)
        print(f"grader error: part(s) {parts} could not be graded (not the submission's fault); regrade them",
              file=sys.stderr)
        return classroom.GRADER_ERROR
    return classroom.PASSED if verdict.passed else classroom.BELOW_BAR


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt  # a CI job cancelled (SIGTERM) stops like Ctrl-C: the files it leaves agree


def cmd_batch(args):
    import signal

    from .batch import grade_tree, parse_shard

    if not Path(args.submitted).is_dir():
        print(f"no such folder: {args.submitted}", file=sys.stderr)
        return 2
    students = [s.strip() for s in args.student.split(",") if s.strip()] if args.student else None
    try:
        shard = parse_shard(args.shard) if args.shard else None
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            rows = grade_tree(args.submitted, args.out, _config(args), regrade=args.regrade, students=students,
                              shard=shard, regrade_not_run=args.regrade_not_run, engine=args.engine,
                              address=args.address)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except SettingError:
        raise
    except ValueError as exc:  # an unknown --student, a bad --shard, Ray missing or unreachable
        print(f"usage error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the grades finished so far are in {args.out}/ and grades.csv lists them; run the same "
              "command again to grade the rest", file=sys.stderr)
        return class_report.INTERRUPTED
    for student, record in rows:
        print(f"{student}: {record.score:g} / {record.max_score:g}{'  (' + record.fatal + ')' if record.fatal else ''}")
    return print_class_summary([record for _student, record in rows], args.out, f"{len(rows)} submissions")


def cmd_merge(args):
    from .merge import MergeError, merge

    missing = [folder for folder in args.folders if not Path(folder).is_dir()]
    if missing:
        print(f"no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        table = merge(args.folders, args.out)
    except MergeError as exc:
        print(f"cannot merge: {exc}", file=sys.stderr)
        return 2
    return print_class_summary(list(table.values()), args.out,
                               f"{len(table)} students from {len(args.folders)} folders")


def cmd_package(args):
    from .package import gradescope as package

    info = package.build(args.out, _config(args))
    print(f"Gradescope autograder package written to {info['path']} ({info['bytes'] / 1024:.0f} KiB, "
          f"{info['files']} files); upload it as the assignment's autograder (zip file, Ubuntu base image)")
    return 0


def isolation_line() -> str:
    """One line for the instructor: can this machine start a worker sandbox (bubblewrap)?"""
    from .sandbox.view import ViewError, check_available

    try:
        check_available()
    except ViewError as exc:
        return f"isolation: UNAVAILABLE: {exc}. The grader will refuse to grade (grader error, exit 1)."
    return "isolation: bubblewrap works here; workers see only the interpreter, the worker code and a private /tmp"


def cmd_config(args):
    print(describe(_settings(args)))
    print(isolation_line())
    return 0


def main(argv=None):
    description = __doc__ + "\n" + textwrap.fill(class_report.exit_codes_text(), 116)
    parser = argparse.ArgumentParser(prog="python -m autograder", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade one submitted notebook")
    grade.add_argument("submission")
    grade.add_argument("--json", help="write Gradescope-style results here")
    grade.add_argument("--parts", help="comma-separated parts to grade (default: all)")
    grade.add_argument("--tier", choices=TIER_CHOICES, help="training-check tier")
    grade.add_argument("--show-output", action="store_true", help="also print what the student's code printed (instructors only)")
    grade.add_argument("--classroom", action="store_true",
                       help="GitHub Classroom / CI: exit 0 when the score reaches the bar (min_score), 1 when it "
                            "does not, 4 on a grader error; stderr stays empty unless something went wrong")
    grade.add_argument("--min-score", metavar="POINTS", help="the bar of --classroom (default: every point of the "
                                                             "parts graded)")
    _results_options(grade)
    grade.set_defaults(func=cmd_grade)
    batch = sub.add_parser("batch", help="grade an nbgrader submitted/ tree")
    batch.add_argument("submitted")
    batch.add_argument("--out", default="results", help="folder for <student>.json and grades.csv")
    batch.add_argument("--parts")
    batch.add_argument("--tier", choices=TIER_CHOICES)
    batch.add_argument("--jobs", help="grades at a time (default: the cores over each grade's threads, as memory "
                                      "allows)")
    batch.add_argument("--regrade", action="store_true", help="grade again students already graded and current")
    batch.add_argument("--student", help="comma-separated student ids to grade (default: everyone)")
    batch.add_argument("--regrade-not-run", action="store_true",
                       help="grade again the students whose checks could not run (on a machine where they can)")
    batch.add_argument("--shard", metavar="i/n", help="grade only shard i of n (1 <= i <= n), e.g. one job of a CI "
                                                      "matrix; a student's shard depends on the id alone")
    batch.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: a pool of processes on this machine (default); ray: one Ray task per submission "
                            "(pip install -e \".[ray]\")")
    batch.add_argument("--address", help="with --engine ray: the Ray cluster (e.g. ray://head:10001 or auto); "
                                         "default: a local Ray instance")
    _results_options(batch)
    batch.set_defaults(func=cmd_batch)
    merge = sub.add_parser("merge", help="merge the result folders of batch --shard runs into one")
    merge.add_argument("folders", nargs="+", metavar="RESULTS_DIR")
    merge.add_argument("--out", required=True, help="folder for the merged <student>.json files and grades.csv")
    merge.set_defaults(func=cmd_merge)
    package = sub.add_parser("package", help="write an autograder package for a grading platform")
    package.add_argument("platform", choices=["gradescope"])
    package.add_argument("--out", default="autograder.zip", help="the zip to write")
    package.add_argument("--parts", help="comma-separated parts the package grades (default: all)")
    package.add_argument("--tier", choices=TIER_CHOICES, help="training-check tier")
    _results_options(package)
    package.set_defaults(func=cmd_package)
    sub.add_parser("calibrate", help="train the reference over seeds and write the thresholds (see calibrate --help)")
    config = sub.add_parser("config", help="list every setting: its value, where it came from, what it means")
    _settings_options(config)
    config.set_defaults(func=cmd_config)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["calibrate"]:  # its own parser, in autograder/calibrate.py
        from . import calibrate

        return calibrate.main(argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ResultsSettingError as exc:  # a usage error, found before any grading
        print(f"usage error: {exc}", file=sys.stderr)
        return class_report.USAGE
    except SettingError as exc:  # a setting's value, from the settings file or the command line
        print(f"settings error: {exc}", file=sys.stderr)
        return class_report.USAGE
    except KeyboardInterrupt:
        return class_report.INTERRUPTED
    except Exception as exc:  # a grader bug: say so loudly, never pretend a grade
        print(f"grader error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return class_report.GRADER_ERROR


if __name__ == "__main__":
    sys.exit(main())
