"""solutions/ -> exercises/ with nbgrader's GenerateAssignment, byte-for-byte reproducible."""
from __future__ import annotations

import filecmp
import hashlib
import logging
import pathlib
import shutil
import tempfile

import nbformat
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from .nbgrader_config import RELEASE, SOURCE, course_config, notebook_names


def assignment_ids(source=SOURCE) -> list[str]:
    """Every folder of ``source`` that holds a notebook, sorted."""
    source = pathlib.Path(source)
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def source_digest(assignment: str, source=SOURCE) -> str:
    """sha256 over the assignment's source files: a grade made against another digest is stale."""
    h = hashlib.sha256()
    folder = pathlib.Path(source) / assignment
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _api(cfg) -> NbGraderAPI:
    coursedir = CourseDirectory(config=cfg)
    api = NbGraderAPI(coursedir=coursedir, config=cfg)
    api.log.setLevel(logging.WARNING)
    return api


def _stable_ids(released: pathlib.Path, source: pathlib.Path) -> None:
    """Give released cells the source's cell ids (nbformat would invent random ones)."""
    src = nbformat.read(source, as_version=4)
    nb = nbformat.read(released, as_version=4)
    for i, cell in enumerate(nb.cells):  # generate_assignment keeps every cell, in order
        sid = src.cells[i].get("id") if i < len(src.cells) else None
        cell["id"] = sid or hashlib.sha1(f"{source.name}/{i}".encode()).hexdigest()[:8]
    nbformat.write(nb, released)


def generate(assignment: str, cfg) -> None:
    """Run GenerateAssignment for one assignment under ``cfg``; records it in cfg's gradebook."""
    result = _api(cfg).generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('log', '')}"
                           f"\n{result.get('error', '')}")
    out = pathlib.Path(cfg.CourseDirectory.release_directory) / assignment
    src = pathlib.Path(cfg.CourseDirectory.source_directory) / assignment
    for nb in sorted(out.glob("*.ipynb")):
        _stable_ids(nb, src / nb.name)


def release(ids=None, *, source=SOURCE, release_dir=RELEASE) -> list[str]:
    """Regenerate exercises/<id>/ from solutions/<id>/ for each id (all by default); return the ids."""
    ids = list(ids) if ids else assignment_ids(source)
    for assignment in ids:
        notebook_names(assignment, source)  # clear error for an unknown id
    release_dir = pathlib.Path(release_dir)
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        staging = pathlib.Path(tmp) / "release"
        # A throw-away gradebook: releasing must not touch any grading workspace (nor AUTOGRADER_DB_URL's).
        cfg = course_config(tmp, source=source, release=staging, db_url=f"sqlite:///{pathlib.Path(tmp) / 'gradebook.db'}")
        for assignment in ids:
            generate(assignment, cfg)
            dest = release_dir / assignment
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(staging / assignment, dest)
    return ids


def same_tree(a: pathlib.Path, b: pathlib.Path) -> list[str]:
    """Relative paths that differ between two folders (missing on one side or different bytes)."""
    a, b = pathlib.Path(a), pathlib.Path(b)
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | \
            {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names
                  if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))
