"""One HTML feedback page per student and notebook: hidden tests and their tracebacks removed, no CDN.

nbgrader's GenerateFeedback shows the autograded notebook as it ran: hidden test lines appear in
the source of restored cells and in the traceback of every failing hidden assert, and the page
loads MathJax from a CDN. Here the hidden regions are cut from every cell, a cell that held
hidden tests keeps only ``ErrorName: message`` of its error (no traceback, no printed output
except the grader's own partial-credit report: which cases failed, and the points), any other traceback that quotes a hidden line is cut the same way, and the MathJax CDN loader
is replaced by one local copy of MathJax in feedback/_static/.
"""
from __future__ import annotations

import json
import pathlib
import re
import sys

import nbformat
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from . import console
from .execute import PARTIAL
from .files import atomic_write
from .nbgrader_config import HIDDEN_DELIMITERS
from .options import Options, config
from .result import StudentResult, load as load_results

BEGIN, END = HIDDEN_DELIMITERS  # matched anywhere in a line, as nbgrader does
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
NOTE = "(details hidden: this cell contains hidden tests)"


def hidden_lines(source: str) -> list[str]:
    """The stripped lines inside BEGIN/END HIDDEN TESTS regions of a cell source."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside and line.strip():
            out.append(line.strip())
    return out


def _short(output) -> nbformat.NotebookNode:
    """An error output reduced to ``ename: evalue``, without the traceback."""
    return nbformat.v4.new_output("error", ename=output.get("ename", "Error"), evalue=output.get("evalue", ""),
                                  traceback=[f"{output.get('ename', 'Error')}: {output.get('evalue', '')}", NOTE])


def scrub(nb, secret_sources: dict[str, str]) -> None:
    """Remove hidden tests from ``nb`` in place; ``secret_sources`` maps grade_id -> instructor source."""
    secrets = [line for src in secret_sources.values() for line in hidden_lines(src) if len(line) >= 6]
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        held = BEGIN in cell.source or hidden_lines(secret_sources.get(gid, ""))
        if cell.cell_type != "code":
            continue
        if held:  # its error in one line, and the grader's partial-credit report (which cases failed, points)
            cell.outputs = [_short(o) if o.get("output_type") == "error" else o for o in cell.outputs
                            if o.get("output_type") == "error" or o.get("metadata", {}).get(PARTIAL)
                            or o.get("metadata", {}).get("autograder_withheld")]
        else:
            cleaned = []
            for o in cell.outputs:
                text = ANSI.sub("", "\n".join(o.get("traceback", [])) if o.get("output_type") == "error"
                                else str(o.get("text", "")) + str(o.get("data", "")))
                if any(s in text for s in secrets):
                    o = _short(o) if o.get("output_type") == "error" else None
                if o is not None:
                    cleaned.append(o)
            cell.outputs = cleaned
    ClearHiddenTests(enforce_metadata=False).preprocess(nb, {})


def _exporter(cfg) -> HTMLExporter:
    # GenerateFeedback knows where nbgrader keeps its feedback template and CSS: reuse its config.
    converter = GenerateFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    exporter = HTMLExporter(config=converter.config)
    exporter.register_preprocessor(GetGrades(config=cfg), enabled=True)
    exporter.register_preprocessor(CSSHTMLHeaderPreprocessor(config=cfg), enabled=True)
    return exporter


_EXPORTERS: dict[tuple, HTMLExporter] = {}  # (full view?, the configuration) -> the exporter this process keeps


def _page_exporter(cfg, view: str) -> HTMLExporter:
    """The exporter for ``view``'s pages, made once per process and configuration (a watch keeps its own
    for its whole run). A new HTMLExporter compiles its templates again on its first page: 0.32 s for a
    ps1 page against 0.22 s with the exporter kept (median of 10), every time a watch answered. One exporter
    already makes every page of a batch's ``feedback``; what a page shows does not depend on the pages
    made before it (tests/test_watch.py)."""
    key = (view == "full", json.dumps(cfg, sort_keys=True, default=repr))
    if key not in _EXPORTERS:
        _EXPORTERS[key] = _exporter(cfg) if view == "full" else HTMLExporter()
    return _EXPORTERS[key]


# MathJax 3 as the book serves it (the sphinx-mathjax-offline package): one copy per workspace, in
# feedback/_static/, shared by every page (two folders up from feedback/<student>/<assignment>/).
MATHJAX_LOCAL = """<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
  processEscapes: true}, options: {ignoreHtmlClass: 'tex2jax_ignore'}};</script>
<script defer src="../../_static/tex-svg.js"></script>"""


def vendor_mathjax(feedback_dir: pathlib.Path) -> bool:
    """Copy MathJax's self-contained SVG build to feedback/_static/; False if it is not installed."""
    rel = pathlib.Path("sphinx-mathjax-offline", "static", "mathjax", "tex-svg.js")
    src = next((pathlib.Path(p) / rel for p in sys.path if p and (pathlib.Path(p) / rel).is_file()), None)
    if src is None:
        return False
    dest = feedback_dir / "_static" / "tex-svg.js"
    if not dest.is_file() or dest.stat().st_size != src.stat().st_size:
        atomic_write(dest, src.read_bytes())
    return True


def offline(html: str, mathjax: bool = False) -> str:
    """Replace the MathJax CDN loader by the local copy (or by nothing: maths then shows as TeX)."""
    if mathjax:
        return MATHJAX.sub(lambda m: MATHJAX_LOCAL, html)
    return MATHJAX.sub("<!-- MathJax not installed: maths shows as TeX -->", html)


def feedback(opts: Options, log=console.stdout, only: set[str] | None = None) -> list[pathlib.Path]:
    """Write feedback/<student>/<assignment>/<notebook>.html for every graded student (``only``: these
    students); return the paths.

    Written privately (umask 077: the pages hold grades), like everything the grader writes."""
    from .wslock import private
    with private():
        return _feedback(opts, log, only)


def _feedback(opts: Options, log, only: set[str] | None = None) -> list[pathlib.Path]:
    ws = pathlib.Path(opts.workspace)
    zone = due_zone(ws, opts.assignment)
    cfg = config(opts)
    db_url = cfg.CourseDirectory.db_url
    exporter = _page_exporter(cfg, "full")
    with Gradebook(db_url) as gb:
        assignment = gb.find_assignment(opts.assignment)
        sources = {nb.name: {c.name: c.source or "" for c in nb.source_cells} for nb in assignment.notebooks}
    written = []
    mathjax = vendor_mathjax(ws / "feedback")
    for (_, student), res in sorted(load_results(ws, opts.assignment).items()):
        if only is not None and student not in only:
            continue
        if res.status == "error":
            continue  # the grader failed, not the student: nothing to show until it is graded
        graded = sorted((ws / "autograded" / student / opts.assignment).glob("*.ipynb"))
        if not graded:  # missing or unreadable: a page that says why, so every student hears back
            out = ws / "feedback" / student / opts.assignment / "index.html"
            atomic_write(out, _note_page(opts.assignment, res, zone).encode())
            written.append(out)
        for path in graded:
            nb = nbformat.read(path, as_version=4)
            scrub(nb, sources.get(path.stem, {}))
            resources = {"nbgrader": {"student": student, "assignment": opts.assignment,
                                      "notebook": path.stem, "db_url": db_url}}
            html, _ = exporter.from_notebook_node(nb, resources=resources)
            html = html.replace("</head>", WRAP_CSS + "</head>", 1)
            if res.status != "graded" and res.message:
                html = html.replace("<body>", f"<body><p><b>Grading note:</b> {_escape(res.message)}</p>", 1)
            if res.late is not None:
                html = counting_header(html, res, path.stem, len(graded))
                html = html.replace("<body>", "<body>" + late_note(res, zone), 1)
            out = ws / "feedback" / student / opts.assignment / f"{path.stem}.html"
            atomic_write(out, offline(html, mathjax).encode())
            written.append(out)
    bundles = bundle(ws / "feedback", opts.assignment, written)
    log(f"feedback: {len(written)} page(s) under {ws / 'feedback'}; {len(bundles)} zip(s) to upload, one per "
        f"student, in {ws / 'feedback' / '_bundles' / opts.assignment}")
    moodle = moodle_bundle(ws, opts.assignment, written)
    if moodle is not None:
        log(f"feedback: {moodle} is for Moodle's 'Upload multiple feedback files in a zip' (one folder per "
            "participant, named as Moodle's download names it)")
    return written


# Output areas wrap long lines (a failure message, a long repr) instead of scrolling them out of sight.
WRAP_CSS = ("<style>/* autograder: long lines wrap */ pre, .output_area pre, .output_subarea pre, "
            ".jp-OutputArea-output pre, .jp-RenderedText pre {white-space: pre-wrap; overflow-wrap: anywhere;}"
            "</style>")


def due_zone(ws: pathlib.Path, assignment: str):
    """The time zone of the assignment's due time in course.toml (its ``timezone``, or its offset), or None."""
    from . import course as course_file
    try:
        course = course_file.load(ws)
        return course.assignments[assignment].due.tzinfo if course is not None else None
    except Exception:  # noqa: BLE001 - a course file grade accepted; here only the display depends on it
        return None


def when(iso: str | None, zone=None) -> str:
    """An ISO time as people read a date: "5 Oct 2026, 23:59 CEST", in ``zone`` (the due time's) when given."""
    import datetime as dt
    if not iso:
        return "time unknown"
    try:
        t = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if t.tzinfo is None:
        return f"{t.day} {t:%b %Y, %H:%M}"
    if zone is not None:
        t = t.astimezone(zone)
    name = t.tzname() or ""
    if name.startswith("UTC") and name != "UTC":
        name = name.replace(":00", "")  # UTC+02:00 -> UTC+02
    return f"{t.day} {t:%b %Y, %H:%M} {name}".strip()


def counting_header(html: str, res: StudentResult, notebook: str, notebooks: int = 1) -> str:
    """nbgrader's page header says the tests' score (``ps1_dsc (Score: 10.0 / 10.0)``); with a late
    penalty, that is not the score that counts: say both, the one that counts in bold."""
    late = res.late
    if late is None or late.score == late.raw_score:
        return html
    head = re.compile(r"(<h4>\s*)" + re.escape(notebook) + r"\s*\(Score:\s*([-\d.]+)\s*/\s*([-\d.]+)\)(\s*</h4>)")
    where = "the assignment" if notebooks > 1 else "it"

    def swap(m):
        return (f"{m.group(1)}{notebook} (tests: {float(m.group(2)):g} / {float(m.group(3)):g}; after the "
                f"{late.penalty:.0%} late penalty <b>{late.score:g} / {res.max_score:g}</b> counts"
                f"{' for ' + where if notebooks > 1 else ''}){m.group(4)}")
    return head.sub(swap, html, count=1)


def late_note(res: StudentResult, zone=None) -> str:
    """The submission time, the due time, and the raw and final score with the reason (HTML)."""
    late = res.late
    return (f"<div class='autograder-late' style='border:1px solid #999;padding:0.5em;margin:0.5em'>"
            f"<p><b>Due:</b> {_escape(when(late.due, zone))}{' (your extension)' if late.extended else ''}<br>"
            f"<b>Submitted:</b> {_escape(when(late.submitted_at, zone))}<br>"
            f"<b>Score:</b> {late.raw_score:g} / {res.max_score:g} before any late penalty; "
            f"<b>{late.score:g} / {res.max_score:g}</b> counts "
            f"({late.penalty:.0%} late penalty)<br><b>Why:</b> {_escape(late.reason)}</p></div>")


def bundle(feedback_dir: pathlib.Path, assignment: str, pages: list) -> list:
    """One zip per student, ``_bundles/<assignment>/<student>.zip``: their pages as
    ``<student>/<assignment>/...`` and the local MathJax as ``_static/tex-svg.js``, so the pages open
    offline, maths typeset, wherever the learner unpacks it."""
    import zipfile
    by: dict = {}
    for page in pages:
        by.setdefault(page.relative_to(feedback_dir).parts[0], []).append(page)
    mathjax = feedback_dir / "_static" / "tex-svg.js"
    out = []
    for student, files in sorted(by.items()):
        path = feedback_dir / "_bundles" / assignment / f"{student}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(files):
                zf.write(f, f.relative_to(feedback_dir).as_posix())
            if mathjax.is_file():
                zf.write(mathjax, "_static/tex-svg.js")
        tmp.replace(path)
        out.append(path)
    return out


MOODLE_ZIP = "moodle_feedback_files.zip"


def moodle_participants(ws: pathlib.Path, assignment: str) -> dict:
    """student -> (full name, Moodle participant id) for the students whose id is known: collected from a
    Moodle download, or in the roster collect saved (a student who handed nothing in hears back too)."""
    from .course import submission_info
    from .roster import load_saved
    out = {}
    roster = load_saved(ws, assignment)  # this assignment's ids: Moodle's differ per assignment
    for sid, s in (roster.students.items() if roster is not None else ()):
        if s.lms_id.isdigit():
            out[sid] = (s.name or sid, s.lms_id)
    for sid, meta in submission_info(ws, assignment).items():
        if meta.get("lms") == "moodle" and str(meta.get("lms_id") or "").isdigit():
            out[sid] = (meta.get("name") or out.get(sid, (sid,))[0], str(meta["lms_id"]))
    return out


def moodle_bundle(ws: pathlib.Path, assignment: str, pages: list) -> pathlib.Path | None:
    """``_bundles/<assignment>/moodle_feedback_files.zip`` for Moodle's "Upload multiple feedback files in
    a zip", when the submissions came from a Moodle download; else None.

    Moodle files a zip entry under the participant whose id is the second '_'-separated field of one of
    its folder names, the next two fields naming an assignment plugin (mod/assign/feedback/file/
    importziplib.php); the name before it is not read. So each student's pages go in
    ``<Full Name>_<id>_assignsubmission_file_/``, as Moodle's own download names the folder, with any '_'
    in the name written as a space. In Moodle each page is a file of its own: maths shows as TeX there
    (the per-student zips carry the local MathJax)."""
    import zipfile
    from .course import submission_info
    if not any(m.get("lms") == "moodle" for m in submission_info(ws, assignment).values()):
        return None
    participants = moodle_participants(ws, assignment)
    feedback_dir = ws / "feedback"
    path = feedback_dir / "_bundles" / assignment / MOODLE_ZIP
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for page in sorted(pages):
            student = page.relative_to(feedback_dir).parts[0]
            if student not in participants:
                continue
            name, pid = participants[student]
            folder = "{}_{}_assignsubmission_file_".format(re.sub(r"[_/\\]+", " ", name).strip() or student, pid)
            file = f"{assignment}_feedback.html" if page.name == "index.html" else page.name
            zf.write(page, f"{folder}/{file}")
    tmp.replace(path)
    return path


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _note_page(assignment: str, res: StudentResult, zone=None) -> str:
    """A plain page for a submission that could not be run (status, score, reason); a student who
    handed nothing in reads that nothing was submitted (and what was received instead, if anything)."""
    if res.status == "missing":
        said = (f"<p><b>Nothing was submitted</b> for {_escape(assignment)}: no notebook of this assignment "
                "reached the grader, so there was nothing to grade.</p>")
        found = re.search(r"collect found instead: ([^)]*)\)", res.message or "")
        if found:
            said += (f"<p>What we received instead, which could not be graded: {_escape(found.group(1))}. "
                     "Hand in the notebook itself, under its original name.</p>")
    else:
        said = f"<p>Status: <b>{_escape(res.status)}</b></p><p>{_escape(res.message)}</p>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_escape(assignment)}</title>{WRAP_CSS}"
            f"</head><body><h1>{_escape(assignment)}: {res.score:g} / {res.max_score:g}</h1>"
            + said + (late_note(res, zone) if res.late is not None else "") + "</body></html>")


# ------------------------------------------------------------------ pages for ``watch`` (before the due time)
VIEWS = ("full", "visible", "score")
WITHHELD = "(this cell's hidden checks: their result is shown after the due time)"
WITHHELD_KEY = "autograder_withheld"  # output metadata: the note visible_only puts where a result waits


def visible_only(nb) -> None:
    """Keep in ``nb`` (an autograded notebook, before ``scrub``) only what running its visible checks
    shows: in every cell that holds hidden tests, the grader's partial-credit report goes, and so does
    any error that the traceback does not place in the cell's visible lines (the grader writes a hidden
    check's verdict as an error without a kernel traceback: it is withheld, never shown as passed)."""
    from .execute import failing_line, hidden_line_numbers
    for cell in nb.cells:
        if cell.cell_type != "code" or BEGIN not in cell.source or not cell.metadata.get("nbgrader", {}).get("points"):
            continue  # the grader's setup cell (0 points) has no result to withhold
        hidden = hidden_line_numbers(cell.source)
        kept, withheld = [], False
        for o in cell.outputs:
            if o.get("metadata", {}).get(PARTIAL):
                withheld = True
                continue
            if o.get("output_type") == "error":
                at = failing_line(nbformat.NotebookNode(outputs=[o], source=cell.source))
                if at is None or at[0] in hidden:
                    withheld = True
                    continue
            kept.append(o)
        has_error = any(o.get("output_type") == "error" for o in kept)
        if withheld or not has_error:  # the visible checks passed; what the hidden ones said waits
            kept.append(nbformat.v4.new_output("display_data", data={"text/plain": WITHHELD},
                                               metadata={WITHHELD_KEY: True}))
        cell.outputs = kept


def _after_body(html: str, fragment: str) -> str:
    """``fragment`` right after the page's <body ...> tag (the lab template's body has attributes)."""
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + fragment, html, count=1)


def _banner(view: str, due: str) -> str:
    later = f"after the due time ({_escape(due)})" if due else "when your instructor releases them"
    if view == "visible":
        said = ("This page shows what your notebook's <b>visible</b> checks said when the grader ran it. The hidden "
                f"checks' results and your score are shown {later}.")
    else:
        said = f"Your score is shown now; the details of every check are shown {later}."
    return f"<div style='border:2px solid #888;padding:0.5em;margin:0.5em 0'><p>{said}</p></div>"


def student_pages(opts: Options, student: str, view: str, dest: pathlib.Path, due: str = "") -> list[pathlib.Path]:
    """One student's feedback pages as ``watch`` sends them before the due time, written to
    ``dest/<notebook>.html``: ``full`` (the page ``feedback`` writes), ``visible`` (``visible_only``:
    no score, no hidden check's result), ``score`` (the score and status only). Maths shows as TeX
    (a page travels alone through nbgrader's exchange). Missing or unreadable work: the note page."""
    if view not in VIEWS:
        raise ValueError(f"feedback view {view!r}: one of {', '.join(VIEWS)}")
    ws = pathlib.Path(opts.workspace)
    zone = due_zone(ws, opts.assignment)
    res = load_results(ws, opts.assignment).get((opts.assignment, student))
    if res is None or res.status == "error":
        return []
    graded = sorted((ws / "autograded" / student / opts.assignment).glob("*.ipynb"))
    cfg = config(opts)
    written = []
    if not graded or view == "score":
        page = _note_page(opts.assignment, res, zone)
        if view == "score" and graded:
            page = page.replace("<body>", "<body>" + _banner(view, due), 1)
        for name in [p.stem for p in graded] or ["index"]:
            atomic_write(dest / f"{name}.html", page.encode())
            written.append(dest / f"{name}.html")
        return written
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        sources = {nb.name: {c.name: c.source or "" for c in nb.source_cells}
                   for nb in gb.find_assignment(opts.assignment).notebooks}
    exporter = _page_exporter(cfg, view)
    for path in graded:
        nb = nbformat.read(path, as_version=4)
        if view == "visible":
            visible_only(nb)
        scrub(nb, sources.get(path.stem, {}))
        resources = {"nbgrader": {"student": student, "assignment": opts.assignment, "notebook": path.stem,
                                  "db_url": cfg.CourseDirectory.db_url}}
        html, _ = exporter.from_notebook_node(nb, resources=resources)
        html = html.replace("</head>", WRAP_CSS + "</head>", 1)
        if view == "visible":
            html = _after_body(html, _banner(view, due))
        elif res.late is not None:
            html = counting_header(html, res, path.stem, len(graded))
            html = html.replace("<body>", "<body>" + late_note(res, zone), 1)
        if res.status != "graded" and res.message:
            html = _after_body(html, f"<p><b>Grading note:</b> {_escape(res.message)}</p>")
        atomic_write(dest / f"{path.stem}.html", offline(html, False).encode())
        written.append(dest / f"{path.stem}.html")
    return written


def message_page(assignment: str, title: str, text: str) -> str:
    """A plain page with one message (``watch``: a submission over the day's limit, or not gradable)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_escape(assignment)}</title>{WRAP_CSS}"
            f"</head><body><h1>{_escape(assignment)}: {_escape(title)}</h1><p>{_escape(text)}</p></body></html>")
