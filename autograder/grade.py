"""Autograde every collected submission of one assignment: the batch. N worker processes, resumable, atomic.

The batch plans what is missing or stale (``plan``), puts the canary's job first (autograder/canary.py),
and hands one job per student to N local worker processes (``run_pool``) or to a Dask cluster
(autograder/cluster.py). Each job is ``autograder.job.grade_one``: it returns an
``autograder.result.StudentResult``. The parent completes that record (digests, late record:
``commit`` in ``grade``, the one place), writes the gradebook from it, one transaction per student,
then stores it as ``results/<assignment>/<student>.json`` (temp + rename). That file is the commit
record: a re-run skips a student whose result matches the submission's and the source's digests,
and a SIGKILL at any point loses at most the students in flight.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import hashlib
import multiprocessing as mp
import os
import pathlib
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from multiprocessing.connection import wait

from nbgrader.api import Gradebook

from . import console, sandbox, wslock
from . import course as course_file
from .canary import CANARY, CanaryFailed, canary_submission, canary_verdict
from .cluster import run_dask
from .errors import GradingEnvironmentError
from .execute import THREAD_ENV
from .files import atomic_write

from .gradebook import prepare, record_retrying
from .job import grade_one, kernel_modules
from .nbgrader_config import RELEASE, notebook_names
from .options import Options, backstop_s, config, kernel_limits
from .release import generate, same_tree, source_digest
from .restore import sources_snapshot
from .result import ResultFileError, StudentResult, grader_error
from .result import load as load_results
from .result import path_of as _result_path

GRADER_VERSION = 2  # bump when scoring rules change: every stored result becomes stale (2: hidden tests run in the grader)


def submission_digest(folder: pathlib.Path, notebooks: list[str]) -> str:
    """sha256 over the submitted notebooks (absent ones count as absent)."""
    h = hashlib.sha256()
    for name in notebooks:
        p = folder / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"<missing>") + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- the local worker processes

def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` dies (Linux PR_SET_PDEATHSIG), so a grader
    killed with SIGKILL leaves no worker behind (the sandbox's launcher, watching its parent, then
    kills the worker's kernel). Elsewhere a no-op. ``parent`` closes the race with a parent that died
    before the call."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent is gone already: the signal will never come
        os._exit(1)


def _worker_main(conn, opts: Options, parent: int | None = None, sources: dict | None = None) -> None:
    """Grade jobs from ``conn`` until told to stop; one student at a time. ``sources``: the batch's
    snapshot of the gradebook's source notebooks (restore.sources_snapshot), or None."""
    if parent is not None:
        die_with_parent(parent)
    # grade() writes under umask 077; the kernel (as root: another uid) must still read what this worker
    # puts in its scratch folder (0700, the kernel's): the grader's pickled inputs (autograder/remote.py).
    # What a worker writes into the workspace goes through atomic_write: private whatever the umask.
    os.umask(0o022)
    os.environ.update(THREAD_ENV)
    # What the parent imported (torch, nbgrader, IPython: hundreds of thousands of objects, none of them
    # garbage) goes to the permanent generation: the worker's collections walk only what its jobs make.
    gc.freeze()
    if "torch" in sys.modules:
        # Forked from a process whose OpenMP pool already ran (grade() called from a program that used
        # torch, a test run): the child's first parallel op would wait forever on threads it does not
        # have. One thread per worker is the plan anyway (THREAD_ENV).
        sys.modules["torch"].set_num_threads(1)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        student, notebooks, *where = job
        try:
            res = grade_one(opts, student, notebooks, *where, sources=sources)
        except BaseException as exc:  # a grader failure, not the student's: record it, keep going
            res = grader_error(student, opts.assignment, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        conn.send(res)


def run_pool(opts: Options, jobs: list, n: int, finish, sources: dict | None = None) -> None:
    """Feed ``jobs`` to ``n`` persistent worker processes; a dead or stuck worker costs one student, not the batch.
    ``sources``: handed to each worker (see _worker_main)."""
    # fork: workers start with nbgrader, nbclient and zmq already imported (this module imports
    # them through autograder.job; a fresh interpreter spends seconds importing them, per worker).
    # The parent has started no thread and holds no
    # gradebook connection when the first workers fork; a replacement for a crashed worker forks
    # with one open, which it never touches.
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    hard_limit = backstop_s(opts, jobs)
    pending = deque(jobs)
    idle, busy = [], {}

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, opts, os.getpid(), sources), daemon=True)
        proc.start()
        child.close()
        return (proc, parent)

    def fail(job, message):
        return finish(grader_error(job[0], opts.assignment, message))

    workers = [start() for _ in range(n)]
    idle.extend(workers)
    try:
        while pending or busy:
            while idle and pending:
                w = idle.pop()
                job = pending.popleft()
                w[1].send(job)
                busy[w] = (job, time.monotonic())
            ready = wait([w[1] for w in busy] + [w[0].sentinel for w in busy], timeout=5.0)
            for w in list(busy):
                proc, conn = w
                job, started = busy[w]
                if conn in ready or proc.sentinel in ready:
                    try:
                        res = conn.recv()
                    except (EOFError, OSError):
                        res = None
                    del busy[w]
                    if res is None:  # the worker process died: record it, replace the worker
                        stop = fail(job, f"grader process died (exit code {proc.exitcode})")
                        proc.join(1)
                        idle.append(start())
                    else:
                        stop = finish(res)
                        idle.append(w)
                    if stop is False:  # finish refused to go on (the canary failed): dispatch nothing more
                        pending.clear()
                elif time.monotonic() - started > hard_limit:
                    proc.kill()
                    proc.join(5)
                    del busy[w]
                    if fail(job, f"grader process stuck for {hard_limit:.0f} s; killed") is False:
                        pending.clear()
                    idle.append(start())
    finally:
        for proc, conn in idle + list(busy):
            with contextlib.suppress(Exception):
                conn.send(None)
        for proc, conn in idle + list(busy):
            proc.join(5)
            if proc.is_alive():
                proc.kill()



# ---------------------------------------------------------------- parent side

def record(gb, res: StudentResult) -> None:
    """Write one student's scores and comments into the gradebook in one transaction (retried on a race)."""
    record_retrying(gb, _write_record, res)


def _write_record(gb, res: StudentResult) -> None:
    """The gradebook rows of one result (inside gradebook.transaction: all or nothing)."""
    with warnings.catch_warnings():
        # nbgrader builds a submission's rows before adding them to the session: SQLAlchemy warns, harmlessly
        warnings.simplefilter("ignore", category=Warning)
        gb.update_or_create_student(res.student)
        gb.update_or_create_submission(res.assignment, res.student)
        for gid, c in res.cells.items():
            grade = gb.find_grade(gid, c.notebook, res.assignment, res.student)
            grade.auto_score = c.score
            grade.needs_manual_grade = grade.manual_score is not None or c.score is None
        for gid, comment in res.comments.items():
            if gid not in res.cells:
                continue  # ungraded answer cells: their comment lives only in the result file
            gb.find_comment(gid, res.cells[gid].notebook, res.assignment, res.student).auto_comment = comment



def needs_review(res: StudentResult, lms: dict) -> StudentResult:
    """A "missing" result of a student who handed in files collect could not take (collect's
    ``needs_review``): status needs_review, with what they handed in."""
    found = (lms.get(res.student) or {}).get("needs_review")
    if res.status != "missing" or not found:
        return res
    return dataclasses.replace(res, status="needs_review",
                               message=f"handed in {'; '.join(found)}: nothing gradable, so not graded. "
                                       "Fix the file and collect it again (it is never exported as 0)")


def refreshed(ws, res: StudentResult, policy, lms: dict) -> StudentResult | None:
    """``res`` with its late record recomputed (a due time or extension changed since it was graded),
    or None when nothing changed. A change that would need a re-grade (status error) is left to ``grade``."""
    new = course_file.with_late(ws, res, policy, lms)
    if new.status != res.status or new.late == res.late:
        return None
    return new



class Progress:
    """A progress bar with ETA on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int, workers: int, stream=None):
        stream = sys.stderr if stream is None else stream  # looked up now: a stream captured since import works
        self.total, self.done, self.workers, self.stream = total, 0, workers, stream
        self.t0 = time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        width = 30
        bar = "#" * int(width * self.done / max(self.total, 1))
        line = (f"[{bar:<{width}}] {self.done}/{self.total} {elapsed:5.0f}s elapsed, "
                f"ETA {eta:4.0f}s  {label}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def plan(opts: Options, regrade: bool = False, only: set[str] | None = None) -> tuple[list, list, dict]:
    """(to_grade, to_resync, info) for the workspace: what is missing or stale, what only needs the gradebook.

    ``info["unreadable"]``: the result files that could not be read (ResultFileError: corrupt, or another
    schema version); their students are graded again, which rewrites them.
    """
    ws = pathlib.Path(opts.workspace)
    notebooks = notebook_names(opts.assignment, opts.source)
    src_sha = source_digest(opts.assignment, opts.source)
    students = sorted(p.parent.name for p in (ws / "submitted").glob(f"*/{opts.assignment}")
                      if p.is_dir() and (only is None or p.parent.name in only))
    unreadable: list[ResultFileError] = []
    stored = load_results(ws, opts.assignment, errors=unreadable)
    todo, keep, withdrawn = [], [], []
    for student in students:
        folder = ws / "submitted" / student / opts.assignment
        sha = submission_digest(folder, notebooks)
        old = stored.get((opts.assignment, student))
        fresh = (old is not None and old.submission_sha == sha and old.source_sha == src_sha
                 and old.grader == GRADER_VERSION and old.status != "error")
        if (not fresh and old is not None and old.status in ("graded", "broken", "timeout")
                and not any((folder / nb).exists() for nb in notebooks)):
            withdrawn.append(f"{student} ({old.score:g}/{old.max_score:g})")
        (keep if fresh and not regrade else todo).append((student, notebooks, sha))
    if withdrawn and not opts.accept_withdrawn:
        raise ValueError(f"{len(withdrawn)} student(s) graded before have no notebook in submitted/ now: "
                         f"{', '.join(withdrawn[:10])}{', ...' if len(withdrawn) > 10 else ''}. Grading them would "
                         "turn their marks into 0 (\"missing\"). Was a download collected with --replace that "
                         "lacked them? Collect the download that has them, or pass --accept-withdrawn if they "
                         "really withdrew their work")
    return todo, keep, {"source_sha": src_sha, "stored": stored, "notebooks": notebooks, "unreadable": unreadable}


def ensure_assignment(opts: Options) -> list[str]:
    """Record the assignment in the workspace gradebook (generate it into workspace/release); return warnings."""
    ws = pathlib.Path(opts.workspace)
    ws.mkdir(parents=True, exist_ok=True)
    stamp = ws / "release" / f".{opts.assignment}.source_sha"
    sha = source_digest(opts.assignment, opts.source)
    if not (stamp.is_file() and stamp.read_text() == sha):
        generate(opts.assignment, config(opts))
        atomic_write(stamp, sha.encode())
    warnings = []
    committed = RELEASE / opts.assignment
    if pathlib.Path(opts.source).resolve() == (RELEASE.parent / "solutions").resolve() and committed.is_dir():
        diff = same_tree(committed, ws / "release" / opts.assignment)
        if diff:
            warnings.append(f"exercises/{opts.assignment} differs from a fresh release ({', '.join(diff)}): "
                            "learners may hold another version; run `python -m autograder release`")
    return warnings



# What a grading worker imports for its first notebook (the checks import torch and mnlib; the executor
# IPython's and nbgrader's machinery): about 2 s of CPU. Imported once in the process that forks the
# workers, each worker starts with them. Importing starts no thread, so forking stays safe.
WORKER_MODULES = ("torch", "mnlib", "IPython", "ipykernel", "sqlalchemy", "autograder.execute", "autograder.remote")


def preload_worker_modules() -> None:
    import importlib
    for name in WORKER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the worker says what is missing, as without this


@wslock.holding("grade")  # one grader per workspace and assignment; a second one is refused, naming the first
def grade(opts: Options, *, workers: int | None = None, regrade: bool = False, log=console.stderr,
          progress_stream=None, scheduler: str | None = None, only: set[str] | None = None,
          probe: sandbox.Probe | None = None) -> dict:
    """Grade what is missing or stale (everything with ``regrade``); return a summary dict.

    ``only``: these students alone (``watch`` grades one arrival at a time); ``probe``: the sandbox
    probed already by the caller (``watch``, once for its life), else probed here. ``progress_stream``: where
    the progress bar goes; None: the standard error stream as it is when grading starts.

    ``scheduler`` (tcp://HOST:PORT): grade the students on that Dask cluster (autograder/cluster.py)
    instead of ``workers`` local processes; this process still writes everything.
    """
    ws = pathlib.Path(opts.workspace)
    if not (ws / "submitted").is_dir():
        raise ValueError(f"workspace: {ws} has no submitted/ folder; run `collect` first")
    prepare(config(opts).CourseDirectory.db_url)  # a database that refuses: say so before anything is graded
    probe = probe or sandbox.probe()
    if opts.unsafe:
        log("UNSAFE: student code runs with your rights, without the sandbox (--unsafe).")
    elif not probe.ok:
        raise GradingEnvironmentError("grading runs student code with your rights; the sandbox is unavailable here "
                                      f"({probe.reason}). Fix that, or pass --unsafe on a machine you can throw away.")
    else:
        log(f"sandbox: {probe.mechanism}")
        log("  " + sandbox.describe(kernel_limits(opts), probe).replace("\n", "\n  "))
    for w in ensure_assignment(opts):
        log("warning: " + w)
    todo, keep, info = plan(opts, regrade, only)
    stored = info["stored"]
    for exc in info["unreadable"]:
        log(f"warning: {exc}; grading that student again")
    # deadlines and late policy: a bad course.toml stops here, nothing graded
    policy, lms = course_file.load(ws), course_file.submission_info(ws, opts.assignment)
    for student, _, _ in keep:  # a due time or an extension changed since grading: the late record follows
        new = refreshed(ws, stored[(opts.assignment, student)], policy, lms)
        if new is not None:
            atomic_write(_result_path(ws, opts.assignment, student), new.dumps().encode())
    t0 = time.perf_counter()
    summary = {"graded": 0, "skipped": len(keep), "changed": [], "statuses": {}, "results": [],
               "where": f"Dask at {scheduler}" if scheduler else "local", "workers": 0}
    db_url = config(opts).CourseDirectory.db_url
    with Gradebook(db_url) as gb:
        # A result file whose gradebook entry vanished (new database, crash between the two) is re-applied.
        have = {s.student.id for s in gb.find_assignment(opts.assignment).submissions}
        for student, _, _ in keep:
            if student not in have:
                record(gb, stored[(opts.assignment, student)])
        gb.engine.dispose()  # no open connection when the workers fork
    shas = {student: sha for student, _, sha in todo}
    book = {}  # the parent's gradebook, opened once the workers are forked
    canary = {"pending": False, "held": [], "failed": None, "seconds": None}

    def commit(res: StudentResult) -> None:
        """The one place a result is completed, recorded in the gradebook and stored."""
        res = dataclasses.replace(res, submission_sha=shas[res.student], source_sha=info["source_sha"],
                                  grader=GRADER_VERSION)
        res = needs_review(res, lms)  # handed in something not gradable: a person decides, never a silent 0
        res = course_file.with_late(ws, res, policy, lms)  # res.late: submitted_at, late_by, raw and penalised score
        old = stored.get((opts.assignment, res.student))
        if old is not None and old.score != res.score:
            res = dataclasses.replace(res, history=(*old.history, {"score": old.score, "status": old.status}))
            summary["changed"].append((res.student, old.score, res.score))
        if res.status != "error":
            try:
                if "gb" not in book:
                    book["gb"] = Gradebook(db_url)
                record(book["gb"], res)
            except Exception as exc:  # keep the batch going; the student is re-tried next run
                res = dataclasses.replace(res, status="error", message=f"gradebook: {type(exc).__name__}: {exc}")
        atomic_write(_result_path(ws, opts.assignment, res.student), res.dumps().encode())
        summary["graded"] += 1
        summary["statuses"][res.status] = summary["statuses"].get(res.status, 0) + 1
        summary["results"].append(res)
        bar.step(f"{res.student}: {res.status} {res.score:g}/{res.max_score:g}")

    def finish(res: StudentResult):
        """Commit a student's result; hold them while the canary runs; False stops the batch."""
        if res.student == CANARY:
            canary["pending"], canary["seconds"] = False, res.total_s
            canary["failed"] = canary_verdict(opts, res)
            if canary["failed"]:
                canary["held"].clear()  # never recorded: graded again on the next run
                return False
            for held in canary["held"]:
                commit(held)
            canary["held"].clear()
            return None
        if canary["failed"]:
            return False  # in flight when the canary failed: dropped, graded on the next run
        if canary["pending"]:
            canary["held"].append(res)
            return None
        commit(res)
        return None

    jobs = [(s, nbs) for s, nbs, _ in todo]
    if todo and opts.canary:  # the reference answers, graded first, in the same sandbox and environment
        jobs.insert(0, (CANARY, info["notebooks"], canary_submission(opts, info["notebooks"])))
        canary["pending"] = True
    n = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    if jobs and not scheduler and not opts.unsafe:  # one process that imports what the notebook imports
        preload = sandbox.preload_for(kernel_modules(opts, info["notebooks"]))  # once; each kernel is its fork
        # the workers' own imports (preload_worker_modules) while the zygote imports its libraries
        sandbox.share_zygote(preload, meanwhile=preload_worker_modules)
        log(sandbox.zygote_status(preload))
    bar = Progress(len(todo), n, progress_stream)
    try:
        if jobs and scheduler:
            n = run_dask(opts, jobs, finish, scheduler, log=log)
        elif jobs:
            # what the sanitizers read of the gradebook, read once here (ensure_assignment wrote it; nothing
            # changes it while this batch holds the workspace), not by every notebook's sanitizing
            run_pool(opts, jobs, n, finish, sources_snapshot(db_url, opts.assignment, info["notebooks"]))
    finally:
        if "gb" in book:
            book["gb"].close()
            book["gb"].engine.dispose()
    if canary["failed"]:
        raise CanaryFailed(canary["failed"])
    summary["canary_s"] = canary["seconds"]
    if canary["seconds"] is not None:
        log(f"canary: the reference answers score full marks here ({canary['seconds']:.1f} s)")
    summary["wall_s"] = time.perf_counter() - t0
    summary["workers"] = n
    return summary

