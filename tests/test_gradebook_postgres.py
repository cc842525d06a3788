"""Does the grader work the same with a PostgreSQL gradebook as with SQLite, and lose nothing on the way?

A private PostgreSQL server (tests/conftest.py ``postgres_server``: its own data folder and unix
socket, started and stopped by the session) holds one new database per test. Checked:
  - one student's gradebook rows are one transaction on both databases: a failure half-way leaves
    nothing, and a concurrent writer that wins a race (the same student added at once) is retried;
  - a gradebook that refuses connections stops every subcommand with one line naming the URL, its
    password masked, before anything is graded or written;
  - collect, grade (SIGKILLed mid-batch, then resumed), feedback, export and check give the same
    CSV on PostgreSQL as an uninterrupted run on SQLite;
  - two grade runs (two assignments of one course workspace) writing one database at once lose no grade.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from autograder import sandbox
from autograder.scenarios import make_hostile_scenarios as ms

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"

PROBE = sandbox.probe()
CLASS = ["complete", "unchanged-release", "edited-test-cell", "os-exit", "corrupt", "deleted-test-cell"]
needs_sandbox = pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")


class Course:
    """A workspace, its own TMPDIR and a gradebook URL; runs ``python -m autograder`` in it."""

    def __init__(self, root: pathlib.Path, db_url: str | None):
        self.root, self.ws, self.tmp = root, root / "ws", root / "tmp"
        self.tmp.mkdir(parents=True)
        self.db = ["--db-url", db_url] if db_url else []

    def env(self):
        return {**os.environ, "TMPDIR": str(self.tmp)}

    def argv(self, cmd, *args):
        return [sys.executable, "-m", "autograder", cmd, "--workspace", str(self.ws), *self.db, *args]

    def run(self, cmd, *args, ok=True):
        proc = subprocess.run(self.argv(cmd, *args), cwd=REPO, env=self.env(), capture_output=True, text=True,
                              timeout=600)
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def collect(self, names, assignment=ms.ASSIGNMENT, source=SCEN / "source"):
        subs = self.root / f"in-{assignment}"
        for name in names:
            (subs / name).mkdir(parents=True)
            shutil.copy(SCEN / ms.file_name(name), subs / name / ms.NOTEBOOK)
        self.run("collect", str(subs), "--assignment", assignment, "--source", str(source))

    def grade_args(self, assignment=ms.ASSIGNMENT, source=SCEN / "source"):
        return ["--assignment", assignment, "--source", str(source), "--workers", "2", "--timeout-cell", "10",
                "--timeout-notebook", "60", "--memory-mb", "512"]

    def results(self, assignment=ms.ASSIGNMENT):
        return {p.stem: json.loads(p.read_text()) for p in (self.ws / "results" / assignment).glob("*.json")}

    def export(self) -> str:
        self.run("export", "--output", str(self.root / "grades.csv"))
        return (self.root / "grades.csv").read_text()


def _write_one(db_url, ws, fail_after_student=False):
    """Record the reference result of ``complete`` (or fail half-way) through grade.record."""
    from autograder import grade

    opts = grade.Options(workspace=str(ws), assignment=ms.ASSIGNMENT, source=str(SCEN / "source"), db_url=db_url)
    grade.ensure_assignment(opts)
    from nbgrader.api import Gradebook

    from autograder.result import CellResult, StudentResult

    with Gradebook(db_url) as gb:
        cells = {c.name: CellResult(notebook="sb_guard", score=c.max_score, max_score=c.max_score)
                 for c in gb.find_notebook("sb_guard", ms.ASSIGNMENT).grade_cells}
        if fail_after_student:  # a cell the gradebook does not know: MissingEntry after the student row is added
            cells["no-such-cell"] = CellResult(notebook="sb_guard", score=1.0, max_score=1.0)
        res = StudentResult(student="s1", assignment=ms.ASSIGNMENT, status="graded", cells=cells)
        grade.record(gb, res)
    return sum(c.max_score for c in cells.values())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_one_student_is_one_transaction(kind, tmp_path, request):
    """A record that fails half-way writes nothing; a whole one writes every cell."""
    from nbgrader.api import Gradebook, MissingEntry

    db_url = request.getfixturevalue("postgres_db") if kind == "postgresql" else f"sqlite:///{tmp_path}/gb.db"
    with pytest.raises(MissingEntry):
        _write_one(db_url, tmp_path / "ws", fail_after_student=True)
    with Gradebook(db_url) as gb:
        assert [s.id for s in gb.students] == []  # the student row added before the failure was rolled back
        assert gb.find_assignment(ms.ASSIGNMENT).submissions == []
    total = _write_one(db_url, tmp_path / "ws")
    with Gradebook(db_url) as gb:
        assert gb.find_submission(ms.ASSIGNMENT, "s1").score == total > 0


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader builds rows before adding them
def test_a_lost_race_is_retried(postgres_db, tmp_path):
    """Another run adds the same student between our check and our insert: the record is retried, not lost."""
    from nbgrader.api import Gradebook

    from autograder import gradebook

    _write_one(postgres_db, tmp_path / "ws")  # the schema and the assignment exist
    calls = []

    def write(gb, res):  # nbgrader's update_or_create_student, with a rival run between its find and its add
        from nbgrader.api import MissingEntry
        calls.append(1)
        try:
            gb.find_student("s2")
        except MissingEntry:
            if len(calls) == 1:
                with Gradebook(postgres_db) as rival:
                    rival.add_student("s2")
            gb.add_student("s2")  # the key is taken now: IntegrityError, nbgrader's InvalidEntry
        gb.update_or_create_submission(ms.ASSIGNMENT, "s2")

    with Gradebook(postgres_db) as gb:
        gradebook.record_retrying(gb, write, {})
        assert len(calls) == 2  # lost once, retried once
        assert sorted(s.id for s in gb.students) == ["s1", "s2"]
        assert gb.find_submission(ms.ASSIGNMENT, "s2") is not None


def test_refused_connection_is_one_clear_line(tmp_path):
    """A gradebook server that refuses: every subcommand says which URL (password masked); nothing graded."""
    course = Course(tmp_path, "postgresql+psycopg://grader:s3cret@/course?host=/nonexistent-socket-dir&port=1")
    course.collect(["complete"])
    for cmd, args in (("grade", course.grade_args()), ("feedback", ["--assignment", ms.ASSIGNMENT]),
                      ("export", ["--output", str(tmp_path / "g.csv")]), ("check", [])):
        proc = course.run(cmd, *args, ok=False)
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: gradebook postgresql+psycopg://grader:***@/course"), (cmd, err)
        assert "s3cret" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (course.ws / "results").exists() and not (course.ws / "autograded").exists()
    assert not (tmp_path / "g.csv").exists()


def _rows(csv_text: str) -> list[dict]:
    return sorted(csv.DictReader(io.StringIO(csv_text)), key=lambda r: (r["assignment"], r["student_id"]))


@pytest.mark.slow  # three grading runs of 6 notebooks, about 2 minutes on 2 cores
@needs_sandbox
def test_postgres_pipeline_matches_sqlite(tmp_path, postgres_db, kill_grade_after):
    """collect, grade (SIGKILL, resume), feedback, export, check on PostgreSQL: the SQLite run's CSV."""
    lite = Course(tmp_path / "sqlite", None)
    lite.collect(CLASS)
    lite.run("grade", *lite.grade_args())
    lite.run("feedback", "--assignment", ms.ASSIGNMENT)
    want = lite.export()

    pg = Course(tmp_path / "pg", postgres_db)
    pg.collect(CLASS)
    done = kill_grade_after(pg.argv("grade", *pg.grade_args()), pg.env(), pg.ws / "results" / ms.ASSIGNMENT, 2)
    assert 0 < done < len(CLASS), done  # the kill was mid-batch
    again = pg.run("grade", *pg.grade_args())
    assert f"{done} already up to date" in again.stdout  # nothing graded twice
    pg.run("feedback", "--assignment", ms.ASSIGNMENT)
    got = pg.export()
    assert not (pg.ws / "gradebook.db").exists()  # everything went to the server
    assert _rows(got) == _rows(want)
    for name in CLASS:
        assert (pg.results()[name]["status"], pg.results()[name]["score"]) == ms.EXPECTED[name], name
        assert (pg.ws / "feedback" / name / ms.ASSIGNMENT).is_dir()
    assert "is consistent" in pg.run("check", "--csv", str(pg.root / "grades.csv")).stdout
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_db)
    with psycopg.connect(host=url.query["host"], user=url.username, dbname=url.database) as con:
        rows = con.execute("select student_id, count(*) from submitted_assignment group by student_id").fetchall()
    assert dict(rows) == {name: 1 for name in CLASS}  # one submission each, after a kill and a resume


@pytest.mark.slow  # two grading runs of 5 notebooks side by side, about a minute
@needs_sandbox
def test_two_runs_write_one_database_at_once(tmp_path, postgres_db):
    """Two assignments of one course graded at once into one PostgreSQL gradebook: every grade is there."""
    src2 = tmp_path / "source2"
    shutil.copytree(SCEN / "source" / ms.ASSIGNMENT, src2 / "sb_guard2")  # the same notebook, a second assignment
    names = CLASS[:5]
    course = Course(tmp_path / "course", postgres_db)
    course.collect(names)
    course.collect(names, "sb_guard2", src2)
    runs = [subprocess.Popen(course.argv("grade", *args), cwd=REPO, env=course.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for args in (course.grade_args(), course.grade_args("sb_guard2", src2))]
    outs = [p.communicate(timeout=600)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    rows = _rows(course.export())
    assert len(rows) == 2 * len(names)
    for row in rows:
        assert (row["status"], float(row["score"])) == ms.EXPECTED[row["student_id"]], row
    assert "is consistent" in course.run("check", "--csv", str(course.root / "grades.csv")).stdout


def test_release_never_uses_the_course_gradebook(tmp_path, monkeypatch):
    """`release` registers assignments in a throw-away gradebook, whatever AUTOGRADER_DB_URL names."""
    from autograder.release import release

    monkeypatch.setenv("AUTOGRADER_DB_URL", "postgresql+psycopg://grader@/course?host=/nonexistent-socket-dir")
    assert release([ms.ASSIGNMENT], source=SCEN / "source", release_dir=tmp_path / "out") == [ms.ASSIGNMENT]
    assert (tmp_path / "out" / ms.ASSIGNMENT / ms.NOTEBOOK).is_file()
