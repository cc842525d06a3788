"""``python -m autograder {release,collect,grade,watch,feedback,export,selfcheck,check,similarity}``."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from .errors import GradingStopped
from .gradebook import prepare
from .nbgrader_config import RELEASE, SOURCE, course_config, notebook_names
from .options import Options
from .wslock import private

# Each command's own module (nbgrader, Jupyter, matplotlib: seconds to import) is imported when that
# command runs, in _run_cmd; what is imported above is light, so `--help` answers at once.

DEFAULT = {f.name: f.default for f in dataclasses.fields(Options)}  # one home: options.Options


def _common(p, assignment=True):
    p.add_argument("--workspace", required=True, help="grading folder (submitted/, autograded/, gradebook.db)")
    if assignment:
        p.add_argument("--assignment", required=True, help="assignment id, e.g. ps1_dsc")
    p.add_argument("--source", default=str(SOURCE), help="nbgrader source folder (default: solutions/)")
    p.add_argument("--db-url", default=None, help="nbgrader db_url (default: SQLite in the workspace)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("release", help="solutions/ -> exercises/ (nbgrader generate_assignment)")
    p.add_argument("ids", nargs="*", help="assignment ids (default: all)")
    p.add_argument("--source", default=str(SOURCE))
    p.add_argument("--release", default=str(RELEASE))
    p = sub.add_parser("collect", help="bring a folder or zip of <student_id>/<notebook>, or a Canvas or Moodle "
                       "download, into a workspace")
    p.add_argument("submissions", metavar="SOURCE", help="folder of <student_id>/<notebook>, a zip of one, or a "
                   "Canvas / Moodle submissions zip (recognised by its names)")
    _common(p)
    p.add_argument("--roster", default=None, help="roster CSV: Canvas's gradebook export or student_id,name[,lms_id]"
                   "[,email] (required for an LMS download; roster students who handed nothing in are 'missing')")
    p.add_argument("--times", default=None, metavar="FILE",
                   help="the LMS's own submission times: Canvas's Submissions API list (JSON), Moodle's grading "
                        "worksheet (CSV), or lms_id|student_id,submitted_at (CSV); see autograder/lmstimes.py")
    p.add_argument("--timezone", default=None, help="time zone of times written without one (Moodle's worksheet: "
                   "the downloading user's zone; with --file-times: the zip's entry times), e.g. Europe/Zurich")
    p.add_argument("--zip-timezone", default="UTC", help=argparse.SUPPRESS)  # the old name of --timezone
    p.add_argument("--file-times", action="store_true",
                   help="take zip entry / file times as submission times (never right for Canvas or Moodle "
                        "downloads: they stamp the download's time; refused when all entries share one time)")
    p.add_argument("--replace", action="store_true",
                   help="this download is complete: students absent from it lose what was collected before "
                        "(default: a partial download keeps them)")
    p = sub.add_parser("grade", help="autograde every collected submission (resumes where it stopped)")
    _common(p)
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel graders (default: cores)")
    p.add_argument("--timeout-cell", type=int, default=DEFAULT["timeout_cell"], help="seconds per cell (nbgrader's limit)")
    p.add_argument("--timeout-notebook", type=float, default=DEFAULT["timeout_notebook"],
                   help="seconds per notebook, all cells")
    p.add_argument("--memory-mb", type=int, default=DEFAULT["memory_mb"], help="memory limit of a student's kernel")
    p.add_argument("--unsafe", action="store_true", help="run student code without the sandbox")
    p.add_argument("--regrade", action="store_true", help="grade everyone again and report what changed")
    p.add_argument("--scheduler", default=os.environ.get("AUTOGRADER_SCHEDULER"), metavar="tcp://HOST:PORT",
                   help="grade on this Dask cluster's workers instead of --workers local processes "
                        "(default: $AUTOGRADER_SCHEDULER; see autograder/README.md)")
    p.add_argument("--accept-withdrawn", action="store_true",
                   help="grade a student graded before whose notebook is gone now as missing (0); without it, "
                        "grade refuses and names them")
    p.add_argument("--no-canary", dest="canary", action="store_false",  # exit 3: the canary refused; 4: some errors
                   help="skip grading the reference answers first (they must score full marks, or nothing is graded)")
    p = sub.add_parser("watch", help="grade submissions as they arrive (nbgrader's exchange or a folder) and send "
                       "each learner's feedback page; course.toml's [watch] says what learners see before the due time")
    _common(p)
    p.add_argument("--exchange", default=None, metavar="ROOT", help="nbgrader's exchange root (learners use "
                   "`nbgrader submit` and `nbgrader fetch_feedback`)")
    p.add_argument("--course", default=None, help="nbgrader's course id in the exchange")
    p.add_argument("--inbox", default=None, metavar="DIR", help="a plain folder of <student>/<notebook>.ipynb instead")
    p.add_argument("--once", action="store_true", help="answer what has arrived, then stop")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default 1)")
    p.add_argument("--trust-names", action="store_true", help="grade an inbound folder whose owner is not the "
                   "student it names (an exchange whose accounts are not the student ids)")
    p.add_argument("--timeout-cell", type=int, default=DEFAULT["timeout_cell"], help="seconds per cell")
    p.add_argument("--timeout-notebook", type=float, default=DEFAULT["timeout_notebook"],
                   help="seconds per notebook, all cells")
    p.add_argument("--memory-mb", type=int, default=DEFAULT["memory_mb"], help="memory limit of a student's kernel")
    p.add_argument("--unsafe", action="store_true", help="run student code without the sandbox")
    p = sub.add_parser("feedback", help="HTML report per student, hidden tests removed, readable offline")
    _common(p)
    p = sub.add_parser("export", help="grades.csv and a score histogram PNG")
    _common(p, assignment=False)
    p.add_argument("--assignment", default=None, help="only this assignment (default: all)")
    p.add_argument("--output", required=True, help="CSV path; the PNGs and <stem>_cells.csv go next to it")
    p.add_argument("--format", default="csv", choices=("csv", "canvas", "moodle", "moodle-worksheet"),
                   help="csv: the full table; canvas: Canvas's gradebook import (--assignment A[,B...]); moodle: "
                        "Moodle's CSV grade import; moodle-worksheet: the assignment's grading worksheet filled in "
                        "(--worksheet)")
    p.add_argument("--points", default=None, metavar="N[,N...]",
                   help="rescale the final scores to N points (the LMS's points for the assignment; one per "
                        "--assignment)")
    p.add_argument("--worksheet", default=None, metavar="CSV",
                   help="Moodle's grading worksheet as downloaded for this assignment (--format moodle-worksheet)")
    p = sub.add_parser("selfcheck", help="run a notebook's visible tests and summarise (for learners)")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--timeout-cell", type=int, default=DEFAULT["timeout_cell"])
    p = sub.add_parser("check", help="cross-check gradebook, result files, autograded notebooks and export")
    p.add_argument("--workspace", required=True)
    p.add_argument("--csv", default=None, help="an exported grades.csv to check as well")
    p.add_argument("--db-url", default=None)
    p = sub.add_parser("similarity", help="answers that look copied (classmates, solutions/, mnlib, earlier terms), "
                       "for a person to read: similarity/<assignment>/pairs.csv and index.html")
    p.add_argument("--workspace", required=True)
    p.add_argument("--assignment", required=True)
    p.add_argument("--against", action="append", default=[], metavar="DIR",
                   help="an earlier term's submissions (<student>/[<assignment>/]<notebook>.ipynb); repeatable")
    p.add_argument("--source", default=str(SOURCE), help="the reference answers (default: solutions/)")
    return ap


def _options(a):
    return Options(workspace=os.path.abspath(a.workspace), assignment=a.assignment, source=os.path.abspath(a.source),
                   db_url=a.db_url, **{k: getattr(a, k) for k in ("timeout_cell", "timeout_notebook", "memory_mb",
                                                                    "unsafe", "canary", "accept_withdrawn")
                                  if hasattr(a, k)})


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    try:
        if a.cmd in ("feedback", "export", "check"):  # a server gradebook that refuses: one clear line
            # (grade checks its own; collect writes no gradebook)
            url = course_config(a.workspace, db_url=a.db_url).CourseDirectory.db_url
            if not url.startswith("sqlite"):
                prepare(url)
        return _run(a)
    except ValueError as exc:  # bad input: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GradingStopped as exc:  # no sandbox, a lost Dask cluster, the canary refused (canary.CanaryFailed:
        # exit status 3, nothing graded): the batch stops, what was committed stays
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status


def _start_zygote(a) -> None:
    """The kernels' zygote (autograder/zygote.py) imports torch in its own process, about 1.5 s: start
    it before this process imports nbgrader (2.4 s), so that neither waits for the other. grade()
    finds it started (the same preload) or starts its own."""
    if a.unsafe or a.scheduler:
        return
    from . import kernel_probe, sandbox
    try:
        modules = kernel_probe.assignment_modules(a.source, a.assignment, notebook_names(a.assignment, a.source))
    except (OSError, ValueError):  # grade() says what is wrong with the source
        return
    sandbox.start_zygote(sandbox.preload_for(modules))


def _run(a) -> int:
    if a.cmd in ("collect", "export", "similarity", "watch"):  # submissions, rosters and marks: the owner's alone
        with private():
            return _run_cmd(a)
    return _run_cmd(a)


def _run_cmd(a) -> int:
    if a.cmd == "release":
        from .release import release
        ids = release(a.ids, source=a.source, release_dir=a.release)
        print(f"released {', '.join(ids)} -> {a.release}")
    elif a.cmd == "collect":
        from .collect import collect
        report = collect(a.submissions, assignment=a.assignment, workspace=a.workspace, source_dir=a.source,
                         roster=a.roster, zip_timezone=a.zip_timezone, times=a.times, timezone=a.timezone,
                         file_times=a.file_times, replace=a.replace)
        print("\n".join(report.lines()))
    elif a.cmd == "grade":
        _start_zygote(a)
        from .grade import grade
        if a.workers is not None and a.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {a.workers}")
        s = grade(_options(a), workers=a.workers, regrade=a.regrade, scheduler=a.scheduler)
        errors = s["statuses"].get("error", 0)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(s["statuses"].items()) if k != "error") or "nothing"
        print(f"graded {s['graded'] - errors} ({counts}), {s['skipped']} already up to date, "
              f"{s['wall_s']:.1f} s with {s['workers']} {'Dask ' if s['where'] != 'local' else ''}worker(s)")
        if errors:
            print(f"NOT graded {errors}: the grader failed (status error, nothing recorded in the gradebook); "
                  "fix what the messages below say and run the same command again: it grades only these")
        for student, old, new in s["changed"]:
            print(f"changed  {student}: {old} -> {new}")
        for r in s["results"]:
            if r.status != "graded" or r.message:
                print(f"{r.status:8s} {r.student}: {r.message}")
        review = [r.student for r in s["results"] if r.status == "needs_review"]
        if review:
            print(f"NEEDS REVIEW: {len(review)} student(s) handed in files that were not graded ({', '.join(review)}); "
                  "export leaves their marks empty until their files are fixed and collected again")
        flagged = [r for r in s["results"] if r.flags]
        if flagged:
            print(f"{len(flagged)} submission(s) to read before trusting their scores: their code reaches "
                  "into the kernel's machinery, which can hide a failing test (see autograder/flags.py)")
            for r in flagged:
                print(f"review   {r.student} ({r.score:g}/{r.max_score:g}): " + "; ".join(r.flags))
        if errors:
            return 4
    elif a.cmd == "watch":
        from .watch import watch
        n = watch(_options(a), exchange=a.exchange, course=a.course, inbox=a.inbox, once=a.once,
                  interval=a.interval, trust_names=a.trust_names)
        print(f"watch: answered {n} submission(s)")
    elif a.cmd == "feedback":
        from .feedback import feedback
        feedback(_options(a))
    elif a.cmd == "export":
        from .export import export
        db_url = course_config(a.workspace, db_url=a.db_url).CourseDirectory.db_url
        export(db_url, a.workspace, a.output, assignment=a.assignment, fmt=a.format, points=a.points,
               worksheet=a.worksheet)
    elif a.cmd == "selfcheck":
        from .selfcheck import selfcheck
        return 0 if selfcheck(a.notebook, timeout_cell=a.timeout_cell) else 1
    elif a.cmd == "similarity":
        from .similarity import similarity
        print("\n".join(similarity(a.assignment, a.workspace, against=a.against, source=a.source).lines()))
    elif a.cmd == "check":
        from .check import check
        problems = check(a.workspace, csv_path=a.csv, db_url=a.db_url)
        for line in problems:
            print(line)
        print(f"check: {len(problems)} problem(s) in {a.workspace}" if problems else f"check: {a.workspace} is consistent")
        return 1 if problems else 0
    return 0
