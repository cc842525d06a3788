"""The course run from the LMS and back: Canvas and Moodle downloads in, gradebook imports out.

The samples (autograder/samples/lms/, written by make_lms_samples.py from the sample class) go
through collect, grade, feedback, export (csv, canvas, moodle) and check. Lateness is worked out
here from the sample's own times with datetime arithmetic, not taken from autograder/course.py:
s03 handed in 7 Oct 10:00 Zurich time, due 5 Oct 23:59, so 34 h 1 min late; minus the 15-minute
grace that is 2 started days at 10 % each; s06 handed in 36 h 1 min late with a 3-day extension.
Bad input (corrupt zip, unknown layout, no roster, duplicate ids, two uploads at one time, a bad
course file) is tested without grading.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
import zipfile
import zoneinfo

import pytest

from autograder import cli
from autograder.check import check
from autograder.collect import collect
from autograder.nbgrader_config import REPO, SOURCE
from autograder.roster import read_roster

LMS = REPO / "autograder" / "samples" / "lms"
A = "ps1_dsc"
ZURICH = zoneinfo.ZoneInfo("Europe/Zurich")
DUE = dt.datetime(2026, 10, 5, 23, 59, tzinfo=ZURICH)
S03_AT = dt.datetime(2026, 10, 7, 10, 0, tzinfo=ZURICH)
S06_AT = dt.datetime(2026, 10, 7, 12, 0, tzinfo=ZURICH)
GRACE = dt.timedelta(minutes=15)


def utc_delta(a, b) -> dt.timedelta:
    return a.astimezone(dt.timezone.utc) - b.astimezone(dt.timezone.utc)


def test_samples_are_reproducible(tmp_path):
    """Does the committed sample equal what the script writes now?"""
    before = {p.name: p.read_bytes() for p in LMS.iterdir()}
    subprocess.run([sys.executable, str(REPO / "autograder" / "samples" / "make_lms_samples.py")], check=True,
                   capture_output=True)
    assert {p.name: p.read_bytes() for p in LMS.iterdir()} == before


# ------------------------------------------------------------------ collect and rosters (no kernels)

def test_canvas_collect_maps_ids_keeps_latest_and_reports_strangers(tmp_path):
    r = collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "canvas_roster.csv",
                zip_timezone="Europe/Zurich")
    assert r.layout == "canvas"
    assert r.accepted == {"s01": [f"{A}.ipynb"], "s03": [f"{A}.ipynb"], "s06": [f"{A}.ipynb"], "s10": []}
    assert set(r.missing) == {"s10"}
    assert [who for _, who in r.not_on_roster] == ["Canvas user 2001 (strangerbob)"]
    assert r.superseded == [("s06", "turingalan_LATE_1006_50006_ps1_dsc-1.ipynb",
                             ["turingalan_1006_50005_ps1_dsc.ipynb"])]
    # the later upload (s06_padding_off), not the blank first one, is what gets graded
    kept = (tmp_path / "submitted" / "s06" / A / f"{A}.ipynb").read_bytes()
    assert kept == (REPO / "autograder" / "samples" / A / "s06_padding_off" / f"{A}.ipynb").read_bytes()
    info = json.loads((tmp_path / "collect" / f"{A}.students.json").read_text())
    assert dt.datetime.fromisoformat(info["s03"]["submitted_at"]) == S03_AT and info["s03"]["lms_late"]
    assert info["s01"]["lms_late"] is False and info["s10"]["submitted_at"] is None
    assert "Test" in " ".join(r.notes)  # Canvas's test student skipped, said so


def test_canvas_download_rezipped_in_a_folder(tmp_path):
    """A Canvas download unpacked and zipped again (one wrapping folder) collects the same."""
    z = tmp_path / "again.zip"
    with zipfile.ZipFile(LMS / "canvas_ps1_dsc.zip") as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(f"submissions/{info.filename}", info.date_time), src.read(info))
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv",
                zip_timezone="Europe/Zurich")
    assert r.layout == "canvas" and {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06"}
    info = json.loads((tmp_path / "ws" / "collect" / f"{A}.students.json").read_text())
    assert dt.datetime.fromisoformat(info["s03"]["submitted_at"]) == S03_AT


def test_moodle_collect(tmp_path):
    r = collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "moodle_roster.csv",
                zip_timezone="Europe/Zurich")
    assert r.layout == "moodle"
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06"} and set(r.missing) == {"s10"}
    assert [who for _, who in r.not_on_roster] == ["Moodle participant 399 (Bob Stranger)"]


def test_moodle_by_unique_name_when_roster_has_no_lms_ids(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,name\ns01,Jane Doe\ns03,Ada Lovelace\ns06,Alan Turing\ns10,Grace Hopper\n")
    r = collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path / "ws", roster=roster)
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06"}
    info = json.loads((tmp_path / "ws" / "collect" / f"{A}.students.json").read_text())
    assert info["s01"]["matched_by"] == "name"


def test_lms_zip_needs_a_roster(tmp_path):
    with pytest.raises(ValueError, match="canvas download: pass --roster"):
        collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path)


def test_canvas_needs_lms_ids_in_the_roster(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,name\ns01,Jane Doe\n")
    with pytest.raises(ValueError, match="gives no Canvas user ids"):
        collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path / "ws", roster=roster)


def test_corrupt_zip_is_a_clear_error(tmp_path):
    data = (LMS / "canvas_ps1_dsc.zip").read_bytes()
    bad = tmp_path / "download.zip"
    bad.write_bytes(data[:200] + b"\0" * 300 + data[500:])  # a damaged entry: the CRC (or inflate) fails
    with pytest.raises(ValueError, match=r"download\.zip is a corrupt zip"):
        collect(bad, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv")


def test_unknown_layout_says_what_was_expected(tmp_path):
    z = tmp_path / "odd.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("homework.ipynb", "{}")
        zf.writestr("notes.txt", "hi")
    with pytest.raises(ValueError, match=r"odd\.zip: unknown layout \(found homework\.ipynb, notes\.txt\); "
                                         r"expected .*Canvas.*Moodle"):
        collect(z, assignment=A, workspace=tmp_path / "ws")


def test_two_uploads_at_one_time_keep_neither(tmp_path):
    z = tmp_path / "canvas.zip"
    nb = (REPO / "autograder" / "samples" / A / "s01_right" / f"{A}.ipynb").read_bytes()
    with zipfile.ZipFile(z, "w") as zf:
        for name in ("doejane_1001_1_ps1_dsc.ipynb", "doejane_1001_2_ps1_dsc-1.ipynb"):
            zf.writestr(zipfile.ZipInfo(name, (2026, 10, 5, 12, 0, 0)), nb)
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv")
    assert r.duplicates == [("s01", f"{A}.ipynb", ["doejane_1001_1_ps1_dsc.ipynb", "doejane_1001_2_ps1_dsc-1.ipynb"])]
    assert r.accepted["s01"] == [] and "s01" in r.missing


def test_folders_with_a_roster(tmp_path):
    src = tmp_path / "in"
    for sid in ("s01", "zz99"):
        (src / sid).mkdir(parents=True)
        shutil.copy(REPO / "autograder" / "samples" / A / "s01_right" / f"{A}.ipynb", src / sid)
    r = collect(src, assignment=A, workspace=tmp_path / "ws", roster=LMS / "moodle_roster.csv")
    assert r.layout == "folders" and r.accepted["s01"] == [f"{A}.ipynb"]
    assert r.not_on_roster == [(f"zz99/{A}.ipynb", "student id zz99")]
    assert set(r.missing) == {"s03", "s06", "s10"}


@pytest.mark.parametrize("text, line, words", [
    ("student_id,name\ns1,A\ns2,B\ns1,C\n", 4, "student id s1 appears twice (first on line 2)"),
    ("student_id,name,lms_id\ns1,A,7\ns2,B,7\n", 3, "LMS id 7 appears twice"),
    ("Student,ID,SIS User ID,SIS Login ID,Section\n\"Doe, J\",1,x1,,\n\"Roe, R\",2,x1,,\n", 3, "appears twice"),
    ("student_id,name\nbad id,A\n", 2, "not an id"),
    ("name,email\nA,a@x\n", 1, "neither Canvas"),
])
def test_bad_roster_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        read_roster(path)
    assert str(path) in str(e.value) and f"line {line}" in str(e.value) and words in str(e.value), str(e.value)


def test_invalid_course_file_stops_grade_before_anything_is_graded(tmp_path, capsys):
    collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "canvas_roster.csv")
    (tmp_path / "course.toml").write_text("[assignments.ps1_dsc]\ntitle = 'PS1'\ndue = 2026-10-32T23:59:00Z\n")
    assert cli.main(["grade", "--assignment", A, "--workspace", str(tmp_path), "--unsafe", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'course.toml'}" in err and "line 3" in err
    assert not list((tmp_path / "results").glob("*/*.json"))


# ------------------------------------------------------------------ end to end (real kernels)

@pytest.fixture(scope="module", params=["canvas", "moodle"])
def run(request, tmp_path_factory):
    """One LMS download graded end to end: (lms, workspace, results by student, output folder)."""
    lms = request.param
    ws = tmp_path_factory.mktemp(f"{lms}_ws")
    out = tmp_path_factory.mktemp(f"{lms}_out")
    shutil.copy(LMS / "course.toml", ws / "course.toml")
    argv = ["--assignment", A, "--workspace", str(ws)]
    assert cli.main(["collect", str(LMS / f"{lms}_ps1_dsc.zip"), *argv, "--roster", str(LMS / f"{lms}_roster.csv"),
                     "--zip-timezone", "Europe/Zurich"]) == 0
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "2", "--no-canary", "--timeout-notebook", "240"]) == 0
    assert cli.main(["feedback", *argv]) == 0
    assert cli.main(["export", "--workspace", str(ws), "--output", str(ws / "grades.csv")]) == 0
    for fmt in ("canvas", "moodle"):
        assert cli.main(["export", "--workspace", str(ws), "--assignment", A, "--format", fmt,
                         "--output", str(out / f"{fmt}.csv")]) == 0
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / A).glob("*.json")}
    return lms, ws, results, out


@pytest.mark.slow
def test_statuses_and_penalties(run):
    _, ws, res, _ = run
    assert {s: r["status"] for s, r in res.items()} == {"s01": "graded", "s03": "graded", "s06": "graded",
                                                        "s10": "missing"}
    assert res["s01"]["score"] == res["s01"]["max_score"] == 10  # right answers, on time: nothing off
    assert res["s01"]["late"]["score"] == 10 and res["s01"]["late"]["penalty"] == 0
    late_by = utc_delta(S03_AT, DUE)
    assert late_by == dt.timedelta(hours=34, minutes=1)
    days = math.ceil((late_by - GRACE) / dt.timedelta(days=1))
    late = res["s03"]["late"]
    assert 0 < res["s03"]["score"] < 10  # partial answers: something to lose
    assert late["late_by_s"] == late_by.total_seconds() and late["days_late"] == days == 2
    assert late["raw_score"] == res["s03"]["score"]
    assert late["score"] == pytest.approx(res["s03"]["score"] * (1 - 0.10 * days))
    ext = res["s06"]["late"]  # 36 h late for everyone else, within its 3 days
    assert utc_delta(S06_AT, DUE) > dt.timedelta(days=1) and ext["extended"]
    assert ext["penalty"] == 0 and ext["score"] == res["s06"]["score"] < 10
    assert res["s10"]["late"]["score"] == 0


@pytest.mark.slow
def test_lms_imports(run):
    lms, ws, res, out = run
    rows = list(csv.reader((out / "canvas.csv").open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "PS1 depthwise separable convolutions (4101)"]
    assert rows[1][0].strip() == "Points Possible" and float(rows[1][5]) == 10
    by = {r[2]: r for r in rows[2:]}
    assert set(by) == {"s01", "s03", "s06", "s10"}  # every roster student, none other
    if lms == "canvas":  # the Canvas user ids come from Canvas's own roster
        assert {s: r[1] for s, r in by.items()} == {"s01": "1001", "s03": "1003", "s06": "1006", "s10": "1010"}
    for s in ("s01", "s03", "s06"):
        assert float(by[s][5]) == pytest.approx(round(res[s]["late"]["score"], 2))
    assert float(by["s03"][5]) == pytest.approx(round(res["s03"]["score"] * 0.8, 2))
    assert float(by["s10"][5]) == 0
    mrows = list(csv.DictReader((out / "moodle.csv").open()))
    assert list(mrows[0]) == ["ID number", "Email address", "Full name", "PS1 depthwise separable convolutions"]
    assert {r["ID number"]: float(r["PS1 depthwise separable convolutions"]) for r in mrows} == \
        {s: float(by[s][5]) for s in by}
    if lms == "moodle":
        assert {r["Email address"] for r in mrows} >= {"ada.lovelace@example.edu"}
    full = {r["student_id"]: r for r in csv.DictReader((ws / "grades.csv").open())}
    assert float(full["s03"]["final_score"]) == pytest.approx(res["s03"]["late"]["score"])
    assert float(full["s03"]["score"]) == res["s03"]["score"]
    cells = list(csv.DictReader((out / "canvas_cells.csv").open()))
    assert cells and all(int(c["submissions"]) == 3 for c in cells)  # s10 ran nothing
    for c in cells:  # the pass counts, recounted from the result files
        passed = sum(r["cells"][c["cell"]]["score"] == r["cells"][c["cell"]]["max_score"]
                     for r in res.values() if r["status"] == "graded")
        assert int(c["full_marks"]) == passed
    assert (out / "canvas_cells.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_feedback_says_both_scores_and_bundles_open_offline(run):
    _, ws, res, _ = run
    page = (ws / "feedback" / "s03" / A / f"{A}.html").read_text()
    late = res["s03"]["late"]
    assert f"{late['raw_score']:g} / 10 before any late penalty" in page and f"<b>{late['score']:g} / 10</b>" in page
    assert "20% late penalty" in page and "2 day(s) late" in page
    assert "(your extension)" in (ws / "feedback" / "s06" / A / f"{A}.html").read_text()
    with zipfile.ZipFile(ws / "feedback" / "_bundles" / A / "s03.zip") as zf:
        names = zf.namelist()
        assert f"s03/{A}/{A}.html" in names and "_static/tex-svg.js" in names
        html = zf.read(f"s03/{A}/{A}.html").decode()
    assert '../../_static/tex-svg.js' in html and "cdn.jsdelivr" not in html
    assert (ws / "feedback" / "_bundles" / A / "s10.zip").is_file()  # "missing" hears back too


def _moodle_files(names: list, participants: set) -> dict:
    """participant id -> the feedback file names Moodle files a zip's entries under, by its import rule
    (mod/assign/feedback/file/importziplib.php, is_valid_filename_for_import), written again here: the
    first path part that splits on '_' (at most 5 fields) into >= 4 fields, the second a known
    participant id and the next two a plugin, files the rest of the path under that participant."""
    out: dict = {}
    for name in names:
        parts = name.split("/")
        if name.endswith("/") or parts[-1].startswith((".", "~")):
            continue
        while parts:
            info = parts.pop(0).split("_", 4)
            if len(info) < 4 or not info[1].isdigit() or info[1] not in participants:
                continue
            if (info[2], info[3]) not in {("assignsubmission", "file"), ("assignfeedback", "file")}:
                continue
            out.setdefault(info[1], []).append("/".join([info[4] if len(info) > 4 else "", *parts]).lstrip("/"))
            break
    return out


def test_moodle_feedback_zip_survives_underscores_in_names(tmp_path):
    """A name with '_' would move the participant id out of place in Moodle's split: written as spaces."""
    from autograder.course import submissions_file
    from autograder.feedback import moodle_bundle
    page = tmp_path / "feedback" / "s03" / A / f"{A}.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>s03</html>")
    info = {"s03": {"lms": "moodle", "lms_id": "303", "name": "Ada_Lovelace"}}
    submissions_file(tmp_path, A).parent.mkdir(parents=True)
    submissions_file(tmp_path, A).write_text(json.dumps(info))
    with zipfile.ZipFile(moodle_bundle(tmp_path, A, [page])) as zf:
        assert _moodle_files(zf.namelist(), {"303"}) == {"303": [f"{A}.html"]}
    assert moodle_bundle(tmp_path, "other", [page]) is None  # no Moodle submissions for it: no zip


@pytest.mark.slow
def test_moodle_feedback_zip_files_every_page_under_its_participant(run):
    lms, ws, _, _ = run
    path = ws / "feedback" / "_bundles" / A / "moodle_feedback_files.zip"
    if lms != "moodle":
        assert not path.exists()  # a Canvas class gets no Moodle zip
        return
    ids = {"s01": "301", "s03": "303", "s06": "306", "s10": "310"}  # autograder/samples/lms/moodle_roster.csv
    # the rule as Moodle applies it: an '_' in the name moves the id out of place, a flat file is not filed
    assert _moodle_files(["Ada_Lovelace_303_assignsubmission_file_/x.html", "x.html"], {"303"}) == {}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        filed = _moodle_files(names, set(ids.values()))
        assert filed == {"301": [f"{A}.html"], "303": [f"{A}.html"], "306": [f"{A}.html"], "310": [f"{A}_feedback.html"]}
        assert "Ada Lovelace_303_assignsubmission_file_/" + f"{A}.html" in names  # the download's folder name
        for sid, pid in ids.items():  # each participant gets exactly their own pages
            (entry,) = [n for n in names if n.split("_")[1] == pid]
            mine = ws / "feedback" / sid / A
            assert zf.read(entry) == (mine / (f"{A}.html" if sid != "s10" else "index.html")).read_bytes()


@pytest.mark.slow
def test_check_verifies_the_penalty(run, tmp_path):
    _, ws, _, _ = run
    assert check(ws) == []
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    path = copy / "results" / A / "s03.json"
    res = json.loads(path.read_text())
    res["late"]["score"] = res["late"]["raw_score"]  # a late submission that lost nothing
    path.write_text(json.dumps(res))
    problems = check(copy)
    assert any("s03/ps1_dsc: late record: final" in p for p in problems), problems
    # an extension granted after grading: check says the record is stale
    (copy / "course.toml").write_text((LMS / "course.toml").read_text() + 's03 = "5d"\n')
    path.write_text(json.dumps(json.loads((ws / "results" / A / "s03.json").read_text())))
    assert any("differs from what course.toml" in p for p in check(copy))
    (copy / "course.toml").unlink()
    assert any("gives ps1_dsc no due time" in p for p in check(copy))


def test_source_is_the_course_solutions():
    assert (SOURCE / A / f"{A}.ipynb").is_file()
