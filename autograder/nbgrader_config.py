"""nbgrader configuration of the course: where sources, releases and a grading workspace live.

Two readers share it: ``nbgrader`` itself (it runs this file with ``get_config()`` defined, e.g.
``nbgrader generate_assignment --config autograder/nbgrader_config.py``) and the grading command,
which imports :func:`course_config` for a given workspace.
"""
from __future__ import annotations

import os
import pathlib

from traitlets.config import Config

REPO = pathlib.Path(__file__).resolve().parent.parent
SOURCE = REPO / "solutions"   # CourseDirectory.source_directory: notebooks with answers and hidden tests
RELEASE = REPO / "exercises"  # CourseDirectory.release_directory: what learners get (committed)
CELL_TIMEOUT_S = 120          # nbgrader's per-cell limit; every assignment runs in < 60 s in total
BACKSTOP_S = 120              # a grading job's hard limit: its notebooks' time limits plus this
# nbgrader's delimiters of the hidden part of a test cell (ClearHiddenTests), written as comments.
HIDDEN_DELIMITERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
HIDDEN_BEGIN, HIDDEN_END = (f"### {d}" for d in HIDDEN_DELIMITERS)
GRADER = "_ps_grader"         # the hidden object of every assignment's checks (assignments/build.py)


def notebook_names(assignment: str, source=SOURCE) -> list[str]:
    """File names of the assignment's notebooks (what a submission must contain). Here, not in
    release.py, so that the grade command can read them before it imports nbgrader."""
    folder = pathlib.Path(source) / assignment
    if not folder.is_dir():
        raise ValueError(f"assignment: no folder {folder}")
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    if not names:
        raise ValueError(f"assignment: no notebook in {folder}")
    return names


def course_config(workspace, *, source=SOURCE, release=RELEASE, db_url: str | None = None) -> Config:
    """nbgrader Config for a workspace (submitted/, autograded/, feedback/, gradebook.db)."""
    ws = pathlib.Path(workspace).resolve()
    c = Config()
    c.CourseDirectory.root = str(ws)
    # Absolute paths: nbgrader joins them onto root, which keeps them as they are.
    c.CourseDirectory.source_directory = str(pathlib.Path(source).resolve())
    c.CourseDirectory.release_directory = str(pathlib.Path(release).resolve())
    c.CourseDirectory.submitted_directory = "submitted"
    c.CourseDirectory.autograded_directory = "autograded"
    c.CourseDirectory.feedback_directory = "feedback"
    # SQLite in the workspace by default (never in git); a server database for large classes.
    c.CourseDirectory.db_url = db_url or os.environ.get("AUTOGRADER_DB_URL") or f"sqlite:///{ws / 'gradebook.db'}"
    # The course row every assignment points to. nbgrader's CLI default ("") names no row, which SQLite
    # lets pass and PostgreSQL refuses (a foreign key); "default_course" is what Gradebook(db_url) creates.
    c.CourseDirectory.course_id = "default_course"
    c.Execute.timeout = CELL_TIMEOUT_S
    c.ClearHiddenTests.begin_test_delimeter, c.ClearHiddenTests.end_test_delimeter = HIDDEN_DELIMITERS
    # A deleted test cell is put back from the gradebook and run, so it still costs its points.
    c.OverwriteCells.add_missing_cells = True
    return c


if "get_config" in globals():  # read by nbgrader as a config file: the repository is the course root
    c = get_config()  # noqa: F821
    c.merge(course_config(os.environ.get("AUTOGRADER_WORKSPACE", REPO / "workspace")))


def _venv_bin_on_path() -> None:
    """nbgrader runs the ``alembic`` script by name when it creates a gradebook: find ours."""
    bindir = os.path.dirname(os.path.abspath(os.sys.executable))
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


_venv_bin_on_path()
