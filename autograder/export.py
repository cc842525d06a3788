"""Grades out: our full table, Canvas's and Moodle's gradebook imports, and per-cell class statistics.

- ``--format csv`` (default): one row per student and assignment, one column per graded cell, the
  late columns (final_score after the late penalty, submitted_at, late_by_h, days_late, penalty)
  and ``message``; plus ``<stem>.png``, the histogram of final scores.
- ``--format canvas``: Canvas's gradebook import (Grades > Import): the identity columns of the
  roster's own export (``Student``, ``ID``, ``SIS User ID`` where it had one, ``SIS Login ID``,
  ``Section``), the "Points Possible" row, and one column ``<Assignment title> (<Canvas assignment
  id>)`` per assignment (``--assignment ps1_dsc,ps2_cost``) with the final score; every roster student
  (the roster collect used for that assignment), 0 for "missing", an empty cell (Canvas leaves those
  alone) for a student not graded yet, graded "error", or "needs_review" (handed in files that could
  not be graded). Refused when the roster's ids are not Canvas user ids, or when Canvas's own export
  gives the assignment other points than ours (``--points`` rescales).
- ``--format moodle``: Moodle's CSV grade import: ``ID number`` (the course's student id: map it
  to "ID number" in Moodle's import), ``Email address`` (when the roster has it, the other usual
  mapping), ``Full name`` and one column named after the assignment with the final score.
- ``--format moodle-worksheet``: the assignment's offline grading worksheet as Moodle gave it
  (``--worksheet``), every column kept, the ``Grade`` of each collected participant filled in; Moodle's
  upload (mod/assign/feedback/offline/importgradeslib.php) needs ``Identifier``, ``Grade`` and
  ``Last modified (grade)``, and matches rows by the participant id, which is per assignment.
  Refused when the worksheet's "Maximum Grade" differs from ours (``--points`` rescales).
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
from .result import LateRecord
from .result import load as load_results
from .roster import csv_rows, load_saved, read_text

BASE = ["student_id", "assignment", "score", "max_score", "status"]
LATE = ["final_score", "submitted_at", "late_by_h", "days_late", "penalty", "late_reason"]
FORMATS = ("csv", "canvas", "moodle", "moodle-worksheet")


def late_columns(late: LateRecord | None) -> dict:
    """The late record's columns but final_score (all empty without a record)."""
    if late is None:
        return dict.fromkeys(LATE[1:])
    return {"submitted_at": late.submitted_at,
            "late_by_h": None if late.late_by_s is None else round(late.late_by_s / 3600, 3),
            "days_late": late.days_late, "penalty": late.penalty, "late_reason": late.reason}


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
                late = res.late if res is not None else None
                row = {"student_id": sub.student.id, "assignment": a.name, "score": sub.score,
                       "max_score": sub.max_score, "status": res.status if res is not None else "graded",
                       "message": res.message if res is not None else "",
                       "final_score": (None if res is not None and res.status == "needs_review"
                                       else sub.score if late is None else late.score),
                       **late_columns(late)}
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


def export(db_url: str, workspace, output, assignment: str | None = None, log=console.stdout, fmt: str = "csv",
           points: str | None = None, worksheet=None) -> pathlib.Path:
    """Write the CSV in ``fmt`` and the per-cell statistics next to it; return the PNG path (csv: the
    histogram; canvas, moodle: the per-cell plot)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt != "csv":
        ids = [x.strip() for x in (assignment or "").split(",") if x.strip()]
        n, review = lms_table(workspace, ids, output, fmt, points, worksheet)
        cells_png = cell_stats(workspace, ids[0] if len(ids) == 1 else None,
                               output.with_name(output.stem + "_cells.csv"))
        log(f"export: {n} student(s) -> {output} ({fmt} import), per-cell statistics -> {cells_png}")
        if review:
            log(f"NEEDS REVIEW: {len(review)} student(s) handed in files that were not graded; their cells are "
                f"left empty (the LMS keeps what it has): {', '.join(review)}")
        return cells_png
    cells_png = cell_stats(workspace, assignment, output.with_name(output.stem + "_cells.csv"))
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


def _points(points: str | None, n: int) -> list[float | None]:
    if points is None:
        return [None] * n
    try:
        out = [float(x) for x in points.split(",")]
    except ValueError:
        raise ValueError(f"--points: {points!r} is not a number (or one per assignment, comma-separated)") from None
    if len(out) != n or any(x <= 0 for x in out):
        raise ValueError(f"--points: give one positive number per assignment ({n}), got {points!r}")
    return out


def _scores(workspace, assignment: str, points: float | None):
    """(student -> exported cell text, max points as exported, students needing review) for one assignment."""
    results = {s: r for (_, s), r in load_results(workspace, assignment).items()}
    if not results:
        raise ValueError(f"export: nothing graded for {assignment} in {workspace}")
    max_score = max(r.max_score for r in results.values())
    scale = points / max_score if points else 1.0
    review = sorted(s for s, r in results.items() if r.status == "needs_review")

    def cell(sid):
        res = results.get(sid)
        if res is None or res.status in ("error", "needs_review"):
            return ""  # not graded (yet), or a person must look first: an empty cell changes nothing in the LMS
        return _fmt(round(res.final_score * scale, 2))
    return results, cell, (points or max_score), review


def lms_table(workspace, assignments: list, output: pathlib.Path, fmt: str, points: str | None = None,
              worksheet=None) -> tuple[int, list]:
    """Canvas's or Moodle's gradebook import CSV; returns (number of students, students needing review)."""
    if not assignments:
        raise ValueError(f"--format {fmt}: name the --assignment (an LMS import holds one assignment column)")
    if fmt != "canvas" and len(assignments) > 1:
        raise ValueError(f"--format {fmt}: one --assignment at a time (only Canvas's import takes several columns)")
    course = load_course(workspace)
    pts = _points(points, len(assignments))
    rosters = []
    for a in assignments:
        roster = load_saved(workspace, a)
        if roster is None:
            raise ValueError(f"--format {fmt}: {workspace} has no roster for {a}: collect with --roster ROSTER.csv "
                             "first")
        rosters.append(roster)
    if fmt == "moodle-worksheet":
        return _moodle_worksheet(workspace, assignments[0], output, pts[0], worksheet)
    review_all: list = []
    columns, cells, unknown = [], [], []
    for a, roster, p in zip(assignments, rosters, pts):
        results, cell, max_points, review = _scores(workspace, a, p)
        review_all += [f"{s} ({a})" for s in review]
        unknown += [s for s in results if s not in roster.students]
        entry = course.assignments.get(a) if course else None
        title = entry.title if entry and entry.title else a
        if fmt == "canvas":
            if entry is None or entry.canvas_id is None:
                raise ValueError(f"--format canvas: course.toml in {workspace} gives no canvas_id for {a} "
                                 f"(Canvas matches the column '<title> (<assignment id>)')")
            _canvas_ids(workspace, a, roster)
            canvas_points = roster.points.get(str(entry.canvas_id))
            if canvas_points is not None and abs(canvas_points - max_points) > 1e-9:
                raise ValueError(f"--format canvas: Canvas's export ({roster.path}) gives {title} "
                                 f"{canvas_points:g} points possible; our grades are out of {max_points:g}: pass "
                                 f"--points {canvas_points:g} to rescale, or change the points in Canvas")
            columns.append((f"{title} ({entry.canvas_id})", max_points))
        else:
            columns.append((title, max_points))
        cells.append(cell)
    roster = rosters[0]
    students = list(roster.students.values())
    for other in rosters[1:]:
        students += [s for sid, s in other.students.items() if sid not in roster.students]
    with open(output, "w", newline="") as fh:
        w = csv.writer(fh)
        if fmt == "canvas":
            ident = list(roster.columns) or ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
            ident = [c for c in ident if c not in ("LastName", "FirstName", "Integration ID", "Root Account")]
            if "Student" not in ident:
                ident.insert(0, "Student")
            w.writerow(ident + [c for c, _ in columns])
            w.writerow(["    Points Possible"] + [""] * (len(ident) - 1) + [_fmt(float(m)) for _, m in columns])
            for s in students:
                value = {"Student": s.name, "ID": s.lms_id, "SIS User ID": s.sis_user or s.student_id,
                         "SIS Login ID": s.sis_login, "Section": s.section}
                w.writerow([value.get(c, "") for c in ident] + [cell(s.student_id) for cell in cells])
        else:
            w.writerow(["ID number", "Email address", "Full name", columns[0][0]])
            for s in students:
                w.writerow([s.student_id, s.email, s.name, cells[0](s.student_id)])
    if unknown:
        raise ValueError(f"--format {fmt}: graded but not on the roster: {', '.join(sorted(set(unknown)))} "
                         f"(wrote {output} without them)")
    return len(students), review_all


def _canvas_ids(workspace, assignment: str, roster) -> None:
    """Refuse a Canvas import whose ID column would hold something other than Canvas user ids."""
    from .course import submission_info
    lms = {m.get("lms") for m in submission_info(workspace, assignment).values() if m.get("lms")}
    if roster.kind == "canvas" and lms <= {"canvas"}:
        return
    if roster.kind == "plain" and lms == {"canvas"}:
        return  # a plain roster whose lms_id column named the Canvas users of a Canvas download
    raise ValueError(f"--format canvas: the roster of {assignment} ({roster.path}) does not hold Canvas user ids "
                     f"(it is a {roster.kind} roster, and the submissions came from "
                     f"{', '.join(sorted(lms)) or 'no LMS download'}): Canvas would file these grades under "
                     "whoever has those ids. Collect with Canvas's gradebook export as the roster")


def _moodle_worksheet(workspace, assignment: str, output: pathlib.Path, points: float | None, worksheet):
    """The grading worksheet Moodle gave for ``assignment``, with each collected participant's Grade filled in."""
    from .course import submission_info
    from .lmstimes import MOODLE_ID, MOODLE_PARTICIPANT
    if worksheet is None:
        raise ValueError("--format moodle-worksheet: pass --worksheet, the grading worksheet Moodle gave for "
                         f"{assignment} (its participant ids are that assignment's)")
    path = pathlib.Path(worksheet)
    rows = csv_rows(read_text(path, "--worksheet"))
    header = [h.strip() for h in rows[0]] if rows else []
    for need in (MOODLE_ID, "Grade", "Last modified (grade)"):
        if need not in header:
            raise ValueError(f"--worksheet: {path} has no {need!r} column: Moodle's upload needs Identifier, Grade "
                             "and Last modified (grade) (download the worksheet with Moodle in English)")
    results, cell, max_points, review = _scores(workspace, assignment, points)
    if "Maximum Grade" in header:
        i = header.index("Maximum Grade")
        tops = {_num(r[i]) for r in rows[1:] if i < len(r) and _num(r[i]) is not None}
        if tops and tops != {float(max_points)}:
            raise ValueError(f"--worksheet: Moodle grades {assignment} out of {', '.join(f'{t:g}' for t in tops)}; "
                             f"ours are out of {max_points:g}: pass --points {max(tops):g} to rescale")
    by_pid = {str(m["lms_id"]): sid for sid, m in submission_info(workspace, assignment).items()
              if m.get("lms") == "moodle" and m.get("lms_id")}
    roster = load_saved(workspace, assignment)
    gi, ii = header.index("Grade"), header.index(MOODLE_ID)
    ei = header.index("Email address") if "Email address" in header else None
    ni = header.index("Full name") if "Full name" in header else None
    filled = 0
    for row in rows[1:]:
        m = MOODLE_PARTICIPANT.match(row[ii]) if ii < len(row) else None
        sid = by_pid.get(m.group(1)) if m else None
        if sid is None and m and roster is not None:  # not in the download (missing): by email, else by name
            email = row[ei].strip().lower() if ei is not None and ei < len(row) else ""
            same = [x for x in roster.students.values() if email and x.email.lower() == email]
            if not same and ni is not None and ni < len(row):
                same = roster.by_name(row[ni])
            taken = set(by_pid.values())
            if len(same) == 1 and same[0].student_id not in taken:
                sid = by_pid[m.group(1)] = same[0].student_id
        if sid is not None and sid in results and cell(sid) != "":
            row[gi] = cell(sid)
            filled += 1
    with open(output, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    missing = sorted(set(results) - set(by_pid.values()))
    if missing:
        raise ValueError(f"--format moodle-worksheet: graded but not in {path}: {', '.join(missing)} (wrote "
                         f"{output} without them; is it {assignment}'s worksheet?)")
    return filled, review


def _num(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


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
