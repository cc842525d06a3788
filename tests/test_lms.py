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
import pathlib
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

CANVAS_TIMES = LMS / "canvas_ps1_dsc_submissions.json"
MOODLE_TIMES = LMS / "moodle_ps1_dsc_worksheet.csv"
REVIEW = {"s11", "s12", "s13", "s14", "s15"}  # handed in something that is not the gradable notebook


def _canvas(tmp_path, **kw):
    return collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "canvas_roster.csv",
                   **kw)


def _info(ws, assignment=A):
    return json.loads((ws / "collect" / f"{assignment}.students.json").read_text())


def test_canvas_zip_times_are_the_download_time_and_never_used(tmp_path):
    """Every entry of the sample carries the download's time (a week after the due time), as Canvas writes it."""
    with zipfile.ZipFile(LMS / "canvas_ps1_dsc.zip") as zf:
        stamps = {i.date_time for i in zf.infolist()}
    assert len(stamps) == 1 and dt.datetime(*stamps.pop(), tzinfo=ZURICH) > DUE + dt.timedelta(days=6)
    _canvas(tmp_path)
    info = _info(tmp_path)
    assert info["s01"]["submitted_at"] is None and info["s01"]["lms_on_time"]  # no _LATE: on time by Canvas
    assert info["s03"]["submitted_at"] is None and info["s03"]["lms_late"]     # _LATE, by how much: unknown
    assert not any("zip entry" in str(m.get("time_source")) for m in info.values())
    with pytest.raises(ValueError, match=r"all \d+ entries of canvas_ps1_dsc\.zip carry the same time"):
        _canvas(tmp_path / "again", file_times=True, zip_timezone="Europe/Zurich")


def test_canvas_collect_with_the_submissions_api_times(tmp_path):
    r = _canvas(tmp_path, times=CANVAS_TIMES)
    assert r.layout == "canvas"
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06", "s16"}
    assert set(r.needs_review) == REVIEW and set(r.missing) == REVIEW | {"s10"}
    assert [who for _, who in r.not_on_roster] == ["Canvas user 2001 (strangerbob)"]
    # Canvas renamed s06's re-upload ps1_dsc-1.ipynb: taken as the notebook it is
    kept = (tmp_path / "submitted" / "s06" / A / f"{A}.ipynb").read_bytes()
    assert kept == (REPO / "autograder" / "samples" / A / "s06_padding_off" / f"{A}.ipynb").read_bytes()
    info = _info(tmp_path)
    assert dt.datetime.fromisoformat(info["s03"]["submitted_at"]) == S03_AT and info["s03"]["lms_late"]
    assert "Canvas Submissions API" in info["s03"]["time_source"]
    assert info["s01"]["lms_late"] is False and info["s10"]["submitted_at"] is None
    by_what = {s: " ".join(info[s]["needs_review"]) for s in REVIEW}
    assert "Python file" in by_what["s11"] and "PDF" in by_what["s12"] and "zip" in by_what["s13"]
    assert "not named ps1_dsc.ipynb" in by_what["s14"] and "which one counts is not known" in by_what["s15"]
    assert "Test" in " ".join(r.notes)  # Canvas's test student skipped, said so
    lines = "\n".join(r.lines())
    assert "NEEDS REVIEW s11: handed in ps1_dsc.py (a Python file, not a notebook)" in lines


def test_times_file_of_another_canvas_assignment_is_refused(tmp_path):
    shutil.copy(LMS / "course.toml", tmp_path / "course.toml")
    other = tmp_path / "other.json"
    other.write_text(CANVAS_TIMES.read_text().replace('"assignment_id": 4101', '"assignment_id": 4102'))
    with pytest.raises(ValueError, match="lists Canvas assignment.*4102.*course.toml says ps1_dsc is Canvas assignment 4101"):
        _canvas(tmp_path, times=other)


def test_canvas_download_rezipped_in_a_folder(tmp_path):
    """A Canvas download unpacked and zipped again (one wrapping folder) collects the same."""
    z = tmp_path / "again.zip"
    with zipfile.ZipFile(LMS / "canvas_ps1_dsc.zip") as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(f"submissions/{info.filename}", info.date_time), src.read(info))
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv", times=CANVAS_TIMES)
    assert r.layout == "canvas" and {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06", "s16"}
    assert dt.datetime.fromisoformat(_info(tmp_path / "ws")["s03"]["submitted_at"]) == S03_AT


def test_partial_redownload_merges_and_replace_must_be_asked_for(tmp_path):
    _canvas(tmp_path, times=CANVAS_TIMES)
    before = {p: p.read_bytes() for p in (tmp_path / "submitted").rglob("*.ipynb")}
    r = collect(LMS / "canvas_ps1_dsc_partial.zip", assignment=A, workspace=tmp_path,
                roster=LMS / "canvas_roster.csv", times=LMS / "canvas_ps1_dsc_submissions_again.json")
    assert r.updated == ["s03"] and "s01" in r.kept and not r.removed
    after = {p: p.read_bytes() for p in (tmp_path / "submitted").rglob("*.ipynb")}
    assert set(after) == set(before)
    assert [p for p in after if after[p] != before[p]] == [tmp_path / "submitted" / "s03" / A / f"{A}.ipynb"]
    info = _info(tmp_path)
    assert dt.datetime.fromisoformat(info["s03"]["submitted_at"]) == dt.datetime(2026, 10, 8, 8, 0, tzinfo=ZURICH)
    assert dt.datetime.fromisoformat(info["s01"]["submitted_at"]) == dt.datetime(2026, 10, 5, 20, 0, tzinfo=ZURICH)
    r = collect(LMS / "canvas_ps1_dsc_partial.zip", assignment=A, workspace=tmp_path,
                roster=LMS / "canvas_roster.csv", times=LMS / "canvas_ps1_dsc_submissions_again.json", replace=True)
    assert "s01" in r.removed and not (tmp_path / "submitted" / "s01" / A / f"{A}.ipynb").exists()


def test_moodle_collect_with_worksheet_times(tmp_path):
    with pytest.raises(ValueError, match="pass --timezone"):
        collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "moodle_roster.csv",
                times=MOODLE_TIMES)
    r = collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "moodle_roster.csv",
                times=MOODLE_TIMES, timezone="Europe/Zurich")
    assert r.layout == "moodle"
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06", "s15", "s16"}
    assert set(r.needs_review) == REVIEW - {"s15"}  # Moodle renamed s15's second file: the first is graded
    assert any("s15 also handed in ps1_dsc (1).ipynb" in n for n in r.notes)
    assert [who for _, who in r.not_on_roster] == ["Moodle participant 399 (Bob Stranger)"]
    info = _info(tmp_path)
    assert dt.datetime.fromisoformat(info["s03"]["submitted_at"]) == S03_AT
    assert info["s03"]["time_source"].startswith("Moodle grading worksheet")


def test_moodle_ids_are_per_assignment(tmp_path):
    """ps2_cost's download gives the same people other participant ids, one of them Jane's ps1 id (301) now
    Ada's: matched by name, never by the stale id, and each assignment keeps its own ids."""
    from autograder.roster import load_saved
    collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "moodle_roster.csv",
            times=MOODLE_TIMES, timezone="Europe/Zurich")
    r = collect(LMS / "moodle_ps2_cost.zip", assignment="ps2_cost", workspace=tmp_path,
                roster=LMS / "moodle_roster.csv")
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06"}
    assert not r.not_on_roster
    info = _info(tmp_path, "ps2_cost")
    assert {s: (info[s]["lms_id"], info[s]["matched_by"]) for s in ("s01", "s03", "s06")} == {
        "s01": ("512", "name"), "s03": ("301", "name"), "s06": ("517", "name")}
    assert any("participant id 301 to s01" in n for n in r.notes)
    ids = {a: {s: st.lms_id for s, st in load_saved(tmp_path, a).students.items()} for a in (A, "ps2_cost")}
    assert ids[A]["s01"] == "301" and ids[A]["s03"] == "303"
    assert ids["ps2_cost"]["s01"] == "512" and ids["ps2_cost"]["s03"] == "301" and ids["ps2_cost"]["s10"] == ""


def test_moodle_download_nobody_on_the_roster_is_refused(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,name,lms_id\nx1,Someone Else,301\nx2,Another One,303\n")
    with pytest.raises(ValueError, match="no one in this moodle download is on"):
        collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path / "ws", roster=roster)


def test_moodle_by_unique_name_when_roster_has_no_lms_ids(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,name\ns01,Jane Doe\ns03,Ada_Lovelace\ns06,Alan Turing\ns10,Grace Hopper\n")
    r = collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path / "ws", roster=roster)
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06"}  # '_' in a name reads as a space
    assert _info(tmp_path / "ws")["s01"]["matched_by"] == "name"


def test_canvas_ta_export_without_sis_ids_semicolons_and_split_names(tmp_path):
    ta = read_roster(LMS / "canvas_roster_ta.csv")
    full = read_roster(LMS / "canvas_roster.csv")
    assert ta.kind == "canvas" and "SIS User ID" not in ta.columns
    assert {s: (st.lms_id, st.name) for s, st in ta.students.items()} == \
        {s: (st.lms_id, st.name) for s, st in full.students.items()}
    assert ta.points == {"4101": 10.0} and any("no SIS User ID" in n for n in ta.notes)
    r = collect(LMS / "canvas_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=LMS / "canvas_roster_ta.csv",
                times=CANVAS_TIMES)
    assert {s for s, nbs in r.accepted.items() if nbs} == {"s01", "s03", "s06", "s16"}


def _rezip(src: pathlib.Path, dst: pathlib.Path, rename) -> pathlib.Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name = rename(info.filename)
            if name:
                zout.writestr(zipfile.ZipInfo(name, info.date_time), zin.read(info))
    return dst


def test_flat_moodle_download_collects_like_the_folders(tmp_path):
    flat = _rezip(LMS / "moodle_ps1_dsc.zip", tmp_path / "flat.zip", lambda n: n.replace("_/", "_"))
    kw = dict(assignment=A, roster=LMS / "moodle_roster.csv", times=MOODLE_TIMES, timezone="Europe/Zurich")
    a = collect(LMS / "moodle_ps1_dsc.zip", workspace=tmp_path / "a", **kw)
    b = collect(flat, workspace=tmp_path / "b", **kw)
    assert b.layout == "moodle" and a.accepted == b.accepted and set(a.needs_review) == set(b.needs_review)
    assert _info(tmp_path / "a")["s03"]["submitted_at"] == _info(tmp_path / "b")["s03"]["submitted_at"]


def test_canvas_names_as_content_zipper_writes_them(tmp_path):
    """Names keep '_' and non-ASCII letters; text and URL entries are attributed, as needing review."""
    nb = (REPO / "autograder" / "samples" / A / "s01_right" / f"{A}.ipynb").read_bytes()
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("o_brien_müller_1001_50001_ps1_dsc.ipynb", nb)
        zf.writestr("lovelaceada_LATE_1003_text.html", "<p>see my notebook on GitHub</p>")
        zf.writestr("turingalan_1006_link.html", "<a href='x'>x</a>")
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv", times=CANVAS_TIMES)
    assert r.layout == "canvas" and r.accepted["s01"] == [f"{A}.ipynb"]
    assert "online text entry" in r.needs_review["s03"][0] and "online URL" in r.needs_review["s06"][0]
    anon = tmp_path / "a.zip"
    with zipfile.ZipFile(anon, "w") as zf:
        zf.writestr("LATE_anon_x7Yq2_50001_ps1_dsc.ipynb", nb)
    with pytest.raises(ValueError, match="anonymously graded"):
        collect(anon, assignment=A, workspace=tmp_path / "ws2", roster=LMS / "canvas_roster.csv")


def test_moodle_online_text_is_attributed(tmp_path):
    z = _rezip(LMS / "moodle_ps1_dsc.zip", tmp_path / "m.zip", lambda n: n)
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("Grace Hopper_310_assignsubmission_onlinetext_/onlinetext.html", "<p>my answers</p>")
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "moodle_roster.csv")
    assert "onlinetext submission" in r.needs_review["s10"][0]


def test_anonymous_downloads_are_refused(tmp_path):
    """Canvas's anonymous grading and Moodle's blind marking name nobody: refused, never guessed."""
    canvas = _rezip(LMS / "canvas_ps1_dsc.zip", tmp_path / "anon.zip",
                    lambda n: "anon_" + "".join(c for c in n.split("_")[0][:5]) + "_" + n.split("_", 2)[-1])
    with pytest.raises(ValueError, match="anonymously graded"):
        collect(canvas, assignment=A, workspace=tmp_path / "c", roster=LMS / "canvas_roster.csv")
    blind = _rezip(LMS / "moodle_ps1_dsc.zip", tmp_path / "blind.zip",
                   lambda n: "Participant_" + n.split("_", 1)[1] if "_assignsubmission_" in n else n)
    with pytest.raises(ValueError, match="blind marking"):
        collect(blind, assignment=A, workspace=tmp_path / "m", roster=LMS / "moodle_roster.csv")
    assert not (tmp_path / "c" / "submitted").exists() and not (tmp_path / "m" / "submitted").exists()


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


def test_two_uploads_with_distinct_zip_times_keep_the_latest_only_when_asked(tmp_path):
    z = tmp_path / "canvas.zip"
    nb = (REPO / "autograder" / "samples" / A / "s01_right" / f"{A}.ipynb").read_bytes()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("doejane_1001_1_ps1_dsc.ipynb", (2026, 10, 5, 12, 0, 0)), b"{}")
        zf.writestr(zipfile.ZipInfo("doejane_1001_2_ps1_dsc-1.ipynb", (2026, 10, 5, 18, 0, 0)), nb)
    r = collect(z, assignment=A, workspace=tmp_path / "ws", roster=LMS / "canvas_roster.csv")
    assert r.accepted["s01"] == [] and "s01" in r.needs_review  # times unknown: which one counts is not known
    r = collect(z, assignment=A, workspace=tmp_path / "ws2", roster=LMS / "canvas_roster.csv", file_times=True)
    assert r.superseded == [("s01", "doejane_1001_2_ps1_dsc-1.ipynb", ["doejane_1001_1_ps1_dsc.ipynb"])]


def test_folders_with_a_roster(tmp_path):
    src = tmp_path / "in"
    for sid in ("s01", "zz99"):
        (src / sid).mkdir(parents=True)
        shutil.copy(REPO / "autograder" / "samples" / A / "s01_right" / f"{A}.ipynb", src / sid)
    (src / "s01" / "timestamp.txt").write_text("2026-10-05 18:00:00.123456 UTC")
    r = collect(src, assignment=A, workspace=tmp_path / "ws", roster=LMS / "moodle_roster.csv")
    assert r.layout == "folders" and r.accepted["s01"] == [f"{A}.ipynb"]
    assert r.not_on_roster == [(f"zz99/{A}.ipynb", "student id zz99")]
    assert set(r.missing) == set(read_roster(LMS / "moodle_roster.csv").students) - {"s01"}
    info = _info(tmp_path / "ws")["s01"]
    assert info["submitted_at"] == "2026-10-05T18:00:00.123456+00:00" and info["time_source"] == "nbgrader's timestamp.txt"


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
    times = (["--times", str(CANVAS_TIMES)] if lms == "canvas"
             else ["--times", str(MOODLE_TIMES), "--timezone", "Europe/Zurich"])
    assert cli.main(["collect", str(LMS / f"{lms}_ps1_dsc.zip"), *argv, "--roster", str(LMS / f"{lms}_roster.csv"),
                     *times]) == 0
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "2", "--no-canary", "--timeout-notebook", "240"]) == 0
    assert cli.main(["feedback", *argv]) == 0
    assert cli.main(["export", "--workspace", str(ws), "--output", str(ws / "grades.csv")]) == 0
    fmts = ["canvas", "moodle"] if lms == "canvas" else ["moodle"]
    for fmt in fmts:
        assert cli.main(["export", "--workspace", str(ws), "--assignment", A, "--format", fmt,
                         "--output", str(out / f"{fmt}.csv")]) == 0
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / A).glob("*.json")}
    return lms, ws, results, out


@pytest.mark.slow
def test_statuses_and_penalties(run):
    lms, ws, res, _ = run
    expect = {"s01": "graded", "s03": "graded", "s06": "graded", "s10": "missing", "s16": "broken"}
    expect |= {s: "needs_review" for s in REVIEW}
    if lms == "moodle":
        expect["s15"] = "graded"  # Moodle keeps a second file under another name: the first is graded, with a note
    assert {s: r["status"] for s, r in res.items()} == expect
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
    assert ("Canvas Submissions API" if lms == "canvas" else "Moodle grading worksheet") in late["time_source"]
    ext = res["s06"]["late"]  # 36 h late for everyone else, within its 3 days
    assert utc_delta(S06_AT, DUE) > dt.timedelta(days=1) and ext["extended"]
    assert ext["penalty"] == 0 and ext["score"] == res["s06"]["score"] < 10
    assert res["s10"]["late"]["score"] == 0
    assert "ps1_dsc.py (a Python file, not a notebook)" in res["s11"]["message"]


@pytest.mark.slow
def test_lms_imports(run):
    lms, ws, res, out = run
    review = {s for s, r in res.items() if r["status"] == "needs_review"}
    mrows = list(csv.DictReader((out / "moodle.csv").open()))
    assert list(mrows[0]) == ["ID number", "Email address", "Full name", "PS1 depthwise separable convolutions"]
    moodle = {r["ID number"]: r["PS1 depthwise separable convolutions"] for r in mrows}
    assert set(moodle) == set(read_roster(LMS / f"{lms}_roster.csv").students)  # every roster student, none other
    for s, r in res.items():  # the score that counts, or empty where a person must look first
        assert moodle[s] == ("" if s in review else f"{round(r['late']['score'], 2):g}"), s
    assert float(moodle["s03"]) == pytest.approx(round(res["s03"]["score"] * 0.8, 2))
    assert moodle["s10"] == "0" and moodle["s16"] == "0"
    if lms == "canvas":
        rows = list(csv.reader((out / "canvas.csv").open()))
        assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                           "PS1 depthwise separable convolutions (4101)"]
        assert rows[1][0].strip() == "Points Possible" and float(rows[1][5]) == 10
        by = {r[2]: r for r in rows[2:]}
        assert {s: r[1] for s, r in by.items() if s in ("s01", "s03")} == {"s01": "1001", "s03": "1003"}
        assert {s: r[5] for s, r in by.items()} == moodle
    else:
        assert "s01" in {r["student_id"] for r in csv.DictReader((ws / "grades.csv").open())}
        assert cli.main(["export", "--workspace", str(ws), "--assignment", A, "--format", "canvas",
                         "--output", str(out / "no.csv")]) == 2  # Moodle's ids are no Canvas user ids
    full = {r["student_id"]: r for r in csv.DictReader((ws / "grades.csv").open())}
    assert float(full["s03"]["final_score"]) == pytest.approx(res["s03"]["late"]["score"])
    assert float(full["s03"]["score"]) == res["s03"]["score"]
    assert full["s11"]["status"] == "needs_review" and full["s11"]["final_score"] == ""
    cells = list(csv.DictReader((out / "moodle_cells.csv").open()))
    ran = sum(r["status"] in ("graded", "broken", "timeout") for r in res.values())
    assert cells and all(int(c["submissions"]) == ran for c in cells)  # missing and needs_review ran nothing
    for c in cells:  # the pass counts, recounted from the result files
        passed = sum(r["cells"][c["cell"]]["score"] == r["cells"][c["cell"]]["max_score"]
                     for r in res.values() if r["status"] in ("graded", "broken", "timeout"))
        assert int(c["full_marks"]) == passed
    assert (out / "moodle_cells.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_export_rescales_and_refuses_other_points(run, tmp_path):
    lms, ws, res, _ = run
    if lms == "canvas":
        ta = tmp_path / "ta.csv"  # Canvas says the assignment is worth 20 points
        ta.write_text((LMS / "canvas_roster_ta.csv").read_text().replace(";10,00", ";20,00"))
        copy = tmp_path / "ws"
        shutil.copytree(ws, copy)
        assert cli.main(["collect", str(LMS / "canvas_ps1_dsc.zip"), "--assignment", A, "--workspace", str(copy),
                         "--roster", str(ta), "--times", str(CANVAS_TIMES)]) == 0
        argv = ["export", "--workspace", str(copy), "--assignment", A, "--format", "canvas"]
        assert cli.main([*argv, "--output", str(tmp_path / "c.csv")]) == 2
        assert cli.main([*argv, "--points", "20", "--output", str(tmp_path / "c.csv")]) == 0
        rows = list(csv.reader((tmp_path / "c.csv").open()))
        assert rows[0][:4] == ["Student", "ID", "SIS Login ID", "Section"]  # the TA export's own columns
        by = {r[2]: r for r in rows[2:]}
        assert float(by["s03"][-1]) == pytest.approx(round(res["s03"]["late"]["score"] * 2, 2))
    else:
        sheet = tmp_path / "sheet.csv"
        argv = ["export", "--workspace", str(ws), "--assignment", A, "--format", "moodle-worksheet",
                "--worksheet", str(MOODLE_TIMES), "--output", str(sheet)]
        assert cli.main(argv) == 0
        rows = {r["Identifier"]: r for r in csv.DictReader(sheet.open())}
        assert float(rows["Participant 303"]["Grade"]) == pytest.approx(round(res["s03"]["late"]["score"], 2))
        assert rows["Participant 310"]["Grade"] == "0"   # s10, missing (matched by email: not in the download)
        assert rows["Participant 311"]["Grade"] == ""    # s11, needs review: left for a person
        assert rows["Participant 399"]["Grade"] == ""    # not on the roster: untouched
        assert list(rows["Participant 301"]) == next(csv.reader(MOODLE_TIMES.open()))  # Moodle's columns kept
        assert cli.main(argv[:-2] + ["--points", "100", "--output", str(sheet)]) == 2  # Moodle says out of 10


@pytest.mark.slow
def test_without_lms_times_nobody_gets_a_wrong_late_mark(tmp_path, capsys):
    """The download's zip times (a week after the due time) are not used: Canvas's missing _LATE marker says on
    time; a LATE submission without its time is not graded (error, exit 4) until the times are given."""
    z = tmp_path / "two.zip"
    with zipfile.ZipFile(LMS / "canvas_ps1_dsc.zip") as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            if info.filename.startswith(("doejane", "lovelaceada")):
                dst.writestr(info, src.read(info))
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(LMS / "course.toml", ws / "course.toml")
    argv = ["--assignment", A, "--workspace", str(ws)]
    assert cli.main(["collect", str(z), *argv, "--roster", str(LMS / "canvas_roster.csv")]) == 0
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "2", "--no-canary"]) == 4
    out = capsys.readouterr().out
    assert "s03" in out and "--times" in out
    res = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / A).glob("*.json")}
    assert res["s01"]["status"] == "graded" and res["s01"]["late"]["score"] == 10
    assert "Canvas did not mark it late" in res["s01"]["late"]["reason"]
    assert res["s03"]["status"] == "error"
    assert cli.main(["export", "--workspace", str(ws), "--assignment", A, "--format", "canvas",
                     "--output", str(tmp_path / "c.csv")]) == 0
    by = {r[2]: r[5] for r in list(csv.reader((tmp_path / "c.csv").open()))[2:]}
    assert by["s01"] == "10" and by["s03"] == ""  # nothing sent for s03 until its time is known
    # the times arrive: collect again with them, grade only what changed
    assert cli.main(["collect", str(z), *argv, "--roster", str(LMS / "canvas_roster.csv"),
                     "--times", str(CANVAS_TIMES)]) == 0
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "2", "--no-canary"]) == 0
    s03 = json.loads((ws / "results" / A / "s03.json").read_text())
    assert s03["status"] == "graded" and s03["late"]["days_late"] == 2


@pytest.mark.slow
def test_partial_redownload_regrades_one_and_replace_is_refused_by_grade(run, tmp_path, capsys):
    lms, ws, res, _ = run
    if lms != "canvas":
        pytest.skip("the partial re-download is a Canvas one")
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    argv = ["--assignment", A, "--workspace", str(copy)]
    again = ["collect", str(LMS / "canvas_ps1_dsc_partial.zip"), *argv, "--roster", str(LMS / "canvas_roster.csv"),
             "--times", str(LMS / "canvas_ps1_dsc_submissions_again.json")]
    assert cli.main(again) == 0
    capsys.readouterr()
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "1", "--no-canary"]) == 0
    out = capsys.readouterr().out
    assert "changed  s03" in out and "changed  s01" not in out
    new = json.loads((copy / "results" / A / "s03.json").read_text())
    assert new["score"] == 10 and new["late"]["days_late"] == 3 and new["late"]["score"] == pytest.approx(7)
    assert json.loads((copy / "results" / A / "s01.json").read_text())["score"] == 10
    assert cli.main([*again, "--replace"]) == 0
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "1", "--no-canary"]) == 2
    err = capsys.readouterr().err
    assert "s01 (10/10)" in err and "--accept-withdrawn" in err
    assert json.loads((copy / "results" / A / "s01.json").read_text())["score"] == 10  # nothing was changed
    assert cli.main(["grade", *argv, "--unsafe", "--workers", "1", "--no-canary", "--accept-withdrawn"]) == 0
    assert json.loads((copy / "results" / A / "s01.json").read_text())["status"] == "missing"


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
    from autograder.roster import load_saved
    ids = {s: st.lms_id for s, st in load_saved(ws, A).students.items()}
    # every participant present matched by their id: the roster's ids are this assignment's, s10's too
    assert ids["s01"] == "301" and ids["s10"] == "310"
    # the rule as Moodle applies it: an '_' in the name moves the id out of place, a flat file is not filed
    assert _moodle_files(["Ada_Lovelace_303_assignsubmission_file_/x.html", "x.html"], {"303"}) == {}
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        filed = _moodle_files(names, set(ids.values()))
        assert filed["301"] == [f"{A}.html"] and filed["310"] == [f"{A}_feedback.html"]
        assert set(filed) == set(ids.values())
        assert "Ada Lovelace_303_assignsubmission_file_/" + f"{A}.html" in names  # the download's folder name
        for sid, pid in ids.items():  # each participant gets exactly their own page
            (entry,) = [n for n in names if n.split("_")[1] == pid]
            mine = ws / "feedback" / sid / A
            page = mine / f"{A}.html" if (mine / f"{A}.html").is_file() else mine / "index.html"
            assert zf.read(entry) == page.read_bytes()


@pytest.mark.slow
def test_check_verifies_the_penalty(run, tmp_path):
    _, ws, res, _ = run
    review = {s for s, r in res.items() if r["status"] == "needs_review"}
    problems = check(ws)  # consistent; the students who need a person's review are listed, and only they
    assert {p.split("/")[0] for p in problems} == review and all("needs review" in p for p in problems)
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


def test_canvas_export_of_two_assignments_rescaled(tmp_path):
    """Several assignments in one Canvas import, each rescaled to its Canvas points; the roster's ids checked."""
    from autograder.export import export
    from autograder.files import atomic_write
    from autograder.result import CellResult, StudentResult
    from autograder.result import path_of
    from autograder.roster import save_roster
    (tmp_path / "course.toml").write_text("[assignments.ps1_dsc]\ndue = 2026-10-05T23:59:00Z\ncanvas_id = 4101\n"
                                          "title = 'PS1'\n[assignments.ps2_cost]\ndue = 2026-10-12T23:59:00Z\n"
                                          "canvas_id = 4102\ntitle = 'PS2'\n")
    roster = read_roster(LMS / "canvas_roster.csv")
    scores = {"ps1_dsc": {"s01": 10.0, "s03": 4.0}, "ps2_cost": {"s01": 6.0, "s03": 8.0}}
    for a, by in scores.items():
        save_roster(roster, tmp_path, a)
        info = {s: {"lms": "canvas", "lms_id": roster.students[s].lms_id, "submitted_at": None} for s in by}
        atomic_write(tmp_path / "collect" / f"{a}.students.json", json.dumps(info).encode())
        for s, sc in by.items():
            res = StudentResult(student=s, assignment=a, status="graded",
                                cells={"c": CellResult(notebook=a, score=sc, max_score=10.0)},
                                late={"score": sc, "raw_score": sc, "penalty": 0.0})
            atomic_write(path_of(tmp_path, a, s), res.dumps().encode())
    out = tmp_path / "c.csv"
    with pytest.raises(ValueError, match="one positive number per assignment"):
        export("sqlite://", tmp_path, out, assignment="ps1_dsc,ps2_cost", fmt="canvas", points="20")
    export("sqlite://", tmp_path, out, assignment="ps1_dsc,ps2_cost", fmt="canvas", points="10,20", log=lambda m: None)
    rows = list(csv.reader(out.open()))
    assert rows[0][-2:] == ["PS1 (4101)", "PS2 (4102)"] and rows[1][-2:] == ["10", "20"]
    by = {r[2]: r[-2:] for r in rows[2:]}
    assert by["s01"] == ["10", "12"] and by["s03"] == ["4", "16"] and by["s10"] == ["", ""]
    # Canvas's own export says PS1 is worth 10: exporting it as 20 points is refused
    with pytest.raises(ValueError, match="gives PS1 10 points possible"):
        export("sqlite://", tmp_path, out, assignment="ps1_dsc", fmt="canvas", points="20")


def test_moodle_grading_worksheet_as_the_roster(tmp_path):
    """The worksheet names everyone with this assignment's participant ids; the email is the student id."""
    r = read_roster(MOODLE_TIMES)
    assert r.kind == "moodle-worksheet" and r.students["ada.lovelace@example.edu"].lms_id == "303"
    rep = collect(LMS / "moodle_ps1_dsc.zip", assignment=A, workspace=tmp_path, roster=MOODLE_TIMES,
                  times=MOODLE_TIMES, timezone="Europe/Zurich")
    assert {s for s, nbs in rep.accepted.items() if nbs} >= {"jane.doe@example.edu", "ada.lovelace@example.edu"}
    assert not rep.not_on_roster  # the worksheet lists Bob too
