"""Autograde every collected submission of one assignment: N worker processes, resumable, atomic.

Data flow per student: a worker process sanitizes the submitted notebook with nbgrader's
preprocessors (outputs cleared, test cells restored from the gradebook, deleted ones put back),
executes it in a sandboxed kernel, scores it, writes the autograded notebook (temp + rename) and
returns an ``autograder.result.StudentResult``. The parent completes that record (digests, late
record: ``commit`` in ``grade``, the one place), writes the gradebook from it, one transaction per
student, then stores it as ``results/<assignment>/<student>.json`` (temp + rename). That file is the commit record: a
re-run skips a student whose result matches the submission's and the source's digests, and a
SIGKILL at any point loses at most the students in flight.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import pathlib
import shutil
import sys
import time
import traceback
import warnings
from collections import deque
from multiprocessing.connection import wait

from . import console, wslock
from .errors import GradingEnvironmentError
from .nbgrader_config import BACKSTOP_S, CELL_TIMEOUT_S
from .result import CellResult, ResultFileError, StudentResult, grader_error
from .result import load as load_results  # noqa: F401 - the readers' entry point, re-exported
from .result import path_of as _result_path

GRADER_VERSION = 2  # bump when scoring rules change: every stored result becomes stale (2: hidden tests run in the grader)


@dataclasses.dataclass(frozen=True)
class Options:
    """What one grading run needs in a worker (picklable)."""

    workspace: str
    assignment: str
    source: str
    db_url: str | None = None
    timeout_cell: int = CELL_TIMEOUT_S  # nbgrader's per-cell limit, seconds
    timeout_notebook: float = 300.0  # whole-notebook wall time, seconds, kernel start included
    memory_mb: int = 2048
    unsafe: bool = False
    canary: bool = True  # grade the reference answers first; refuse the batch unless they score full marks
    accept_withdrawn: bool = False  # let a student graded before, whose submission is gone now, become "missing"


CANARY = ".canary"  # the reference answers' pseudo-student (a leading dot: no student id collect accepts)


class CanaryFailed(RuntimeError):
    """The reference answers do not score full marks here: the environment, not the class, is broken."""


def _cfg(opts: Options):
    from .nbgrader_config import course_config
    ws = pathlib.Path(opts.workspace)
    return course_config(ws, source=opts.source, release=ws / "release", db_url=opts.db_url)


def atomic_write(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half.

    Private: the file is written mode 0600 and every folder it creates 0700, whatever the umask (a
    workspace holds submissions, grades and the reference answers of the canary).
    """
    private_dirs(pathlib.Path(path).parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # a stale temp file of the same name keeps its mode otherwise
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def private_dirs(folder: pathlib.Path) -> None:
    """``folder`` and its missing parents, each created mode 0700 (existing ones keep their mode)."""
    folder = pathlib.Path(folder)
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process
            if not d.is_dir():
                raise
        else:
            os.chmod(d, 0o700)  # mkdir's mode is masked by the umask: 0700 exactly


def submission_digest(folder: pathlib.Path, notebooks: list[str]) -> str:
    """sha256 over the submitted notebooks (absent ones count as absent)."""
    h = hashlib.sha256()
    for name in notebooks:
        p = folder / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"<missing>") + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- worker side

class NotGradable(Exception):
    """A submitted file that is no notebook of this assignment, with what a TA can act on (grade_one)."""


def _grade_ids(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}


def foreign_notebook(nb, source: pathlib.Path, assignment: str, name: str) -> str | None:
    """Why ``nb`` is not ``assignment``'s notebook ``name``, naming the assignment it most likely
    belongs to; None when it is (or cannot be told): it shares a graded cell id with the source.

    Compared by nbgrader cell ids (``grade_id``) against each assignment's source notebook in
    ``source`` (``<id>/<id>.ipynb``, or any notebook of the folder)."""
    import nbformat
    ids = _grade_ids(nb)
    own_path = source / assignment / name
    if not ids or not own_path.is_file():
        return None
    try:
        if ids & _grade_ids(nbformat.read(own_path, as_version=4)):
            return None
    except Exception:  # noqa: BLE001 - an unreadable source is the batch's problem, reported elsewhere
        return None
    best, best_n = None, 0
    for other in sorted(p for p in source.iterdir() if p.is_dir() and p.name != assignment):
        for path in sorted(other.glob("*.ipynb")):
            try:
                n = len(ids & _grade_ids(nbformat.read(path, as_version=4)))
            except Exception:  # noqa: BLE001 - not a notebook we can compare with
                continue
            if n > best_n:
                best, best_n = other.name, n
    if best is not None:
        return f"this is not {assignment}'s notebook (it looks like {best}: {best_n} of its {len(ids)} nbgrader cells are {best}'s)"
    return (f"this is not {assignment}'s notebook: none of its {len(ids)} nbgrader cells is one of "
            f"{assignment}'s (cell ids such as {sorted(ids)[0]!r})")


def grade_one(opts: Options, student: str, notebooks: list[str], where: dict | None = None) -> StudentResult:
    """Grade one student's submission; return the result record (the worker writes no gradebook).

    ``where`` (the canary) overrides the folders: {"submitted": folder, "autograded": folder}.
    """
    import nbformat
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, IgnorePattern,
                                        LimitOutput, OverwriteKernelspec)
    from nbgrader import utils as nbutils
    from .execute import Run, cell_score
    from .flags import flags as review_flags
    from .kernel_probe import needed_modules
    from .remote import GraderSetupError
    from .restore import RestoreCells

    t0 = time.perf_counter()
    cfg = _cfg(opts)
    ws = pathlib.Path(opts.workspace)
    folder = pathlib.Path(where["submitted"]) if where else ws / "submitted" / student / opts.assignment
    out_dir = pathlib.Path(where["autograded"]) if where else ws / "autograded" / student / opts.assignment
    status = "graded"
    cells: dict[str, CellResult] = {}
    comments: dict[str, str | None] = {}
    restored, discarded_all, review, hidden, execute_s = [], [], [], {}, 0.0
    messages = []
    limits = kernel_limits(opts)
    for name in notebooks:
        stem = name[:-len(".ipynb")]
        path = folder / name
        resources = {"nbgrader": {"student": student, "assignment": opts.assignment, "notebook": stem,
                                  "db_url": cfg.CourseDirectory.db_url}}
        try:
            if path.is_file() and path.stat().st_size == 0:
                raise NotGradable("empty file (0 bytes)")
            nb = nbformat.read(path, as_version=4)
            if not any(nbutils.is_grade(c) or nbutils.is_solution(c) for c in nb.cells):
                raise ValueError("no nbgrader cells (not this assignment's notebook?)")
            foreign = foreign_notebook(nb, pathlib.Path(opts.source), opts.assignment, name)
            if foreign:
                raise NotGradable(foreign)
        except FileNotFoundError:
            status, nb = "missing", None
            messages.append(f"{name}: not submitted" + _collect_note(ws, opts.assignment, student))
        except NotGradable as exc:  # what a TA can act on, said plainly
            status, nb = "broken", None
            messages.append(f"{name}: not a gradable notebook: {exc}")
        except Exception as exc:  # unreadable JSON, wrong format: the submission is broken
            status, nb = "broken", None
            messages.append(f"{name}: not a gradable notebook ({type(exc).__name__}: {exc})")
        if nb is None:
            cells.update(_zero_cells(cfg, opts.assignment, stem))
            continue
        review += [f"{stem}: {f}" for f in review_flags(nb)]  # for a person; no score changes
        restorer = RestoreCells(config=cfg)
        released = ws / "release" / opts.assignment / name
        released_sources = {}
        if released.is_file():
            released_cells = [c for c in nbformat.read(released, as_version=4).cells
                              if "grade_id" in c.metadata.get("nbgrader", {})]
            restorer.order = [c.metadata["nbgrader"]["grade_id"] for c in released_cells]
            released_sources = {c.metadata["nbgrader"]["grade_id"]: c.source for c in released_cells
                                if nbutils.is_locked(c) and not nbutils.is_solution(c)}
        submitted_sources = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                             if "grade_id" in c.metadata.get("nbgrader", {})}
        try:
            for pp in (ClearOutput(config=cfg), DeduplicateIds(config=cfg), OverwriteKernelspec(config=cfg),
                       restorer, CheckCellMetadata(config=cfg)):
                nb, resources = pp.preprocess(nb, resources)
        except Exception as exc:  # metadata nbgrader refuses (tampered or from another assignment)
            status = "broken"
            messages.append(f"{name}: nbgrader cannot sanitize it ({type(exc).__name__}: {exc})")
            cells.update(_zero_cells(cfg, opts.assignment, stem))
            continue
        restored += [f"{stem}:{gid}" for gid in restorer.restored]
        discarded = discarded_edits(submitted_sources, released_sources)  # read-only cells edited: put back
        discarded_all += [f"{stem}:{gid}" for gid in discarded]
        run = Run(limits=limits, unsafe=opts.unsafe, wall_s=opts.timeout_notebook)
        source_nb = pathlib.Path(opts.source) / opts.assignment / name
        if source_nb.is_file():  # the kernel must import what the reference imports, before any cell runs
            run.preflight = needed_modules([c.source for c in nbformat.read(source_nb, as_version=4).cells
                                            if c.cell_type == "code"])
        for extra in (pathlib.Path(opts.source) / opts.assignment).iterdir():  # data files the notebook reads
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy(extra, run.scratch / extra.name)
        try:
            execute_s += run.execute(nb, resources, cfg, opts.timeout_cell)
        except Exception as exc:  # DeadKernelError and friends: score what ran, record why
            if isinstance(exc, GraderSetupError):
                raise  # recorded as the grader's error (status "error"), retried on the next run
            if run.timed_out:
                status = "timeout"
                messages.append(f"{name}: stopped at the {opts.timeout_notebook:g} s wall-time limit")
            elif run.output_overflow:
                status = "broken"
                messages.append(f"{name}: stopped: {run.overflow_message()}")
            else:
                status = "broken"
                messages.append(f"{name}: the kernel died ({type(exc).__name__}: {str(exc)[:200]})")
        finally:
            run.close()
        hidden[stem] = run.hidden_tests
        for pp in (IgnorePattern(config=cfg), LimitOutput(config=cfg)):
            nb, resources = pp.preprocess(nb, resources)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid is None:  # OverwriteCells drops ids the gradebook does not know
                continue
            if nbutils.is_grade(cell):
                score, max_score, reason = cell_score(cell)
                cells[gid] = CellResult(notebook=stem, score=score, max_score=max_score, reason=reason)
            if nbutils.is_solution(cell) or nbutils.is_task(cell):
                unchanged = cell.metadata.nbgrader.get("checksum") == nbutils.compute_checksum(cell)
                comments[gid] = "No response." if unchanged and not nbutils.is_task(cell) else None
        note_discarded(nb, discarded)
        atomic_write(out_dir / name, nbformat.writes(nb).encode())
    if restored:
        messages.append("restored test cells: " + ", ".join(restored))
    if discarded_all:
        messages.append("edits of read-only cells discarded: " + ", ".join(discarded_all))
    return StudentResult(student=student, assignment=opts.assignment, status=status, cells=cells,
                         message="; ".join(messages), comments=comments, restored=tuple(restored),
                         discarded=tuple(discarded_all), flags=tuple(review), hidden_tests=hidden,
                         execute_s=execute_s, total_s=time.perf_counter() - t0)


DISCARDED_NOTE = ("**Grading note:** you edited the read-only cell below. Your edit was discarded: the "
                  "cell ran, and was graded, as the assignment gives it. Put changes in your answer cells.")


def discarded_edits(submitted: dict[str, str], released: dict[str, str]) -> list[str]:
    """grade_ids of the released read-only cells whose submitted source differs (the grader ran the original)."""
    return [gid for gid, source in submitted.items()
            if gid in released and source.strip() != released[gid].strip()]


def note_discarded(nb, gids: list[str]) -> None:
    """Put a markdown note before each read-only cell whose edit was discarded (the learner sees why)."""
    import nbformat
    for gid in gids:
        at = next((i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid), None)
        if at is not None:
            nb.cells.insert(at, nbformat.v4.new_markdown_cell(DISCARDED_NOTE, metadata={"autograder_note": gid}))


def _collect_note(ws: pathlib.Path, assignment: str, student: str) -> str:
    """What collect found instead of the expected notebook, if anything."""
    try:
        found = json.loads((ws / "collect" / f"{assignment}.json").read_text())["missing"].get(student)
    except (OSError, ValueError, KeyError):
        return ""
    return f" (collect found instead: {', '.join(found)})" if found else ""


def _zero_cells(cfg, assignment: str, stem: str) -> dict[str, CellResult]:
    """Every grade cell of a notebook at 0 (missing or unreadable submission)."""
    from nbgrader.api import Gradebook
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        nb = gb.find_notebook(stem, assignment)
        return {c.name: CellResult(notebook=stem, score=0.0, max_score=float(c.max_score),
                                   reason="no gradable notebook") for c in nb.grade_cells}


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` dies (Linux PR_SET_PDEATHSIG), so a grader
    killed with SIGKILL leaves no worker behind (the sandbox's launcher, watching its parent, then
    kills the worker's kernel). Elsewhere a no-op. ``parent`` closes the race with a parent that died
    before the call."""
    if sys.platform != "linux":
        return
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent is gone already: the signal will never come
        os._exit(1)


def _worker_main(conn, opts: Options, parent: int | None = None) -> None:
    """Grade jobs from ``conn`` until told to stop; one student at a time."""
    from .execute import THREAD_ENV
    if parent is not None:
        die_with_parent(parent)
    # grade() writes under umask 077; the kernel (as root: another uid) must still read what this worker
    # puts in its scratch folder (0700, the kernel's): the grader's pickled inputs (autograder/remote.py).
    # What a worker writes into the workspace goes through atomic_write: private whatever the umask.
    os.umask(0o022)
    os.environ.update(THREAD_ENV)
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
            res = grade_one(opts, student, notebooks, *where)
        except BaseException as exc:  # a grader failure, not the student's: record it, keep going
            res = grader_error(student, opts.assignment, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        conn.send(res)


# ---------------------------------------------------------------- parent side

def record(gb, res: StudentResult) -> None:
    """Write one student's scores and comments into the gradebook in one transaction (retried on a race)."""
    from .gradebook import record_retrying
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


def with_late(ws, res: StudentResult, policy, lms: dict) -> StudentResult:
    """``res`` with its late record from the course file (course.apply): the score that counts and why;
    a submission time course.toml cannot do without makes it the grader's error."""
    from . import course as course_file
    d = course_file.apply(ws, {"student": res.student, "assignment": res.assignment, "status": res.status,
                               "score": res.score, "message": res.message}, policy, lms)
    return dataclasses.replace(res, status=d["status"], message=d.get("message") or "", late=d.get("late"))


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
    new = with_late(ws, res, policy, lms)
    if new.status != res.status or new.late == res.late:
        return None
    return new


class Progress:
    """A progress bar with ETA on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int, workers: int, stream=sys.stderr):
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


def plan(opts: Options, regrade: bool = False) -> tuple[list, list, dict]:
    """(to_grade, to_resync, info) for the workspace: what is missing or stale, what only needs the gradebook.

    ``info["unreadable"]``: the result files that could not be read (ResultFileError: corrupt, or another
    schema version); their students are graded again, which rewrites them.
    """
    from .release import notebook_names, source_digest
    ws = pathlib.Path(opts.workspace)
    notebooks = notebook_names(opts.assignment, opts.source)
    src_sha = source_digest(opts.assignment, opts.source)
    students = sorted(p.parent.name for p in (ws / "submitted").glob(f"*/{opts.assignment}") if p.is_dir())
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
    from .release import generate, same_tree, source_digest
    from .nbgrader_config import RELEASE
    ws = pathlib.Path(opts.workspace)
    ws.mkdir(parents=True, exist_ok=True)
    stamp = ws / "release" / f".{opts.assignment}.source_sha"
    sha = source_digest(opts.assignment, opts.source)
    if not (stamp.is_file() and stamp.read_text() == sha):
        generate(opts.assignment, _cfg(opts))
        atomic_write(stamp, sha.encode())
    warnings = []
    committed = RELEASE / opts.assignment
    if pathlib.Path(opts.source).resolve() == (RELEASE.parent / "solutions").resolve() and committed.is_dir():
        diff = same_tree(committed, ws / "release" / opts.assignment)
        if diff:
            warnings.append(f"exercises/{opts.assignment} differs from a fresh release ({', '.join(diff)}): "
                            "learners may hold another version; run `python -m autograder release`")
    return warnings


def kernel_limits(opts: Options):
    """The sandbox limits of every student's kernel in this batch."""
    from . import sandbox

    return sandbox.Limits(wall_s=opts.timeout_notebook, cpu_s=opts.timeout_notebook,
                          memory_bytes=opts.memory_mb * 2**20)


@wslock.holding("grade")  # one grader per workspace and assignment; a second one is refused, naming the first
def grade(opts: Options, *, workers: int | None = None, regrade: bool = False, log=console.stderr,
          progress_stream=sys.stderr, scheduler: str | None = None) -> dict:
    """Grade what is missing or stale (everything with ``regrade``); return a summary dict.

    ``scheduler`` (tcp://HOST:PORT): grade the students on that Dask cluster (autograder/cluster.py)
    instead of ``workers`` local processes; this process still writes everything.
    """
    from nbgrader.api import Gradebook
    from . import sandbox
    ws = pathlib.Path(opts.workspace)
    if not (ws / "submitted").is_dir():
        raise ValueError(f"workspace: {ws} has no submitted/ folder; run `collect` first")
    from .gradebook import prepare
    prepare(_cfg(opts).CourseDirectory.db_url)  # a database that refuses: say so before anything is graded
    probe = sandbox.probe()
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
    todo, keep, info = plan(opts, regrade)
    stored = info["stored"]
    for exc in info["unreadable"]:
        log(f"warning: {exc}; grading that student again")
    from . import course as course_file  # deadlines and late policy: a bad course.toml stops here, nothing graded
    policy, lms = course_file.load(ws), course_file.submission_info(ws, opts.assignment)
    for student, _, _ in keep:  # a due time or an extension changed since grading: the late record follows
        new = refreshed(ws, stored[(opts.assignment, student)], policy, lms)
        if new is not None:
            atomic_write(_result_path(ws, opts.assignment, student), new.dumps().encode())
    t0 = time.perf_counter()
    summary = {"graded": 0, "skipped": len(keep), "changed": [], "statuses": {}, "results": [],
               "where": f"Dask at {scheduler}" if scheduler else "local", "workers": 0}
    db_url = _cfg(opts).CourseDirectory.db_url
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
        res = with_late(ws, res, policy, lms)  # res.late: submitted_at, late_by, raw and penalised score
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
    bar = Progress(len(todo), n, progress_stream)
    try:
        if jobs and scheduler:
            from .cluster import run_dask
            n = run_dask(opts, jobs, finish, scheduler, log=log)
        elif jobs:
            run_pool(opts, jobs, n, finish)
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


def canary_submission(opts: Options, notebooks: list[str]) -> dict:
    """The released notebooks with the source's reference answers filled in, as a student would submit
    them, in <workspace>/.canary/<assignment>/; returns the ``where`` of grade_one."""
    import nbformat
    from nbgrader import utils as nbutils
    ws = pathlib.Path(opts.workspace)
    root = ws / CANARY / opts.assignment
    for name in notebooks:
        source = nbformat.read(pathlib.Path(opts.source) / opts.assignment / name, as_version=4)
        answers = {c.metadata.nbgrader["grade_id"]: _reference(c.source) for c in source.cells
                   if nbutils.is_solution(c) and "grade_id" in c.metadata.get("nbgrader", {})}
        nb = nbformat.read(ws / "release" / opts.assignment / name, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers and nbutils.is_solution(cell):
                cell.source = answers[gid]
        atomic_write(root / "submitted" / name, nbformat.writes(nb).encode())
    return {"submitted": str(root / "submitted"), "autograded": str(root / "autograded")}


def _reference(source: str) -> str:
    """An answer cell of the source notebook without nbgrader's solution markers."""
    return "\n".join(line for line in source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def canary_verdict(opts: Options, res: StudentResult) -> str | None:
    """Why the reference answers' result shows a broken grading environment, or None if they scored full marks.

    A pass records what the reference was made of (``canary_inputs``) in the canary's folder, so that a
    later failure can name what changed since (``source_changes``)."""
    if res.status != "graded":
        why = res.message or res.status
    else:
        lost = [f"{gid} {c.score:g}/{c.max_score:g} ({c.reason or 'no reason recorded'})"
                for gid, c in sorted(res.cells.items()) if c.score is not None and c.score < c.max_score]
        if not lost:
            with contextlib.suppress(OSError):
                atomic_write(_canary_passed(opts), json.dumps(
                    {"at": time.time(), "files": canary_inputs(opts)}, indent=1, sort_keys=True).encode())
            return None
        why = "they lose points: " + "; ".join(lost)
    changes = source_changes(opts)
    return (f"canary: the reference answers of {opts.assignment} (from {opts.source}) do not score full marks "
            f"in this grading environment, so every student would be graded wrongly. Nothing was graded. "
            f"Status {res.status}: {why}. " + (changes + " " if changes else "") +
            f"Fix the environment (the kernel's Python, mnlib, torch, the "
            f"sandbox) or the reference, or, if you know the reference is meant to lose points, pass --no-canary. "
            f"The canary's notebooks are in {pathlib.Path(opts.workspace) / CANARY / opts.assignment}.")


def _canary_passed(opts: Options) -> pathlib.Path:
    return pathlib.Path(opts.workspace) / CANARY / opts.assignment / "passed.json"


def _canary_roots(opts: Options) -> list[pathlib.Path]:
    """The files a reference answer's grading depends on, besides the environment: the assignment's
    source folder, the source's shared top-level files (solutions/grading_guard.py, its own _src.py;
    not another assignment's), and mnlib."""
    import importlib.util
    source = pathlib.Path(opts.source)
    others = [p.name for p in source.iterdir() if p.is_dir() and p.name != opts.assignment] if source.is_dir() else []
    roots = [source / opts.assignment]
    roots += [p for p in sorted(source.glob("*")) if p.is_file() and p.suffix in (".py", ".json", ".toml", ".txt")
              and not any(p.name.startswith(o + "_") for o in others)]
    spec = importlib.util.find_spec("mnlib")
    if spec is not None and spec.origin:
        roots.append(pathlib.Path(spec.origin).parent)
    return roots


def canary_inputs(opts: Options) -> dict[str, str]:
    """{path: sha256} of every file in ``_canary_roots`` (caches and checkpoints left out)."""
    out = {}
    for root in _canary_roots(opts):
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts:
                with contextlib.suppress(OSError):
                    out[_shown(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _shown(path: pathlib.Path) -> str:
    """``path`` relative to the working folder when it is under it (solutions/ps1_dsc/...), else absolute."""
    path = pathlib.Path(os.path.abspath(path))
    try:
        return str(path.relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def _listed(names: list[str], most: int = 6) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def source_changes(opts: Options) -> str:
    """A sentence naming what changed in the reference (the assignment's source, solutions/'s shared
    files, mnlib) as the likely cause of a canary failure; '' when nothing is known.

    Since the canary last passed in this workspace, when it did (its record in .canary/); else the
    uncommitted changes git reports there (no git, no repository: skipped); else the files modified
    since the last grading run of the assignment."""
    record = _canary_passed(opts)
    try:
        before = json.loads(record.read_text())
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict) and isinstance(before.get("files"), dict):
        now, old = canary_inputs(opts), before["files"]
        when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(before.get("at") or 0))
        changed = sorted(f for f in now if f in old and now[f] != old[f])
        added, removed = sorted(set(now) - set(old)), sorted(set(old) - set(now))
        if not (changed or added or removed):
            return (f"The reference and mnlib are as they were when the canary last passed here ({when}): "
                    "look at the environment.")
        parts = ([f"changed: {_listed(changed)}"] if changed else []) + \
                ([f"new: {_listed(added)}"] if added else []) + ([f"removed: {_listed(removed)}"] if removed else [])
        return f"Likely cause: the reference changed since the canary last passed here ({when}); " + "; ".join(parts) + "."
    dirty = _git_changes(_canary_roots(opts))
    if dirty:
        return f"Likely cause: uncommitted changes to the reference (git status): {_listed(dirty)}."
    results = [p.stat().st_mtime for p in (pathlib.Path(opts.workspace) / "results" / opts.assignment).glob("*.json")]
    if results:
        last = max(results)
        newer = []
        for root in _canary_roots(opts):
            for f in ([root] if root.is_file() else root.rglob("*")):
                with contextlib.suppress(OSError):
                    if f.is_file() and "__pycache__" not in f.parts and f.stat().st_mtime > last:
                        newer.append(_shown(f))
        if newer:
            return f"Likely cause: files of the reference modified since the last grading run: {_listed(sorted(newer))}."
    return ""


def _git_changes(roots: list[pathlib.Path]) -> list[str]:
    """Files under ``roots`` with uncommitted changes, as git reports them; [] without git or a repository."""
    import subprocess
    existing = [r for r in roots if r.exists()]
    if not existing or shutil.which("git") is None:
        return []
    where = existing[0] if existing[0].is_dir() else existing[0].parent
    try:
        top = subprocess.run(["git", "-C", str(where), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode != 0:
            return []
        inside = [str(x.resolve()) for x in existing if x.resolve().is_relative_to(pathlib.Path(top.stdout.strip()))]
        if not inside:
            return []
        r = subprocess.run(["git", "-C", top.stdout.strip(), "status", "--porcelain", "--untracked-files=all", "--",
                            *inside], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if r.returncode != 0:
        return []
    out = []
    for line in r.stdout.splitlines():
        name = line[3:].split(" -> ")[-1].strip().strip('"')
        if name and "__pycache__" not in name:
            out.append(_shown(pathlib.Path(top.stdout.strip()) / name))
    return sorted(out)


def _preimport() -> None:
    """Import what a worker needs once, in the parent, so forked workers share it."""
    import nbformat  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401
    from . import execute, restore  # noqa: F401


def backstop_s(opts: Options, jobs: list) -> float:
    """The hard limit of one grading job (a worker's or a Dask task's): only a backstop, since the
    worker's own watchdog stops each notebook at ``timeout_notebook``."""
    return opts.timeout_notebook * max(len(j[1]) for j in jobs) + BACKSTOP_S


def run_pool(opts: Options, jobs: list, n: int, finish) -> None:
    """Feed ``jobs`` to ``n`` persistent worker processes; a dead or stuck worker costs one student, not the batch."""
    # fork: workers start with nbgrader, nbclient and zmq already imported (a fresh interpreter
    # spends seconds importing them, per worker). The parent has started no thread and holds no
    # gradebook connection when the first workers fork; a replacement for a crashed worker forks
    # with one open, which it never touches.
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    _preimport()
    hard_limit = backstop_s(opts, jobs)
    pending = deque(jobs)
    idle, busy = [], {}

    def start():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, opts, os.getpid()), daemon=True)
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
