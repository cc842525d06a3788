"""grades.csv (one row per student and assignment, one column per graded cell) and a score histogram."""
from __future__ import annotations

import csv
import pathlib

from nbgrader.api import Gradebook

from .grade import load_results

BASE = ["student_id", "assignment", "score", "max_score", "status"]


def rows(db_url: str, workspace, assignment: str | None = None) -> tuple[list[str], list[dict]]:
    """(columns, rows) from the gradebook; status and messages from the workspace's result files."""
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
                res = results.get((a.name, sub.student.id), {})
                row = {"student_id": sub.student.id, "assignment": a.name, "score": sub.score,
                       "max_score": sub.max_score, "status": res.get("status", "graded"),
                       "message": res.get("message", "")}
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
    return BASE + columns + ["message"], flat


def export(db_url: str, workspace, output, assignment: str | None = None, log=print) -> pathlib.Path:
    """Write the CSV and ``<output stem>.png`` next to it; return the PNG path."""
    columns, table = rows(db_url, workspace, assignment)
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in table:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
    png = output.with_suffix(".png")
    histogram(table, png)
    log(f"export: {len(table)} row(s) -> {output}, histogram -> {png}")
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
        ax.hist([r["score"] for r in group], bins=min(20, max(5, int(top) + 1)), range=(0, top),
                color="#4a7ab5", edgecolor="white")
        ax.set_title(f"{name} (n = {len(group)})")
        ax.set_xlabel(f"score (of {top:g})")
        ax.set_ylabel("students")
    if not by:
        axes[0][0].text(0.5, 0.5, "no graded submissions", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
