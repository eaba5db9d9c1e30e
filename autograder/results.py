"""Reports: Gradescope results.json, a terminal summary, and a CSV over many students."""
import csv
import json


def to_gradescope(report, visibility="visible"):
    """Gradescope's results.json schema: score, max_score, tests[name, score, max_score, output, visibility]."""
    tests = [
        {
            "name": f"{r.part}: {r.title}",
            "score": r.score,
            "max_score": r.max_score,
            "status": r.status,
            "output": r.message,
            "visibility": visibility,
        }
        for r in report.results
    ]
    output = "\n".join(([f"Submission could not be read: {report.fatal}"] if report.fatal else []) + report.notes)
    not_run = [r for r in report.results if r.status == "not run"]
    if not_run:
        output += f"\n{sum(r.max_score for r in not_run):g} point(s) not run on this grader; see each check's reason."
    return {"score": report.score, "max_score": report.max_score, "execution_time": round(report.seconds, 1),
            "output": output.strip(), "tests": tests}


def write_json(report, path, visibility="visible"):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(to_gradescope(report, visibility), handle, indent=2)
        handle.write("\n")


_MARK = {"passed": "PASS", "failed": "FAIL", "not run": "SKIP"}


def summary_text(report, show_logs=False):
    lines = [f"{report.submission}: {report.score:g} / {report.max_score:g} ({report.seconds:.1f} s)"]
    if report.fatal:
        lines.append(f"  cannot read the submission: {report.fatal}")
    for r in report.results:
        lines.append(f"  [{_MARK.get(r.status, r.status)}] {r.score:g}/{r.max_score:g} {r.part}: {r.title}")
        if r.status != "passed" and r.message:
            lines.append(f"         {r.message}")
    lines += [f"  note: {note}" for note in report.notes]
    lines += [f"  GRADER ERROR (regrade): {error}" for error in report.grader_errors]
    if show_logs:
        lines += [f"  output {log}" for log in report.logs]
    return "\n".join(lines)


def write_csv(rows, path):
    """rows: list of (student_id, report). One column per check, plus total and max."""
    names = []
    for _student, report in rows:
        names += [r.name for r in report.results if r.name not in names]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "score", "max_score", "fatal", *names])
        for student, report in rows:
            by_name = {r.name: r.score for r in report.results}
            writer.writerow([student, report.score, report.max_score, report.fatal, *[by_name.get(n, "") for n in names]])
