"""What a class's grades add up to, for the person running the grader: the exit code and the not-run summary.

Exit codes of ``grade``, ``batch`` and ``merge`` (each fact here, the CLI's help and the README quote them):
"""
from collections import Counter

FINISHED = 0      # every check ran, whatever the scores
GRADER_ERROR = 1  # the grader itself failed on some part: regrade those students
USAGE = 2         # bad arguments or settings, a missing file or folder, folders that cannot be merged
NOT_RUN = 3       # finished, but some checks could not run here: regrade them where they can (--regrade-not-run)
INTERRUPTED = 130  # stopped (Ctrl-C, SIGTERM): what finished is kept; the same command finishes the rest

EXIT_CODES = {FINISHED: "grading finished, every check ran (whatever the scores; an unreadable submission scores 0)",
              GRADER_ERROR: "the grader itself failed on some part (reported as not run): regrade those",
              USAGE: "usage error (bad arguments or settings, a missing file or folder, result folders that disagree)",
              NOT_RUN: "grading finished, but some checks could not run here (status 'not run'): finish them "
                       "where they can run (batch --regrade-not-run)",
              INTERRUPTED: "batch was interrupted: the grades finished are kept; run it again for the rest"}
NOT_RUN_PREFIX = "not run: "


def exit_code(records) -> int:
    """The code for a set of grades (batch.Record or anything with grader_errors and not_run)."""
    records = list(records)
    if any(record.grader_errors for record in records):
        return GRADER_ERROR
    if any(record.not_run for record in records):
        return NOT_RUN
    return FINISHED


def exit_codes_text() -> str:
    return "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."


def not_run_summary(records) -> str:
    """One line: how many checks could not run, on how many submissions, and why; "" when every check ran."""
    records = [record for record in records if record.not_run and not record.grader_errors]
    if not records:
        return ""
    why = Counter()
    for record in records:
        reasons = getattr(record, "not_run_reasons", {}) or {}
        for check in record.not_run:
            reason = reasons.get(check, "")
            why[(check, reason[len(NOT_RUN_PREFIX):] if reason.startswith(NOT_RUN_PREFIX) else reason)] += 1
    total = sum(why.values())
    parts = [f"{check} on {count}" + (f" ({reason})" if reason else "") for (check, reason), count in why.items()]
    return (f"{total} check{'s' if total != 1 else ''} could not run here, on {len(records)} submission"
            f"{'s' if len(records) != 1 else ''}: " + "; ".join(parts)
            + ". They score 0 until regraded where they can run (batch --regrade-not-run).")
