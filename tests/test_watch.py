"""Does ``python -m autograder watch`` grade each submission once as it arrives, show before the due time
only what course.toml allows, refuse what it must, and survive restarts and SIGKILL?

Real grading throughout (the sandbox, ps1_dsc's sample notebooks, the CLI as an instructor runs it);
the end-to-end test with nbgrader's exchange and two normal accounts is in test_watch_exchange.py.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import course, watch

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "autograder" / "samples" / "ps1_dsc"
A = "ps1_dsc"
NB = f"{A}.ipynb"


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _submit(inbox: pathlib.Path, student: str, sample: str) -> None:
    """A learner's notebook lands in the inbox, settled (as if saved a few seconds ago)."""
    (inbox / student).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / sample / NB, inbox / student / NB)
    old = time.time() - 5
    os.utime(inbox / student / NB, (old, old))


def _course(ws: pathlib.Path, due: dt.datetime, per_day: int = 2, before_due: str = "visible") -> None:
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "course.toml").write_text(f'[watch]\nbefore_due = "{before_due}"\nper_day = {per_day}\n\n'
                                    f'[assignments.{A}]\ndue = {due.isoformat(timespec="seconds")}\n')


def _journal(ws: pathlib.Path) -> list[dict]:
    path = ws / "watch" / A / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _text(page: pathlib.Path) -> str:
    t = page.read_text()
    t = re.sub(r"<(style|script).*?</\1>", "", t, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", t))


def _watch_once(ws, inbox):
    return _cli("watch", "--workspace", str(ws), "--assignment", A, "--inbox", str(inbox), "--once")


def test_the_course_file_says_what_watch_shows_and_how_often():
    """[watch] gives the course's default, an assignment may override it, bad values name their line."""
    c = course.parse('[watch]\nper_day = 5\n[assignments.a]\ndue = 2026-10-05T23:59:00+02:00\n'
                     'watch = { before_due = "score" }\n[assignments.b]\ndue = 2026-10-05T23:59:00+02:00\n')
    assert c.assignments["a"].watch == course.WatchPolicy("score", 5)
    assert c.assignments["b"].watch == course.WatchPolicy("visible", 5)
    assert course.parse("").watch == course.WatchPolicy("visible", 3)  # the safe default: hidden checks stay hidden
    with pytest.raises(course.CourseError, match=r"line 2: before_due = 'all'"):
        course.parse('[watch]\nbefore_due = "all"\n')
    with pytest.raises(course.CourseError, match="per_day = -1"):
        course.parse("[watch]\nper_day = -1\n")
    with pytest.raises(course.CourseError, match="unknown key 'limit'"):
        course.parse("[watch]\nlimit = 2\n")


def test_the_view_follows_the_learners_own_due_time():
    """Before the (extended) due time the course's before_due, after it the full page."""
    c = course.parse('[watch]\nbefore_due = "score"\n[assignments.ps1_dsc]\ndue = 2026-10-05T23:59:00+02:00\n'
                     '[assignments.ps1_dsc.extensions]\ns07 = "3d"\n')
    at = dt.datetime(2026, 10, 6, 12, 0, tzinfo=dt.timezone.utc)
    assert watch.view_for(c, A, "s01", at)[0] == "full"
    assert watch.view_for(c, A, "s07", at)[0] == "score"
    assert watch.view_for(None, A, "s01", at) == ("visible", "")  # no due time known: never "after"


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """A term in one workspace: two learners arrive, the watch answers, then stops."""
    root = tmp_path_factory.mktemp("watch")
    ws, inbox = root / "ws", root / "inbox"
    _course(ws, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7), per_day=2)
    _submit(inbox, "s01", "s01_right")
    _submit(inbox, "s06", "s06_padding_off")  # visible checks pass, hidden ones fail: what the view must hide
    first = _watch_once(ws, inbox)
    return {"ws": ws, "inbox": inbox, "first": first}


def test_each_arrival_is_graded_and_answered_once(term):
    ws, first = term["ws"], term["first"]
    assert first.returncode == 0, first.stderr
    assert "answered 2 submission(s)" in first.stdout
    records = _journal(ws)
    assert sorted((r["student"], r["state"], r["view"], r["score"]) for r in records) == \
        [("s01", "graded", "visible", 10.0), ("s06", "graded", "visible", 5.0)]
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / A).glob("*.json")}
    assert {s: r["score"] for s, r in results.items()} == {"s01": 10.0, "s06": 5.0}  # the workspace's own records
    again = _watch_once(ws, term["inbox"])
    assert again.returncode == 0 and "answered 0 submission(s)" in again.stdout, again.stderr
    assert len(_journal(ws)) == 2


def test_before_the_due_time_the_page_shows_the_visible_checks_only(term):
    """s06's page (padding off: its visible checks pass, two hidden checks fail): the banner, every
    hidden check's result withheld, no score, no hidden message; the full page has them, so the
    difference is the view's doing."""
    page = term["ws"] / "watch" / A / "feedback" / "s06" / f"{A}.html"
    text = _text(page)
    assert "visible checks said" in text
    assert text.count("their result is shown after the due time") == 4  # every graded cell: visible checks pass
    for secret in ("cases failed", "expected output shape", "Score", "5.0", "/ 10"):
        assert secret not in text, secret
    full = _cli("feedback", "--workspace", str(term["ws"]), "--assignment", A)
    assert full.returncode == 0, full.stderr
    full_text = _text(term["ws"] / "feedback" / "s06" / A / f"{A}.html")
    assert "cases failed" in full_text and "expected output shape" in full_text


def test_a_learner_over_the_days_limit_is_kept_but_not_graded(term):
    """per_day = 2: s06's second grading today happens, the third is collected and answered 'not today'."""
    ws, inbox = term["ws"], term["inbox"]
    _submit(inbox, "s06", "s01_right")  # fixed
    second = _watch_once(ws, inbox)
    assert second.returncode == 0, second.stderr
    assert [r["score"] for r in _journal(ws) if r["student"] == "s06"] == [5.0, 10.0]
    _submit(inbox, "s06", "s03_partial")
    third = _watch_once(ws, inbox)
    assert third.returncode == 0, third.stderr
    last = _journal(ws)[-1]
    assert (last["student"], last["state"]) == ("s06", "limited")
    assert "not graded today" in _text(pathlib.Path(last["pages"][0]))
    kept = (ws / "submitted" / "s06" / A / NB).read_bytes()
    assert kept == (SAMPLES / "s03_partial" / NB).read_bytes()  # the final batch grades the newest
    assert json.loads((ws / "results" / A / "s06.json").read_text())["score"] == 10.0  # not graded now


def test_after_the_due_time_the_page_is_the_full_one(term):
    ws, inbox = term["ws"], term["inbox"]
    _course(ws, dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1), per_day=2)
    _submit(inbox, "s01", "s03_partial")
    r = _watch_once(ws, inbox)
    assert r.returncode == 0, r.stderr
    last = _journal(ws)[-1]
    assert (last["student"], last["view"], last["score"]) == ("s01", "full", 5.0)
    text = _text(pathlib.Path(last["pages"][0]))
    assert "visible checks said" not in text and "late" in text.lower()  # the late record shows, as on feedback's page


def test_a_page_does_not_depend_on_the_pages_made_before_it(term, tmp_path):
    """A watch keeps one exporter per view for its whole run (feedback._page_exporter): s06's pages, made after
    s01's in both views, are byte for byte the pages a fresh exporter makes, and the exporter was kept."""
    from autograder import feedback
    from autograder.nbgrader_config import SOURCE
    from autograder.options import Options, config

    opts = Options(workspace=str(term["ws"]), assignment=A, source=str(SOURCE))
    feedback._EXPORTERS.clear()
    fresh = {view: feedback.student_pages(opts, "s06", view, tmp_path / "fresh" / view, "in a week")
             for view in ("full", "visible")}
    for view in ("full", "visible"):
        assert feedback.student_pages(opts, "s01", view, tmp_path / "s01" / view, "in a week")
    kept = {view: feedback.student_pages(opts, "s06", view, tmp_path / "kept" / view, "in a week")
            for view in ("full", "visible")}
    for view in ("full", "visible"):
        assert [p.name for p in kept[view]] == [p.name for p in fresh[view]] == [f"{A}.html"]
        assert kept[view][0].read_bytes() == fresh[view][0].read_bytes(), view
    assert "Score" in _text(kept["full"][0]) and "Score" not in _text(kept["visible"][0])  # two views, two exporters
    cfg = config(opts)
    assert len(feedback._EXPORTERS) == 2 and feedback._page_exporter(cfg, "full") is feedback._page_exporter(cfg, "full")


def test_a_grading_lock_refuses_a_second_grader_beside_the_watch(tmp_path):
    """While watch runs, ``grade`` on the same workspace and assignment is refused, naming the watch."""
    ws, inbox = tmp_path / "ws", tmp_path / "inbox"
    inbox.mkdir()
    ws.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "autograder", "watch", "--workspace", str(ws), "--assignment", A,
                          "--inbox", str(inbox), "--interval", "0.2"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if (ws / f".grade-{A}.lock").is_file() and (ws / f".grade-{A}.lock").read_text().strip():
                break
            time.sleep(0.05)
        (ws / "submitted").mkdir()
        g = _cli("grade", "--workspace", str(ws), "--assignment", A)
        assert g.returncode == 1 and "watch" in g.stderr, g.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "answered 0" in out


def test_a_watch_killed_while_grading_answers_that_submission_once_after_restart(tmp_path):
    """SIGKILL after the submission is collected, before it is answered: the next watch answers it,
    once; the journal holds one record, the result and the page exist."""
    ws, inbox = tmp_path / "ws", tmp_path / "inbox"
    _submit(inbox, "s01", "s01_right")
    p = subprocess.Popen([sys.executable, "-m", "autograder", "watch", "--workspace", str(ws), "--assignment", A,
                          "--inbox", str(inbox), "--interval", "0.2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(1200):
            if (ws / "submitted" / "s01" / A / NB).is_file():
                break
            time.sleep(0.05)
        time.sleep(1.0)  # grading has started (the canary first)
        assert not _journal(ws), "answered before it could be killed: the test proves nothing"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    r = _watch_once(ws, inbox)
    assert r.returncode == 0, r.stderr
    records = _journal(ws)
    assert [(x["student"], x["state"], x["score"]) for x in records] == [("s01", "graded", 10.0)]
    assert pathlib.Path(records[0]["pages"][0]).is_file()
    again = _watch_once(ws, inbox)
    assert "answered 0" in again.stdout and len(_journal(ws)) == 1


def test_an_inbound_folder_that_names_someone_else_is_refused(tmp_path):
    """nbgrader submit --student writes any name: a folder whose owner is not the student it names is
    refused, nothing graded, no page released."""
    exchange = tmp_path / "exchange"
    inbound = exchange / "mnl101" / "inbound" / "someone-else+ps1_dsc+2026-12-06 10:00:00.000000 UTC+abc"
    inbound.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "s01_right" / NB, inbound / NB)
    (inbound / "timestamp.txt").write_text("2026-12-06 10:00:00.000000 UTC")
    (inbound / "submission_secret.txt").write_text("ab" * 64)
    ws = tmp_path / "ws"
    r = _cli("watch", "--workspace", str(ws), "--assignment", A, "--exchange", str(exchange), "--course", "mnl101",
             "--once")
    assert r.returncode == 0, r.stderr
    assert "REFUSED" in r.stderr and "someone-else" in r.stderr
    assert [x["state"] for x in _journal(ws)] == ["refused"]
    assert not (ws / "submitted").exists() and not list((exchange / "mnl101").glob("feedback/*.html"))
