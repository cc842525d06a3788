"""The grading command end to end on a tiny fixture assignment: real nbgrader, real Jupyter kernels.

The fixture (tests/fixtures/autograder/solutions/fx_sum) has one answer cell, a visible-only test
cell (1 point) and a test cell with hidden tests (2 points); it imports torch, as every course
assignment does. Kernels run with ``unsafe=True`` here: the sandbox has its own tests
(tests/test_sandbox*.py) and these prove the pipeline around it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import zipfile

import nbformat
import pytest

from autograder import cli
from autograder.collect import collect
from autograder.execute import cell_score
from autograder.grade import Options, grade, load_results, record
from autograder.nbgrader_config import REPO, course_config
from autograder.release import release, same_tree
from autograder.result import CellResult, StudentResult

FIXTURE = REPO / "tests" / "fixtures" / "autograder" / "solutions"
ASSIGNMENT = "fx_sum"
HIDDEN_MARKER = "hidden_probe_7f3a"  # appears only inside the fixture's hidden tests
ANSWERS = {
    "right": "import torch\n\ndef channel_sum(x):\n    return x.sum(dim=(2, 3))",
    # right on the visible 3x3 check, wrong on the hidden 5x7 one
    "partial": "import torch\n\ndef channel_sum(x):\n    return x.mean(dim=(2, 3)) * 9",
    "noisy": ("import sys, warnings\nimport torch\n\ndef channel_sum(x):\n"
              "    print('UserWarning: TypedStorage is deprecated', file=sys.stderr)\n"
              "    warnings.warn('harmless')\n    return x.sum(dim=(2, 3))"),
}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    release([ASSIGNMENT], source=FIXTURE, release_dir=out)
    return nbformat.read(out / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def submission(released, answer: str | None):
    nb = nbformat.reads(nbformat.writes(released), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and answer is not None:
            cell.source = answer
    return nb


def write_class(root: pathlib.Path, released, students: dict) -> pathlib.Path:
    for student, nb in students.items():
        path = root / student / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, path)
    return root


def options(ws) -> Options:
    return Options(workspace=str(ws), assignment=ASSIGNMENT, source=str(FIXTURE), unsafe=True,
                   timeout_cell=60, timeout_notebook=240)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, released):
    """A class of six graded once with two workers: (workspace, summary)."""
    tmp = tmp_path_factory.mktemp("class")
    deleter = submission(released, ANSWERS["partial"])
    deleter.cells = [c for c in deleter.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_values"]
    write_class(tmp / "in", released, {
        "right": submission(released, ANSWERS["right"]), "blank": submission(released, None),
        "noisy": submission(released, ANSWERS["noisy"]), "partial": submission(released, ANSWERS["partial"]),
        "deleter": deleter, "broken": b'{"cells": [',
    })
    ws = tmp / "ws"
    collect(tmp / "in", assignment=ASSIGNMENT, workspace=ws, source_dir=FIXTURE)
    summary = grade(options(ws), workers=2, log=lambda *a, **k: None, progress_stream=io.StringIO())
    return ws, summary


def cells(ws, student):
    return {gid: c["score"] for gid, c in load_results(ws, ASSIGNMENT)[(ASSIGNMENT, student)]["cells"].items()}


# ------------------------------------------------------------------ collect (no kernels)

def test_collect_accepts_exact_names_and_reports_the_rest(tmp_path, released):
    """Does collect take <student>/<notebook> and report misnamed, duplicate, unmatched and bad ids?"""
    nb = submission(released, ANSWERS["right"])
    src = write_class(tmp_path / "in", released, {"alice": nb, "carol": nb})
    (src / "alice" / ASSIGNMENT).mkdir()
    nbformat.write(nb, src / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")  # nbgrader layout: a second copy
    (src / "dave").mkdir()
    nbformat.write(nb, src / "dave" / f"{ASSIGNMENT}-Copy1.ipynb")
    (src / "bob smith").mkdir()
    nbformat.write(nb, src / "bob smith" / f"{ASSIGNMENT}.ipynb")
    (src / "stray.ipynb").write_text("{}")
    (src / "__MACOSX").mkdir()
    (src / "__MACOSX" / "._x").write_text("")
    report = collect(src, assignment=ASSIGNMENT, workspace=tmp_path / "ws", source_dir=FIXTURE)
    assert report.accepted["carol"] == [f"{ASSIGNMENT}.ipynb"]
    assert [d[0] for d in report.duplicates] == ["alice"] and report.accepted["alice"] == []
    assert report.misnamed == [(f"dave/{ASSIGNMENT}-Copy1.ipynb", f"dave/{ASSIGNMENT}.ipynb")]
    assert set(report.missing) == set(report.needs_review) == {"alice", "dave"}  # handed in, not gradable
    assert report.unmatched == ["stray.ipynb"] and report.bad_ids == ["bob smith"]
    assert len(report.ignored) == 1
    ws = tmp_path / "ws" / "submitted"
    assert (ws / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() == \
        (src / "carol" / f"{ASSIGNMENT}.ipynb").read_bytes()
    assert not any((ws / "dave" / ASSIGNMENT).iterdir())  # collected empty: grading records "missing"
    assert not (ws / "bob smith").exists()


def test_collect_zip_equals_collect_folder(tmp_path, released):
    """Does an LMS zip (one wrapping folder, OS litter, a path escaping the archive) collect like its folder?"""
    nb = submission(released, ANSWERS["partial"])
    src = write_class(tmp_path / "in", released, {"alice": nb, "carol": submission(released, None)})
    zpath = tmp_path / "class.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(src.rglob("*.ipynb")):
            zf.write(p, f"export/{p.relative_to(src)}")
        zf.writestr("export/__MACOSX/._alice", "")
        zf.writestr("../evil.ipynb", "{}")
    a = collect(src, assignment=ASSIGNMENT, workspace=tmp_path / "ws_folder", source_dir=FIXTURE)
    b = collect(zpath, assignment=ASSIGNMENT, workspace=tmp_path / "ws_zip", source_dir=FIXTURE)
    assert a.accepted == b.accepted == {"alice": [f"{ASSIGNMENT}.ipynb"], "carol": [f"{ASSIGNMENT}.ipynb"]}
    assert b.unmatched == ["../evil.ipynb"] and b.notes
    assert same_tree(tmp_path / "ws_folder" / "submitted", tmp_path / "ws_zip" / "submitted") == []
    assert not (tmp_path / "evil.ipynb").exists()


def test_collect_bad_source_is_a_clear_error(tmp_path):
    """Does a SOURCE that does not exist, or an unknown assignment, give a ValueError naming it?"""
    with pytest.raises(ValueError, match="SOURCE"):
        collect(tmp_path / "nope", assignment=ASSIGNMENT, workspace=tmp_path / "ws", source_dir=FIXTURE)
    with pytest.raises(ValueError, match="assignment"):
        collect(tmp_path, assignment="no_such_ps", workspace=tmp_path / "ws", source_dir=FIXTURE)


# ------------------------------------------------------------------ scoring rule (no kernels)

def _test_cell(outputs, executed=True):
    cell = nbformat.v4.new_code_cell("assert True", execution_count=1 if executed else None)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 2, "locked": True}
    cell.outputs = [nbformat.v4.new_output(**o) for o in outputs]
    return cell


def test_cell_score_zeroes_errors_and_unrun_cells_but_not_stderr():
    """Is stderr alone harmless, while an error, or a cell the kernel never reached, scores 0?"""
    stderr = {"output_type": "stream", "name": "stderr", "text": "UserWarning: noise\n"}
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "nope", "traceback": []}
    assert cell_score(_test_cell([stderr]))[0] == 2.0
    assert cell_score(_test_cell([stderr, error]))[:2] == (0.0, 2.0)
    assert cell_score(_test_cell([], executed=False))[0] == 0.0


# ------------------------------------------------------------------ grading round trip

def test_grade_scores_right_blank_noisy_partial(graded):
    """Right answers full marks, blank 0 on every cell, stderr noise costs nothing, a hidden-only slip costs 2."""
    ws, summary = graded
    assert summary["graded"] == 6 and summary["workers"] == 2
    assert cells(ws, "right") == {"test_shape": 1.0, "test_values": 2.0}
    assert cells(ws, "blank") == {"test_shape": 0.0, "test_values": 0.0}
    assert cells(ws, "noisy") == {"test_shape": 1.0, "test_values": 2.0}
    assert cells(ws, "partial") == {"test_shape": 1.0, "test_values": 0.0}


def test_deleted_test_cell_is_put_back_and_run(graded):
    """Does a deleted test cell still cost its points (re-inserted, run, 0 here), with the reason recorded?"""
    ws, _ = graded
    res = load_results(ws, ASSIGNMENT)[(ASSIGNMENT, "deleter")]
    assert res["restored"] == [f"{ASSIGNMENT}:test_values"]
    assert cells(ws, "deleter") == {"test_shape": 1.0, "test_values": 0.0}
    assert "AssertionError" in res["cells"]["test_values"]["reason"]  # it ran: nbgrader would leave None


def test_unreadable_notebook_is_recorded_broken(graded):
    """Does a cut-off upload end with status broken, score 0 and a message, not a crash of the batch?"""
    ws, _ = graded
    res = load_results(ws, ASSIGNMENT)[(ASSIGNMENT, "broken")]
    assert res["status"] == "broken" and res["score"] == 0 and "not a gradable notebook" in res["message"]


def test_gradebook_transaction_is_all_or_nothing(graded):
    """Does a failure half-way through recording a student leave no trace of them in the gradebook?"""
    from nbgrader.api import Gradebook, MissingEntry
    ws, _ = graded
    bogus = StudentResult(assignment=ASSIGNMENT, student="ghost", status="graded",
                          cells={"test_shape": CellResult(notebook=ASSIGNMENT, score=1.0, max_score=1.0),
                                 "no_such_cell": CellResult(notebook=ASSIGNMENT, score=1.0, max_score=1.0)})
    with Gradebook(course_config(ws).CourseDirectory.db_url) as gb:
        with pytest.raises(MissingEntry):
            record(gb, bogus)
        with pytest.raises(MissingEntry):
            gb.find_student("ghost")


def test_export_columns_and_values_equal_the_gradebook(graded, tmp_path):
    """Are the CSV's columns as specified and every score the gradebook's own?"""
    from nbgrader.api import Gradebook
    ws, _ = graded
    out = tmp_path / "grades.csv"
    assert cli.main(["export", "--workspace", str(ws), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[:7] == ["student_id", "assignment", "score", "max_score", "status",
                                 "test_shape", "test_values"]
    assert {r["student_id"] for r in rows} == {"right", "blank", "noisy", "partial", "deleter", "broken"}
    with Gradebook(course_config(ws).CourseDirectory.db_url) as gb:
        for r in rows:
            sub = gb.find_submission(ASSIGNMENT, r["student_id"])
            assert float(r["score"]) == sub.score and float(r["max_score"]) == sub.max_score == 3.0
            for nb in sub.notebooks:
                for g in nb.grades:
                    assert float(r[g.name]) == g.score
    assert {r["student_id"]: r["status"] for r in rows}["broken"] == "broken"
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_feedback_hides_hidden_tests_and_needs_no_network(graded):
    """Is every hidden line gone (source and traceback), and nothing loaded from a CDN?"""
    ws, _ = graded
    cli.main(["feedback", "--workspace", str(ws), "--assignment", ASSIGNMENT, "--source", str(FIXTURE)])
    pages = sorted((ws / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    assert {p.parts[-3] for p in pages} == {"right", "blank", "noisy", "partial", "deleter", "broken"}
    assert "not a gradable notebook" in (ws / "feedback" / "broken" / ASSIGNMENT / "index.html").read_text()
    for page in pages:
        html = page.read_text()
        assert HIDDEN_MARKER not in html and "BEGIN HIDDEN" not in html
        assert "cdnjs" not in html and "MathJax.Hub" not in html
        if page.name != "index.html":   # a notebook page: maths typeset by the local MathJax
            assert '<script defer src="../../_static/tex-svg.js">' in html
        for attr in ("src=\"http", "href=\"http", "src='http", "@import url(http"):
            assert attr not in html, (page, attr)
    assert (ws / "feedback" / "_static" / "tex-svg.js").stat().st_size > 1_000_000
    partial = (ws / "feedback" / "partial" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "sums differ on a 5x7 map" in partial  # the message the instructor wrote for the learner


def test_resume_after_a_killed_run_grades_only_what_is_missing(tmp_path, released):
    """After SIGKILL mid-batch, does a re-run grade only the rest, and a third run nothing?"""
    students = {s: submission(released, ANSWERS.get(s)) for s in ("right", "partial", "blank")}
    write_class(tmp_path / "in", released, students)
    ws = tmp_path / "ws"
    collect(tmp_path / "in", assignment=ASSIGNMENT, workspace=ws, source_dir=FIXTURE)
    argv = [sys.executable, "-m", "autograder", "grade", "--assignment", ASSIGNMENT, "--workspace", str(ws),
            "--source", str(FIXTURE), "--workers", "1", "--unsafe"]
    proc = subprocess.Popen(argv, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    results = ws / "results" / ASSIGNMENT
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(results.glob("*.json"))) < 1 and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.stem for p in results.glob("*.json")}
    assert 1 <= len(done) < 3
    for p in results.glob("*.json"):
        json.loads(p.read_text())  # every result file written is whole
    summary = grade(options(ws), workers=2, log=lambda *a, **k: None, progress_stream=io.StringIO())
    assert summary["skipped"] == len(done) and summary["graded"] == 3 - len(done)
    assert {s for (_, s) in load_results(ws, ASSIGNMENT)} == set(students)
    assert cells(ws, "right") == {"test_shape": 1.0, "test_values": 2.0}
    again = grade(options(ws), workers=2, log=lambda *a, **k: None, progress_stream=io.StringIO())
    assert again["graded"] == 0 and again["skipped"] == 3
    # A changed submission is stale: only it is graded again, and the change is reported.
    nbformat.write(submission(released, ANSWERS["right"]), ws / "submitted" / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    third = grade(options(ws), workers=2, log=lambda *a, **k: None, progress_stream=io.StringIO())
    assert third["graded"] == 1 and third["changed"] == [("blank", 0.0, 3.0)]
    assert not list(ws.rglob("*.tmp"))


def test_selfcheck_runs_visible_tests_only(tmp_path, released, capsys):
    """Does selfcheck pass a submission that only fails hidden tests, and name what a blank one must write?"""
    partial, blank = tmp_path / "partial.ipynb", tmp_path / "blank.ipynb"
    nbformat.write(submission(released, ANSWERS["partial"]), partial)
    nbformat.write(submission(released, None), blank)
    assert cli.main(["selfcheck", str(partial)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 visible checks pass" in out and HIDDEN_MARKER not in out
    assert cli.main(["selfcheck", str(blank)]) == 1
    out = capsys.readouterr().out
    assert "0 of 2 visible checks pass" in out and "answer_channel_sum" in out


def test_cli_bad_input_is_one_clear_line(tmp_path, capsys):
    """Does bad input exit 2 with an error naming the argument, not a traceback?"""
    assert cli.main(["selfcheck", str(tmp_path / "missing.ipynb")]) == 2
    assert "NOTEBOOK" in capsys.readouterr().err
    assert cli.main(["grade", "--assignment", ASSIGNMENT, "--workspace", str(tmp_path), "--unsafe"]) == 2
    assert "workspace" in capsys.readouterr().err


def test_release_reproduces_committed_exercises(tmp_path):
    """Does `release` regenerate exercises/ byte for byte (no timestamps, stable cell ids)?"""
    from autograder.release import assignment_ids
    ids = [a for a in assignment_ids() if (REPO / "exercises" / a).is_dir()]
    if not ids:
        pytest.skip("no assignment released yet")
    release(ids, release_dir=tmp_path)
    for a in ids:
        assert same_tree(tmp_path / a, REPO / "exercises" / a) == [], f"exercises/{a} is stale: release it again"
        text = "".join(p.read_text() for p in (tmp_path / a).glob("*.ipynb"))
        assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, a


def test_sample_class_matches_the_release():
    """Are the sample class's read-only and test cells the released ones? (Stale samples read as edits.)

    Regenerate with `python autograder/samples/make_samples.py` after releasing ps1 again.
    """
    import nbformat

    released = {c.metadata.nbgrader["grade_id"]: c.source
                for c in nbformat.read(REPO / "exercises" / "ps1_dsc" / "ps1_dsc.ipynb", as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("locked")}
    samples = sorted((REPO / "autograder" / "samples" / "ps1_dsc").glob("*/*.ipynb"))
    assert len(samples) >= 8
    for path in samples:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - the sample that is unreadable on purpose
            continue
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in released:
                assert c.source == released[gid], f"{path.relative_to(REPO)}: {gid} is stale: run make_samples.py"


@pytest.mark.slow  # one ps1 notebook graded in a child process, about 20 s
def test_grade_called_from_a_program_that_already_ran_torch(tmp_path):
    """grade() from a process whose torch thread pool already ran (a notebook, a test run): no hang.

    Forked workers inherit the parent's OpenMP state; their first parallel op (the grader setup's
    references) waited forever on threads that do not exist in the child.
    """
    ws = tmp_path / "ws"
    subs = tmp_path / "in" / "s01_right"
    subs.mkdir(parents=True)
    (subs / "ps1_dsc.ipynb").write_bytes((REPO / "autograder" / "samples" / "ps1_dsc" / "s01_right" /
                                          "ps1_dsc.ipynb").read_bytes())
    script = ("import torch\n"
              "torch.set_num_threads(2)\n"
              "torch.nn.Conv2d(64, 64, 3)(torch.randn(1, 64, 112, 112))  # the pool is up\n"
              "from autograder import cli\n"
              f"assert cli.main(['collect', {str(tmp_path / 'in')!r}, '--assignment', 'ps1_dsc', '--workspace', {str(ws)!r}]) == 0\n"
              f"raise SystemExit(cli.main(['grade', '--assignment', 'ps1_dsc', '--workspace', {str(ws)!r}, '--unsafe', "
              "'--no-canary', '--workers', '1']))\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert load_results(ws, "ps1_dsc")[("ps1_dsc", "s01_right")]["score"] == 10.0


def test_no_sandbox_stops_grading_with_a_named_error(tmp_path, monkeypatch, capsys):
    """Without a sandbox (and without --unsafe), grade raises GradingEnvironmentError, grades nothing,
    and the CLI turns it into one line on stderr and exit status 1."""
    from autograder import sandbox
    from autograder.errors import GradingEnvironmentError

    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Probe(False, "bwrap", "test: no user namespaces"))
    ws = tmp_path / "ws"
    (ws / "submitted" / "s01" / ASSIGNMENT).mkdir(parents=True)
    opts = Options(workspace=str(ws), assignment=ASSIGNMENT, source=str(REPO / "solutions"))
    with pytest.raises(GradingEnvironmentError, match=r"sandbox is unavailable here \(test: no user namespaces\)"):
        grade(opts, workers=1, log=lambda *a, **k: None)
    assert not (ws / "results").exists()
    argv = ["grade", "--workspace", str(ws), "--assignment", ASSIGNMENT, "--workers", "1"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: grading runs student code with your rights") and "--unsafe" in err


def test_the_progress_bar_writes_to_standard_error_as_it_is_now(capsys):
    """grade's progress goes to sys.stderr as it is when grading starts, not as it was when the module was
    imported: a caller that replaced it since (a test's capture, a notebook) got 'I/O operation on closed file'
    from every grade once that old stream was closed (tests/test_lms.py failed when run alone)."""
    from autograder.grade import Progress

    Progress(2, 1).step("student042: graded 10/10")
    assert "student042: graded 10/10" in capsys.readouterr().err
