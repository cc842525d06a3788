"""Writing into a grading workspace: whole files only, private to their owner.

Collect, grade (its workers and Dask's results too), feedback, the roster and similarity write
through :func:`atomic_write`, so a reader sees the old file or the new one, never half, and a
workspace that holds submissions, grades and the canary's reference answers stays its owner's alone.
"""
from __future__ import annotations

import os
import pathlib


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
