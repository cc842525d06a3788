"""Consistency check of a grading workspace: gradebook, result files, autograded notebooks, export.

Each source is read on its own and compared with the others; any disagreement is one line in the
returned list (empty: consistent). Nothing is written. The result files are read as
autograder.result.StudentResult records (their score is the sum of their cells by construction; a
file that is not such a record is reported, naming why). Compared:
  - every submitted student has exactly one result file, a valid record (no half-written file),
  - result file <-> gradebook: same students, same score per grade cell and in total,
  - result file <-> autograded notebook: each grade cell's score recomputed from the notebook,
  - export CSV (if given, or ``grades.csv`` in the workspace) <-> gradebook: one row per student,
    same score and status,
  - the late penalty of every result with a late record (course.toml): raw score = the result's
    score, penalty = min(cap, per_day x days late) (1 and a score of 0 when not accepted), final =
    raw x (1 - penalty), days late from the recorded lateness and grace, and the record the same as
    the current course.toml and submission times give (else: graded before a change; run grade),
  - a student who handed in files that could not be graded (status needs_review) is listed: a person
    must look before their mark exists,
  - the class as a whole: a cell that every student (three or more) fails with the same message is
    reported, since it is far likelier a broken grading environment (mnlib not importable, a check
    that fails on its own) than a class that all made the same mistake.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import pathlib
from collections.abc import Mapping

from . import course as course_file
from .result import CellResult, ResultFileError, StudentResult

TOL = 1e-9


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), abs_tol=TOL)


def _results(ws: pathlib.Path, out: list[str]) -> dict[tuple[str, str], StudentResult]:
    """Result records keyed by (assignment, student); files that are not records are reported."""
    found = {}
    for path in sorted((ws / "results").glob("*/*.json")):
        try:
            res = StudentResult.read(path, str(path.relative_to(ws)))
        except ResultFileError as e:
            out.append(str(e))
            continue
        key = (res.assignment, res.student)
        if key != (path.parent.name, path.stem):
            out.append(f"{path.relative_to(ws)}: holds {key[1]}/{key[0]}")
        found[key] = res
    return found


def _gradebook(db_url: str) -> dict[tuple[str, str], dict]:
    """(assignment, student) -> {"score": total, "cells": {grade_id: score}} from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url) as gb:
        for a in gb.assignments:
            for sub in a.submissions:
                cells = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
                out[(a.name, sub.student.id)] = {"score": sub.score, "cells": cells}
    return out


def _notebook_scores(path: pathlib.Path) -> dict[str, float | None]:
    """grade_id -> score recomputed from an autograded notebook with the grader's own rule."""
    import nbformat
    from nbgrader import utils as nbutils

    from .execute import cell_score

    nb = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: cell_score(c)[0] for c in nb.cells if nbutils.is_grade(c)}


def check(workspace, *, csv_path=None, db_url: str | None = None) -> list[str]:
    """Return every mismatch between the workspace's gradebook, results, autograded notebooks and export."""
    from .nbgrader_config import course_config

    ws = pathlib.Path(workspace)
    if not ws.is_dir():
        raise ValueError(f"workspace: {ws} is not a folder")
    out: list[str] = []
    for tmp in sorted(p for p in ws.rglob(".*.tmp") if p.is_file()):
        out.append(f"{tmp.relative_to(ws)}: half-written file left by an interrupted write")
    results = _results(ws, out)
    db_url = db_url or course_config(ws).CourseDirectory.db_url
    book = _gradebook(db_url) if (ws / "gradebook.db").exists() or not db_url.startswith("sqlite") else {}

    submitted = {(p.name, p.parent.name) for p in (ws / "submitted").glob("*/*") if p.is_dir()}
    for a, s in sorted(submitted - set(results)):
        out.append(f"{s}/{a}: submitted but no result (not graded yet?)")
    for key in sorted(set(results) | set(book)):
        a, s = key
        res, gb = results.get(key), book.get(key)
        if res is None:
            out.append(f"{s}/{a}: in the gradebook but no result file")
            continue
        if res.status == "error":
            continue  # a grader failure is recorded for a re-run, never written to the gradebook
        if res.status == "needs_review":
            out.append(f"{s}/{a}: needs review: {res.message} (left empty in LMS exports until resolved)")
        if gb is None:
            out.append(f"{s}/{a}: result file ({res.status}) but not in the gradebook")
            continue
        if not _same(res.score, gb["score"]):
            out.append(f"{s}/{a}: total {res.score} in the result file, {gb['score']} in the gradebook")
        rcells = {g: c.score for g, c in res.cells.items()}
        for gid in sorted(set(rcells) | set(gb["cells"])):
            if gid not in rcells or gid not in gb["cells"]:
                out.append(f"{s}/{a}: cell {gid} only in the {'gradebook' if gid not in rcells else 'result file'}")
            elif not _same(rcells[gid] or 0.0, gb["cells"][gid] or 0.0):
                out.append(f"{s}/{a}: cell {gid} scores {rcells[gid]} in the result file, "
                           f"{gb['cells'][gid]} in the gradebook")
        nb_cells: dict[str, float | None] = {}
        notebooks = sorted((ws / "autograded" / s / a).glob("*.ipynb"))
        for path in notebooks:
            try:
                nb_cells.update(_notebook_scores(path))
            except Exception as e:  # noqa: BLE001 - any unreadable notebook is a mismatch to report
                out.append(f"{path.relative_to(ws)}: unreadable autograded notebook ({type(e).__name__})")
        if res.status == "graded" and not notebooks:
            out.append(f"{s}/{a}: graded but no autograded notebook")
        for gid, score in sorted(nb_cells.items()):
            if gid in rcells and not _same(score or 0.0, rcells[gid] or 0.0):
                out.append(f"{s}/{a}: cell {gid} scores {rcells[gid]} in the result file, "
                           f"{score} recomputed from the autograded notebook")
    csv_path = pathlib.Path(csv_path) if csv_path else ws / "grades.csv"
    if csv_path.is_file():
        out += _check_csv(csv_path, book, results)
    out += late_arithmetic(ws, results)
    out += class_wide_failures(results)
    out += similarity_flags(ws)
    return out


def similarity_flags(ws: pathlib.Path) -> list[str]:
    """One review line per pair flagged in a similarity report (``python -m autograder similarity``)."""
    from .similarity import review_lines
    return review_lines(ws)


def late_arithmetic(ws: pathlib.Path, results: dict[tuple[str, str], StudentResult]) -> list[str]:
    """Every late record's arithmetic, recomputed; and each record against the current course file."""
    out = []
    try:
        current = course_file.load(ws)
    except course_file.CourseError as exc:
        return [str(exc)]
    infos: dict = {}
    for (a, s), res in sorted(results.items()):
        late = res.late
        if late is None or res.status == "error":
            continue
        who = f"{s}/{a}: late record"
        raw, pen, final = late.raw_score, late.penalty, late.score
        if res.status != "missing" and not _same(raw, res.score):
            out.append(f"{who}: raw score {raw}, the result's score {res.score}")
        expect = 0.0 if not late.accepted else raw * (1 - pen)
        if not math.isclose(final, expect, abs_tol=1e-6):
            out.append(f"{who}: final {final} but raw {raw} x (1 - {pen}) = {expect:g}")
        pol = late.policy
        if late.late_by_s is not None and late.accepted and pol is not None:
            days = course_file.days_late(dt.timedelta(seconds=late.late_by_s), dt.timedelta(seconds=pol.grace))
            if days != late.days_late:
                out.append(f"{who}: {late.days_late} day(s) late recorded, {days} from late_by and grace")
            if not math.isclose(pen, min(pol.cap, pol.per_day * days), abs_tol=1e-9):
                out.append(f"{who}: penalty {pen}, but min(cap {pol.cap}, {pol.per_day} x {days} days) "
                           f"= {min(pol.cap, pol.per_day * days):g}")
        if current is None or a not in current.assignments:
            out.append(f"{who}, but course.toml gives {a} no due time (removed since grading?): run grade")
        else:
            info = infos.setdefault(a, course_file.submission_info(ws, a))
            again = course_file.with_late(ws, res, current, info).late
            if again != late:
                out.append(f"{who} differs from what course.toml and the submission time give now "
                           "(changed since grading?): run grade, which updates it")
    return out


CLASS_MIN = 3  # below this many graded submissions, "everyone failed alike" says little


def class_wide_failures(results: Mapping[tuple[str, str], StudentResult | Mapping]) -> list[str]:
    """One line per (assignment, cell) that every graded submission lost with one and the same message.

    ``results``: records, or their JSON form (only ``status`` and the cells' scores and reasons are read)."""
    by_cell: dict[tuple[str, str], list] = {}
    count: dict[str, int] = {}
    for (a, _), res in results.items():
        status, cells = _status_and_cells(res)
        if status not in ("graded", "broken", "timeout"):
            continue  # missing and error submissions ran nothing
        count[a] = count.get(a, 0) + 1
        for gid, c in cells.items():
            if c.max_score and c.score is not None and c.score < c.max_score:
                by_cell.setdefault((a, gid), []).append(c.reason)
    out = []
    for (a, gid), reasons in sorted(by_cell.items()):
        if count[a] >= CLASS_MIN and len(reasons) == count[a] and len(set(reasons)) == 1 and reasons[0]:
            out.append(f"warning: {a}: all {count[a]} graded submissions lose cell {gid} with the same message "
                       f"({reasons[0][:200]}): check the grading environment before trusting these grades "
                       "(`python -m autograder grade` runs a canary for this; was it skipped?)")
    return out


def _status_and_cells(res) -> tuple[str | None, dict[str, CellResult]]:
    if isinstance(res, StudentResult):
        return res.status, dict(res.cells)
    return res.get("status"), {g: CellResult(notebook=c.get("notebook", ""), score=c.get("score"),
                                             max_score=c.get("max_score") or 0.0, reason=c.get("reason") or "")
                               for g, c in res.get("cells", {}).items()}


def _check_csv(path: pathlib.Path, book: dict, results: dict[tuple[str, str], StudentResult]) -> list[str]:
    out, seen = [], set()
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        key = (row.get("assignment"), row.get("student_id"))
        if key in seen:
            out.append(f"{path.name}: {key[1]}/{key[0]} appears twice")
        seen.add(key)
        if key not in book:
            out.append(f"{path.name}: {key[1]}/{key[0]} exported but not in the gradebook")
            continue
        score = row.get("score")
        if not _same(float(score) if score not in ("", None) else None, book[key]["score"]):
            out.append(f"{path.name}: {key[1]}/{key[0]} score {score} in the export, {book[key]['score']} in the gradebook")
        res = results.get(key)
        late = res.late if res is not None else None
        if late is not None and row.get("final_score") not in (None, "") and not _same(float(row["final_score"]), late.score):
            out.append(f"{path.name}: {key[1]}/{key[0]} final score {row['final_score']} in the export, "
                       f"{late.score} after the late penalty")
        status = res.status if res is not None else "graded"
        if row.get("status") not in (None, status):
            out.append(f"{path.name}: {key[1]}/{key[0]} status {row.get('status')} in the export, {status} recorded")
    for key in sorted(set(book) - seen):
        out.append(f"{path.name}: {key[1]}/{key[0]} in the gradebook but not exported")
    return out
