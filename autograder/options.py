"""What one grading run is: its :class:`Options`, the nbgrader configuration and the limits they give.

Light on purpose (no nbgrader, no Jupyter): the command line reads its defaults here, and every
side of a run (the batch in ``grade``, one student's job in ``job``, a Dask worker in ``cluster``,
``feedback``) takes the same picklable :class:`Options`.
"""
from __future__ import annotations

import dataclasses
import pathlib

from . import sandbox
from .nbgrader_config import BACKSTOP_S, CELL_TIMEOUT_S, course_config


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


def config(opts: Options):
    """nbgrader's configuration of the run's workspace (its release/ folder, the run's source and gradebook)."""
    ws = pathlib.Path(opts.workspace)
    return course_config(ws, source=opts.source, release=ws / "release", db_url=opts.db_url)


def kernel_limits(opts: Options) -> sandbox.Limits:
    """The sandbox limits of every student's kernel in this batch."""
    return sandbox.Limits(wall_s=opts.timeout_notebook, cpu_s=opts.timeout_notebook,
                          memory_bytes=opts.memory_mb * 2**20)


def backstop_s(opts: Options, jobs: list) -> float:
    """The hard limit of one grading job (a worker's or a Dask task's): only a backstop, since the
    worker's own watchdog stops each notebook at ``timeout_notebook``."""
    return opts.timeout_notebook * max(len(j[1]) for j in jobs) + BACKSTOP_S
