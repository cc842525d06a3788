"""Run one submission's kernel confined (stub: the real mechanism follows).

Contract with the pipeline (see the autograder contract): ``probe()`` says whether confinement
works here, ``wrap(argv, ...)`` returns the argv that runs ``argv`` confined, ``cleanup(scratch)``
kills whatever the submission left behind and removes its scratch directory.
"""
from __future__ import annotations

import dataclasses
import pathlib
import shutil


class SandboxUnavailable(RuntimeError):
    """Confinement cannot be set up on this machine; grading refuses unless --unsafe."""


@dataclasses.dataclass(frozen=True)
class Probe:
    ok: bool
    mechanism: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-notebook bounds; None means unbounded (only in --unsafe mode)."""

    wall_s: float | None = 600.0
    cpu_s: float | None = 600.0
    memory_bytes: int | None = 2 * 1024**3
    output_bytes: int | None = 16 * 1024**2
    disk_bytes: int | None = 256 * 1024**2
    nproc: int | None = 64


def probe() -> Probe:
    """Stub: no mechanism yet."""
    return Probe(False, "none", "sandbox not implemented yet")


def wrap(argv: list[str], *, scratch: pathlib.Path, readable: list[pathlib.Path],
         limits: Limits, unsafe: bool = False) -> list[str]:
    """Return argv confined; in unsafe mode return argv unchanged."""
    if unsafe:
        return list(argv)
    raise SandboxUnavailable(probe().reason)


def cleanup(scratch: pathlib.Path) -> None:
    """Remove the scratch directory."""
    shutil.rmtree(scratch, ignore_errors=True)
