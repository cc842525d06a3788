"""Grades out: our full table, Canvas's and Moodle's gradebook imports, and per-cell class statistics.

- ``--format csv`` (default): one row per student and assignment, one column per graded cell, the
  late columns (final_score after the late penalty, submitted_at, late_by_h, days_late, penalty)
  and ``message``; plus ``<stem>.png``, the histogram of final scores.
- ``--format canvas``: Canvas's gradebook import (Grades > Import): its five identity columns
  ``Student,ID,SIS User ID,SIS Login ID,Section``, the "Points Possible" row, and one column
  ``<Assignment title> (<Canvas assignment id>)`` with the final score; every roster student (the
  roster collect used), 0 for "missing", an empty cell (Canvas leaves those alone) for a student not
  graded yet or graded "error".
- ``--format moodle``: Moodle's CSV grade import: ``ID number`` (the course's student id: map it
  to "ID number" in Moodle's import), ``Email address`` (when the roster has it, the other usual
  mapping), ``Full name`` and one column named after the assignment with the final score.
- Always, next to the output: ``<stem>_cells.csv`` and ``<stem>_cells.png``, per assignment and
  graded cell, how many submissions ran it, how many got full marks, the pass rate and the three
  commonest failure messages: which test the class fails, and how.
"""
from __future__ import annotations

import collections
import csv
import pathlib

from nbgrader.api import Gradebook

from . import console
from .course import load as load_course
from .result import load as load_results
from .roster import load_saved

BASE = ["student_id", "assignment", "score", "max_score", "status"]
LATE = ["final_score", "submitted_at", "late_by_h", "days_late", "penalty", "late_reason"]
FORMATS = ("csv", "canvas", "moodle")


def rows(db_url: str, workspace, assignment: str | None = None) -> tuple[list[str], list[dict]]:
    """(columns, rows): the scores from the gradebook (written from the result records, plus any manual
    grade); status, message and the late record from the workspace's result records."""
    results = load_results(workspace, assignment)
    out, cells = [], {}
    with Gradebook(db_url) as gb:
        for a in gb.assignments:
            if assignment and a.name != assignment:
                continue
            for nb in a.notebooks:
                for c in nb.grade_cells:
                    cells.setdefault(c.name, []).append((a.name, nb.name))
            for sub in sorted(a.submissions, key=lambda s: s.student.id):
                res = results.get((a.name, sub.student.id))
                late = (res.late if res is not None else None) or {}
                row = {"student_id": sub.student.id, "assignment": a.name, "score": sub.score,
                       "max_score": sub.max_score, "status": res.status if res is not None else "graded",
                       "message": res.message if res is not None else "",
                       "final_score": late.get("score", sub.score), "submitted_at": late.get("submitted_at"),
                       "late_by_h": None if late.get("late_by_s") is None else round(late["late_by_s"] / 3600, 3),
                       "days_late": late.get("days_late"), "penalty": late.get("penalty"),
                       "late_reason": late.get("reason")}
                for nb in sub.notebooks:
                    for g in nb.grades:
                        row[(a.name, nb.name, g.name)] = g.score
                out.append(row)
    # A grade_id names its column; the rare clash across assignments or notebooks is qualified.
    columns, names = [], {}
    for gid, where in cells.items():
        for a, nb in where:
            names[(a, nb, gid)] = gid if len(where) == 1 else f"{a}/{nb}/{gid}"
            columns.append(names[(a, nb, gid)])
    flat = []
    for row in out:
        flat.append({(names[k] if isinstance(k, tuple) else k): v for k, v in row.items()})
    return BASE + columns + LATE + ["message"], flat


def export(db_url: str, workspace, output, assignment: str | None = None, log=console.stdout, fmt: str = "csv") -> pathlib.Path:
    """Write the CSV in ``fmt`` and the per-cell statistics next to it; return the PNG path (csv: the
    histogram; canvas, moodle: the per-cell plot)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cells_png = cell_stats(workspace, assignment, output.with_name(output.stem + "_cells.csv"))
    if fmt != "csv":
        n = lms_table(workspace, assignment, output, fmt)
        log(f"export: {n} student(s) -> {output} ({fmt} import), per-cell statistics -> {cells_png}")
        return cells_png
    columns, table = rows(db_url, workspace, assignment)
    with open(output, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in table:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
    png = output.with_suffix(".png")
    histogram(table, png)
    log(f"export: {len(table)} row(s) -> {output}, histogram -> {png}, per-cell statistics -> {cells_png}")
    return png


def lms_table(workspace, assignment: str | None, output: pathlib.Path, fmt: str) -> int:
    """Canvas's or Moodle's gradebook import CSV for one assignment; returns the number of students."""
    if not assignment:
        raise ValueError(f"--format {fmt}: name the --assignment (an LMS import holds one assignment column)")
    roster = load_saved(workspace)
    if roster is None:
        raise ValueError(f"--format {fmt}: {workspace} has no roster: collect with --roster ROSTER.csv first")
    course = load_course(workspace)
    a = course.assignments.get(assignment) if course else None
    title = (a.title if a and a.title else assignment)
    results = {s: r for (_, s), r in load_results(workspace, assignment).items()}
    max_score = max((r.max_score for r in results.values()), default=0)

    def score(sid):
        res = results.get(sid)
        if res is None or res.status == "error":
            return ""  # not graded (yet): an empty cell changes nothing in the LMS
        return _fmt(round(res.final_score, 2))

    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        if fmt == "canvas":
            if a is None or a.canvas_id is None:
                raise ValueError(f"--format canvas: course.toml in {workspace} gives no canvas_id for {assignment} "
                                 f"(Canvas matches the column '<title> (<assignment id>)')")
            w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{title} ({a.canvas_id})"])
            w.writerow(["    Points Possible", "", "", "", "", _fmt(float(max_score))])
            for s in roster.students.values():
                w.writerow([s.name, s.lms_id, s.student_id, s.sis_login, s.section, score(s.student_id)])
        else:
            w.writerow(["ID number", "Email address", "Full name", title])
            for s in roster.students.values():
                w.writerow([s.student_id, s.email, s.name, score(s.student_id)])
    unknown = sorted(set(results) - set(roster.students))
    if unknown:
        raise ValueError(f"--format {fmt}: graded but not on the roster: {', '.join(unknown)} "
                         f"(wrote {output} without them)")
    return len(roster.students)


def cell_stats(workspace, assignment: str | None, out_csv: pathlib.Path) -> pathlib.Path:
    """Per (assignment, grade cell): submissions that ran, full marks, pass rate, commonest failure messages."""
    stats: dict = {}
    for (a, _), res in sorted(load_results(workspace, assignment).items()):
        if not res.ran:
            continue  # missing and error submissions ran nothing
        for gid, c in res.cells.items():
            s = stats.setdefault((a, gid), {"n": 0, "passed": 0, "max": c.max_score, "why": collections.Counter()})
            s["n"] += 1
            if c.full_marks:
                s["passed"] += 1
            else:
                s["why"][" ".join((c.reason or "no message").split())[:200]] += 1
    with open(out_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["assignment", "cell", "max_score", "submissions", "full_marks", "pass_rate",
                    "failure_1", "count_1", "failure_2", "count_2", "failure_3", "count_3"])
        for (a, gid), s in sorted(stats.items()):
            top = s["why"].most_common(3)
            w.writerow([a, gid, _fmt(s["max"]), s["n"], s["passed"], f"{s['passed'] / s['n']:.3f}"]
                       + [x for m, k in top for x in (m, k)] + [""] * (2 * (3 - len(top))))
    png = out_csv.with_suffix(".png")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted(stats)
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(3, len(keys)) + 1))
    ax.barh([f"{a}: {g}" for a, g in keys], [stats[k]["passed"] / stats[k]["n"] for k in keys], color="#4a7ab5")
    for i, k in enumerate(keys):
        ax.text(0.01, i, f"{stats[k]['passed']}/{stats[k]['n']}", va="center", color="white", fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("fraction of submissions with full marks")
    if not keys:
        ax.text(0.5, 0.5, "no graded submissions", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _fmt(v):
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else v


def histogram(table: list[dict], png: pathlib.Path) -> None:
    """Score distribution, one panel per assignment (matplotlib Agg: no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by = {}
    for row in table:
        by.setdefault(row["assignment"], []).append(row)
    fig, axes = plt.subplots(1, max(1, len(by)), figsize=(4 * max(1, len(by)), 3), squeeze=False)
    for ax, (name, group) in zip(axes[0], sorted(by.items())):
        top = max(r["max_score"] or 0 for r in group) or 1
        ax.hist([r["final_score"] if r.get("final_score") is not None else r["score"] for r in group], bins=min(20, max(5, int(top) + 1)), range=(0, top),
                color="#4a7ab5", edgecolor="white")
        ax.set_title(f"{name} (n = {len(group)})")
        ax.set_xlabel(f"score (of {top:g})")
        ax.set_ylabel("students")
    if not by:
        axes[0][0].text(0.5, 0.5, "no graded submissions", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
