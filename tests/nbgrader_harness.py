"""Autograde assignments with plain nbgrader's own Python API, in a throw-away course directory.

Used by the exercise tests ("test the tests") to grade as an instructor using nbgrader alone would:
the hidden checks run in the learner's kernel. No server, no exchange. Releasing exercises/ is
``python -m autograder release`` (autograder/release.py), the one implementation.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat

# nbgrader runs the ``alembic`` script by name when it creates a gradebook: find the venv's.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"


def _api(root: Path, source: str, release: str, db: Path, timeout: int = 120):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = source
    c.CourseDirectory.release_directory = release
    c.CourseDirectory.db_url = f"sqlite:///{db}"
    c.ExecutePreprocessor.timeout = timeout  # per cell
    c.Execute.timeout = timeout
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return NbGraderAPI(CourseDirectory(config=c), config=c)


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('error')}\n{result.get('log')}")


def answers(solution_nb: Path) -> dict[str, str]:
    """grade_id -> source of every answer cell of a source notebook, without the solution markers."""
    nb = nbformat.read(solution_nb, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            lines = [l for l in cell.source.split("\n")
                     if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def submission(released_nb: Path, filled: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the answer cells named in ``filled`` replaced (as a learner would)."""
    nb = nbformat.read(released_nb, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in filled:
            cell.source = filled[gid]
    return nb


class Course:
    """A temporary nbgrader course holding one released assignment, ready to autograde submissions."""

    def __init__(self, aid: str, tmp: Path, source_root: Path = SOLUTIONS):
        self.aid, self.root = aid, Path(tmp)
        shutil.copytree(source_root / aid, self.root / "source" / aid,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        self.api = _api(self.root, "source", "release", self.root / "gradebook.db")
        _check(self.api.generate_assignment(aid, force=True, create=True), f"generate_assignment {aid}")
        self.released = self.root / "release" / aid / f"{aid}.ipynb"

    def grade(self, submissions: dict[str, nbformat.NotebookNode]) -> dict[str, dict[str, float | None]]:
        """student -> {grade_id: score} for every grade cell (the 0-point setup cell included)."""
        from nbgrader.api import Gradebook

        for student, nb in submissions.items():
            d = self.root / "submitted" / student / self.aid
            d.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, d / f"{self.aid}.ipynb")
        for student in submissions:
            _check(self.api.autograde(self.aid, student, force=True, create=True), f"autograde {student}")
        scores = {}
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            for student in submissions:
                snb = gb.find_submission_notebook(self.aid, self.aid, student)
                scores[student] = {g.name: g.score for g in snb.grades}
        return scores
