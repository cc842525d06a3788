"""``python -m autograder watch``: grade submissions as they arrive, one grader process for the term.

Sources (one per run):
- ``--exchange ROOT --course ID``: nbgrader's exchange. Learners run ``nbgrader submit``, which writes
  ``ROOT/ID/inbound/<student>+<assignment>+<timestamp>[+<random>]/`` (the notebooks, then
  ``timestamp.txt``, then ``submission_secret.txt``: a folder is complete once its secret is); the
  feedback page goes to ``ROOT/ID/feedback/<md5(secret + notebook)>.html``, where ``nbgrader
  fetch_feedback`` finds it (nbgrader.exchange.default.release_feedback names it the same way).
  The name of an inbound folder is the learner's claim: ``nbgrader submit --student`` lets anyone
  write any name. The folder's owner is the evidence: a folder whose owner's account name is not the
  student id it names is refused, loudly, and graded for nobody (``--trust-names`` for an exchange
  whose accounts are not the student ids).
- ``--inbox DIR``: a plain folder of ``<student>/<notebook>.ipynb`` (and nbgrader's ``timestamp.txt``
  if there is one). A notebook counts once it has not changed for ``SETTLE_S`` seconds; each new
  content of a student's files is one submission. Feedback pages stay in the workspace.

Each submission is collected into the workspace (``collect``: the same checks, the same
``submitted/`` folder), graded (``grade`` for that student alone: same sandbox, results, gradebook,
late records) and answered with a feedback page (``feedback.student_pages``). The reference answers
(the canary) are graded once when watching starts and again whenever the assignment's source
changes; a canary failure stops the watch (exit status 3) before any learner is graded with it.

Before the learner's (extended) due time, ``course.toml``'s ``[watch]`` decides what the page shows
(``before_due``: the visible checks only, the score only, or everything) and how many submissions a
learner may have graded per calendar day (``per_day``). A submission over the limit is still
collected (the batch after the due time grades the newest one) and its page says when the next
grading is possible; it is not graded now, so the hidden checks cannot be probed by resubmitting.
After the due time every page is the full one.

The journal ``<workspace>/watch/<assignment>/journal.jsonl`` records each submission once it is
answered (one JSON line, appended and fsync'd). A submission is answered at most once: restarting
the watch skips what the journal holds, and one killed (SIGKILL) mid-grading is graded again from
the start on restart (grading is idempotent: the workspace keeps results by content). While it runs,
the watch holds the workspace's grading lock for the assignment: ``grade`` run beside it is refused
and names it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import tempfile
import time

from . import console, course as course_file, wslock
from .files import atomic_write
from .options import Options

SETTLE_S = 1.0  # --inbox: a notebook untouched this long is complete
RETRY_S = 60.0  # a submission the grader failed on (not the learner) is tried again after this long
INBOUND = re.compile(r"(?P<student>[^+]+)\+(?P<assignment>[^+]+)\+(?P<timestamp>[^+]+)(?:\+(?P<random>.+))?$")
SECRET = re.compile(r"[0-9a-f]{32,}$")


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One submission seen in the source: its key (unique for its content), who, where, when."""

    key: str
    student: str
    folder: pathlib.Path
    notebooks: tuple[pathlib.Path, ...]
    secret: str | None = None  # nbgrader's submission secret: names the feedback file in the exchange
    refused: str = ""  # why it must not be graded (its owner is not the student it names)


def exchange_arrivals(root: pathlib.Path, course: str, assignment: str, trust_names: bool = False) -> list[Arrival]:
    """The complete submissions of ``assignment`` in nbgrader's exchange inbound folder, oldest first."""
    inbound = root / course / "inbound"
    if not inbound.is_dir():
        raise ValueError(f"--exchange: {inbound} does not exist (nbgrader's exchange root and --course)")
    out = []
    for folder in sorted(inbound.iterdir(), key=lambda p: p.name.split("+")[2:3]):
        m = INBOUND.match(folder.name)
        if m is None or m["assignment"] != assignment or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            secret = (folder / "submission_secret.txt").read_text().strip()
        except OSError:
            continue  # nbgrader writes the secret last: not complete yet
        if not SECRET.match(secret):
            continue
        refused = ""
        if not trust_names:
            st = folder.stat()
            try:
                owner = pwd.getpwuid(st.st_uid).pw_name
            except KeyError:
                owner = str(st.st_uid)
            if owner != m["student"]:
                refused = (f"the folder names student {m['student']!r} but belongs to account {owner!r} "
                           "(nbgrader submit --student writes any name; --trust-names if accounts are not student ids)")
        notebooks = tuple(sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink()))
        out.append(Arrival(folder.name, m["student"], folder, notebooks, secret, refused))
    return out


def inbox_arrivals(inbox: pathlib.Path, now: float | None = None) -> list[Arrival]:
    """The students' current notebooks in a plain folder, each settled for ``SETTLE_S``; the key is
    the student and a digest of the files, so the same content is one submission however often it is
    seen."""
    if not inbox.is_dir():
        raise ValueError(f"--inbox: {inbox} is not a folder")
    now = time.time() if now is None else now
    out = []
    for folder in sorted(p for p in inbox.iterdir() if p.is_dir() and not p.is_symlink()):
        notebooks = tuple(sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink()))
        if not notebooks or any(now - p.stat().st_mtime < SETTLE_S for p in notebooks):
            continue
        h = hashlib.sha256()
        for p in notebooks:
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        out.append(Arrival(f"{folder.name}/{h.hexdigest()[:20]}", folder.name, folder, notebooks))
    return out


class Journal:
    """What was answered, one JSON line per submission (appended, fsync'd; a torn last line is ignored)."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    self.records[rec["key"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue  # the line a kill tore: that submission is answered again

    def add(self, rec: dict) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(rec, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records[rec["key"]] = rec

    def graded_on(self, student: str, day: str) -> int:
        return sum(1 for r in self.records.values() if r["student"] == student and r["state"] == "graded"
                   and r.get("day") == day)


def _zone(policy, assignment: str):
    a = policy.assignments.get(assignment) if policy is not None else None
    return a.due.tzinfo if a is not None else dt.timezone.utc


def _policy(policy, assignment: str) -> course_file.WatchPolicy:
    """The assignment's [watch] settings: its own, else the course's, else the defaults."""
    a = policy.assignments.get(assignment) if policy is not None else None
    return a.watch if a is not None else (policy.watch if policy is not None else course_file.WatchPolicy())


def view_for(policy, assignment: str, student: str, now: dt.datetime) -> tuple[str, str]:
    """(the page's view, the due time as shown): ``full`` after the learner's due time, else the
    course's ``before_due``; without a due time for the assignment, ``before_due`` always."""
    a = policy.assignments.get(assignment) if policy is not None else None
    watch = _policy(policy, assignment)
    if a is None:
        return watch.before_due, ""
    due = a.due_for(student)
    if now >= due:
        return "full", due.strftime("%d %b %Y, %H:%M %Z")
    return watch.before_due, due.strftime("%d %b %Y, %H:%M %Z")


def per_day(policy, assignment: str) -> int:
    return _policy(policy, assignment).per_day


def _release(arrival: Arrival, pages: list[pathlib.Path], exchange_feedback: pathlib.Path | None) -> list[str]:
    """Put each page where ``nbgrader fetch_feedback`` looks for it (exchange only); return the paths."""
    if exchange_feedback is None or arrival.secret is None:
        return [str(p) for p in pages]
    if not exchange_feedback.is_dir():
        exchange_feedback.mkdir(parents=True)
        # as nbgrader's release_feedback makes it: learners may open a page by its name (the hash of
        # their own secret), never list the folder; set explicitly, the watch runs under umask 077
        os.chmod(exchange_feedback, 0o711)
    out = []
    names = [p.stem for p in arrival.notebooks] or ["index"]
    by_name = {p.stem: p for p in pages}
    for name in names:
        page = by_name.get(name) or by_name.get("index")
        if page is None:
            continue
        digest = hashlib.md5(arrival.secret.encode() + name.encode()).hexdigest()  # noqa: S324 - nbgrader's name
        dest = exchange_feedback / f"{digest}.html"
        tmp = dest.with_name(f".{digest}.{os.getpid()}.tmp")
        shutil.copyfile(page, tmp)
        os.chmod(tmp, 0o644)  # the learner's account reads it; it holds only their own feedback
        tmp.replace(dest)
        out.append(str(dest))
    return out


def answer(opts: Options, arrival: Arrival, journal: Journal, state: dict, *, exchange_feedback=None,
           now: dt.datetime | None = None, log=console.stderr) -> dict:
    """Collect, grade and answer one submission; return (and journal) its record."""
    from .collect import collect
    from .feedback import message_page, student_pages
    from .grade import grade
    from .release import source_digest

    ws = pathlib.Path(opts.workspace)
    now = now or dt.datetime.now(dt.timezone.utc)
    policy = course_file.load(ws)
    day = now.astimezone(_zone(policy, opts.assignment)).date().isoformat()
    rec = {"key": arrival.key, "student": arrival.student, "at": now.isoformat(timespec="seconds"), "day": day}
    pages_dir = ws / "watch" / opts.assignment / "feedback" / arrival.student
    t0 = time.perf_counter()
    if arrival.refused:
        log(f"REFUSED {arrival.key}: {arrival.refused}; not graded, no feedback")
        rec.update(state="refused", reason=arrival.refused)
        journal.add(rec)
        return rec
    with tempfile.TemporaryDirectory(prefix="watch-") as tmp:
        mine = pathlib.Path(tmp) / arrival.student
        mine.mkdir()
        for nb in arrival.notebooks:
            shutil.copyfile(nb, mine / nb.name)
        if (arrival.folder / "timestamp.txt").is_file():
            shutil.copyfile(arrival.folder / "timestamp.txt", mine / "timestamp.txt")
        elif arrival.notebooks:  # a plain folder: the time it settled, as nbgrader writes it
            stamp = dt.datetime.fromtimestamp(max(p.stat().st_mtime for p in arrival.notebooks), dt.timezone.utc)
            (mine / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        report = collect(tmp, assignment=opts.assignment, workspace=ws, source_dir=opts.source)
    if report.problems():
        log(f"collect {arrival.key}: " + "; ".join(report.lines()))
    limit = per_day(policy, opts.assignment)
    used = journal.graded_on(arrival.student, day)
    view, due = view_for(policy, opts.assignment, arrival.student, now)
    if limit and used >= limit and view != "full":
        after = f"the grading after the due time ({due})" if due else "the course's final grading"
        text = (f"Your submission was received and kept: {after} grades your "
                f"newest submission. It was not graded now: you have had {used} grading(s) today, the course's "
                f"limit is {limit} a day. Submit again tomorrow to be graded before the due time.")
        pages_dir.mkdir(parents=True, exist_ok=True)
        page = pages_dir / "index.html"
        atomic_write(page, message_page(opts.assignment, "received, not graded today", text).encode())
        rec.update(state="limited", pages=_release(arrival, [page], exchange_feedback))
        journal.add(rec)
        log(f"limited  {arrival.student}: {used} of {limit} gradings today; kept, not graded")
        return rec
    sha = source_digest(opts.assignment, opts.source)
    run = dataclasses.replace(opts, canary=state.get("canary_sha") != sha)
    # the watch holds the workspace's lock already: the undecorated grade, for this student alone
    if "probe" not in state:
        from . import sandbox
        state["probe"] = sandbox.probe()
    summary = grade.__wrapped__(run, workers=1, only={arrival.student}, log=lambda *_: None,
                                progress_stream=io.StringIO(), probe=state["probe"])
    if summary.get("canary_s") is not None:  # it ran (grade runs it only when someone is graded) and passed
        state["canary_sha"] = sha
        log(f"canary: the reference answers score full marks ({summary['canary_s']:.1f} s)")
    res = next((r for r in summary["results"] if r.student == arrival.student), None)
    if res is None:  # up to date: this content was graded before (a resubmission of the same files)
        from .result import load as load_results
        res = load_results(ws, opts.assignment).get((opts.assignment, arrival.student))
    if res is not None and res.status == "error":
        log(f"NOT graded {arrival.student}: the grader failed ({res.message}); it is tried again on the next "
            "pass, nothing is sent to the learner")
        rec.update(state="error")
        state.setdefault("retry", {})[arrival.key] = time.monotonic() + RETRY_S
        return rec  # not journaled: answered on a later pass
    pages = student_pages(opts, arrival.student, view, pages_dir, due)
    rec.update(state="graded", view=view, pages=_release(arrival, pages, exchange_feedback),
               seconds=round(time.perf_counter() - t0, 3))
    if res is not None:
        rec.update(score=res.score, max_score=res.max_score, status=res.status)
    journal.add(rec)
    log(f"graded   {arrival.student}: {rec.get('status', 'up to date')} "
        f"{rec.get('score', '')}{'/' if 'score' in rec else ''}{rec.get('max_score', '')}, "
        f"{view} feedback in {rec['seconds']:.1f} s")
    return rec


def watch(opts: Options, *, exchange: str | None = None, course: str | None = None, inbox: str | None = None,
          once: bool = False, interval: float = 1.0, trust_names: bool = False, log=console.stderr) -> int:
    """Answer every new submission, then (unless ``once``) look again every ``interval`` seconds until
    SIGINT/SIGTERM. Returns the number of submissions answered."""
    if (exchange is None) == (inbox is None):
        raise ValueError("watch: give either --exchange ROOT --course ID or --inbox DIR")
    if exchange is not None and not course:
        raise ValueError("watch: --exchange needs --course (nbgrader's course id)")
    ws = pathlib.Path(opts.workspace)
    ws.mkdir(parents=True, exist_ok=True)
    course_file.load(ws)  # a bad course.toml: said now, before anything is collected
    lock = wslock.acquire(ws, opts.assignment, "watch")
    stop = {"now": False}

    def ask_stop(signum, _frame):
        stop["now"] = True

    old = {s: signal.signal(s, ask_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    journal = Journal(ws / "watch" / opts.assignment / "journal.jsonl")
    from .grade import preload_worker_modules
    preload_worker_modules()  # once, not in every grading worker it forks
    feedback_dir = pathlib.Path(exchange) / course / "feedback" if exchange else None
    state: dict = {}
    answered = 0
    try:
        with wslock.private():
            while not stop["now"]:
                if exchange:
                    arrivals = exchange_arrivals(pathlib.Path(exchange), course, opts.assignment, trust_names)
                else:
                    arrivals = inbox_arrivals(pathlib.Path(inbox))
                for arrival in arrivals:
                    if stop["now"]:
                        break
                    if arrival.key in journal.records or state.get("retry", {}).get(arrival.key, 0) > time.monotonic():
                        continue
                    rec = answer(opts, arrival, journal, state, exchange_feedback=feedback_dir, log=log)
                    answered += rec.get("state") != "error"
                if once:
                    break
                time.sleep(interval)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if lock is not None:
            lock.release()
    return answered
