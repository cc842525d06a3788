"""One student's grading job: read, sanitize, execute in the sandbox and score their notebooks.

``grade_one`` runs in a worker (a local process of ``grade.run_pool``, or a Dask worker through
``cluster.grade_remote``). It sanitizes each submitted notebook with nbgrader's preprocessors
(outputs cleared, test cells restored from the gradebook, deleted ones put back, edits of read-only
cells discarded), executes it in a sandboxed kernel with the hidden tests run in the grader
(``execute.Run``), scores it, writes the autograded notebook (temp + rename) and returns an
``autograder.result.StudentResult``. It writes no gradebook and no result file: the batch (``grade``)
completes the record and commits it.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import time

import nbformat
from nbgrader import utils as nbutils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, IgnorePattern, LimitOutput

from .execute import Run, cell_score
from .files import atomic_write
from .flags import flags as review_flags
from .kernel_probe import assignment_modules
from .options import Options, config, kernel_limits
from .remote import GraderSetupError
from .restore import CheckMetadata, OverwriteKernelspecFrom, RestoreCells
from .result import CellResult, StudentResult


class NotGradable(Exception):
    """A submitted file that is no notebook of this assignment, with what a TA can act on (grade_one)."""


def _grade_ids(nb) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}


def foreign_notebook(nb, source: pathlib.Path, assignment: str, name: str) -> str | None:
    """Why ``nb`` is not ``assignment``'s notebook ``name``, naming the assignment it most likely
    belongs to; None when it is (or cannot be told): it shares a graded cell id with the source.

    Compared by nbgrader cell ids (``grade_id``) against each assignment's source notebook in
    ``source`` (``<id>/<id>.ipynb``, or any notebook of the folder)."""
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


def kernel_modules(opts: Options, notebooks: list[str]) -> list[str]:
    """The modules the assignment's own notebooks import (kernel_probe.needed_modules): read and parsed
    once per worker while the source notebooks stay as they are (a ps1 notebook: ~6 ms each time)."""
    stamps = []
    for name in notebooks:
        try:
            st = os.stat(os.path.join(str(opts.source), opts.assignment, name))
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return list(_kernel_modules(str(opts.source), opts.assignment, tuple(notebooks), tuple(stamps)))


@functools.lru_cache(maxsize=16)
def _kernel_modules(source: str, assignment: str, notebooks: tuple, _stamps: tuple) -> tuple:
    return tuple(assignment_modules(source, assignment, list(notebooks)))


def grade_one(opts: Options, student: str, notebooks: list[str], where: dict | None = None, *,
              sources: dict | None = None) -> StudentResult:
    """Grade one student's submission; return the result record (the worker writes no gradebook).

    ``where`` (the canary) overrides the folders: {"submitted": folder, "autograded": folder}.
    ``sources``: the batch's snapshot of the gradebook's source notebooks (restore.sources_snapshot), which
    the sanitizers read instead of querying the database for every notebook; None: the database.
    """

    t0 = time.perf_counter()
    cfg = config(opts)
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
        restorer.sources = sources
        kernelspec = OverwriteKernelspecFrom(config=cfg)
        kernelspec.sources = sources
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
            for pp in (ClearOutput(config=cfg), DeduplicateIds(config=cfg), kernelspec, restorer,
                       CheckMetadata(config=cfg)):
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
        if (pathlib.Path(opts.source) / opts.assignment / name).is_file():
            run.preflight = kernel_modules(opts, [name])  # the kernel must import them before any cell runs
        for extra in (pathlib.Path(opts.source) / opts.assignment).iterdir():  # data files the notebook reads
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy(extra, run.scratch / extra.name)
        # closed once the notebook is scored and written: its killed kernel exits (a torch-sized process,
        # 10-15 ms) meanwhile, instead of the sandbox's cleanup waiting for that first
        try:
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
        finally:
            run.close()
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
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        nb = gb.find_notebook(stem, assignment)
        return {c.name: CellResult(notebook=stem, score=0.0, max_score=float(c.max_score),
                                   reason="no gradable notebook") for c in nb.grade_cells}
