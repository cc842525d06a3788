"""The late policy of autograder/course.py: due times with zones, grace, per-day penalty, cap,
extensions, not-accepted-after, missing times, and the errors of a bad course file.

The expected values are worked out by hand from the rule in the module's docstring (started
24-hour periods after due + grace, penalty = min(cap, per_day x days), score x (1 - penalty)),
with the elapsed time taken from datetime arithmetic on UTC instants, not from the module.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from autograder import course

UTC = dt.timezone.utc
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

TOML = """
[late]
per_day = 0.1
cap = 0.3
grace_minutes = 15
not_accepted_after_days = 7

[assignments.ps1_dsc]
due = 2026-10-05T23:59:00+02:00
title = "PS1"
canvas_id = 4242

[assignments.ps1_dsc.extensions]
s03 = 2026-10-08T23:59:00+02:00
s07 = "2d"

[assignments.ps2_cost]
due = 2026-03-28T12:00:00
timezone = "Europe/Berlin"
late = { per_day = 0.25, cap = 1.0, grace_minutes = 0, missing_time = "error" }
"""


@pytest.fixture
def c():
    return course.parse(TOML, "course.toml")


def utc(*a):
    return dt.datetime(*a, tzinfo=UTC)


def test_on_time_and_grace(c):
    a = c.assignments["ps1_dsc"]
    assert a.due == utc(2026, 10, 5, 21, 59)
    on_time = course.verdict(a, "s01", 8.0, utc(2026, 10, 5, 21, 0))
    assert (on_time["penalty"], on_time["score"], on_time["days_late"]) == (0.0, 8.0, 0)
    grace = course.verdict(a, "s01", 8.0, utc(2026, 10, 5, 22, 14))  # 15 min late: within grace
    assert grace["score"] == 8.0 and "grace" in grace["reason"]
    past = course.verdict(a, "s01", 8.0, utc(2026, 10, 5, 22, 15))  # 16 min late: 1 started day
    assert past["days_late"] == 1 and past["penalty"] == pytest.approx(0.1)
    assert past["score"] == pytest.approx(7.2)
    assert past["late_by_s"] == 16 * 60


def test_days_are_started_periods_after_grace(c):
    a = c.assignments["ps1_dsc"]
    due = a.due
    # exactly 24 h + 15 min late: one day; one second more: two
    assert course.verdict(a, "x", 10, due + dt.timedelta(hours=24, minutes=15))["days_late"] == 1
    assert course.verdict(a, "x", 10, due + dt.timedelta(hours=24, minutes=15, seconds=1))["days_late"] == 2


def test_cap(c):
    a = c.assignments["ps1_dsc"]
    r = course.verdict(a, "x", 10.0, a.due + dt.timedelta(days=5))  # 5 d - 15 min grace: 5 started days, 50% > cap 30%
    assert r["days_late"] == 5 and r["penalty"] == pytest.approx(0.3) and r["score"] == pytest.approx(7.0)
    assert "cap" in r["reason"]


def test_not_accepted_after(c):
    a = c.assignments["ps1_dsc"]
    r = course.verdict(a, "x", 10.0, a.due + dt.timedelta(days=7, seconds=1))
    assert (r["accepted"], r["score"], r["penalty"]) == (False, 0.0, 1.0)
    ok = course.verdict(a, "x", 10.0, a.due + dt.timedelta(days=7))
    assert ok["accepted"] and ok["score"] == pytest.approx(7.0)


def test_extensions_by_date_and_by_days(c):
    a = c.assignments["ps1_dsc"]
    late_for_others = utc(2026, 10, 7, 12, 0)
    assert course.verdict(a, "s01", 10.0, late_for_others)["days_late"] == 2
    ext = course.verdict(a, "s03", 10.0, late_for_others)
    assert ext["extended"] and ext["score"] == 10.0 and ext["due"] == "2026-10-08T23:59:00+02:00"
    assert a.due_for("s07") == a.due + dt.timedelta(days=2)
    r = course.verdict(a, "s07", 10.0, a.due + dt.timedelta(days=2, hours=1))  # 1 h past the extension
    assert r["days_late"] == 1 and r["score"] == pytest.approx(9.0)


def test_local_due_time_and_dst_boundary(c):
    """Berlin moves to summer time on 2026-03-29 at 02:00. Due Sat 28 March 12:00 CET (11:00 UTC); a
    submission on Sun 29 March at 12:30 CEST (10:30 UTC) is 23 h 30 min late by the clock on the wall
    minus the lost hour: one started day, not two."""
    a = c.assignments["ps2_cost"]
    assert a.due == utc(2026, 3, 28, 11, 0)
    sub = dt.datetime(2026, 3, 29, 12, 30, tzinfo=BERLIN)
    r = course.verdict(a, "x", 4.0, sub)
    assert r["late_by_s"] == (23 * 60 + 30) * 60
    assert r["days_late"] == 1 and r["score"] == pytest.approx(3.0)
    # 13:30 CEST on the 29th is 24 h 30 min of elapsed time: two started days
    r2 = course.verdict(a, "x", 4.0, dt.datetime(2026, 3, 29, 13, 30, tzinfo=BERLIN))
    assert r2["days_late"] == 2 and r2["score"] == pytest.approx(2.0)


def test_missing_time_policies(c):
    # default missing_time = "error": an unknown time neither costs nor spares anyone; it stops that student
    err = course.verdict(c.assignments["ps1_dsc"], "x", 10.0, None)
    assert "error" in err and "--times" in err["error"]
    assert "error" in course.verdict(c.assignments["ps2_cost"], "x", 10.0, None)
    late = course.verdict(course.parse(TOML.replace("not_accepted_after_days = 7", "missing_time = \"late\""))
                          .assignments["ps1_dsc"], "x", 10.0, None)
    assert late["penalty"] == pytest.approx(0.3) and late["score"] == pytest.approx(7.0)
    # Canvas's missing _LATE marker: on time, whatever missing_time says; its LATE marker alone decides nothing
    r = course.verdict(c.assignments["ps1_dsc"], "x", 10.0, None, lms_on_time=True)
    assert r["score"] == 10.0 and "did not mark it late" in r["reason"]
    assert "error" in course.verdict(c.assignments["ps1_dsc"], "x", 10.0, None, lms_late=True)
    on_time = course.parse(TOML.replace("not_accepted_after_days = 7", "missing_time = \"on_time\""))
    r = course.verdict(on_time.assignments["ps1_dsc"], "x", 10.0, None)
    assert r["score"] == 10.0 and "on time" in r["reason"]
    # ... but never when the LMS itself marked the submission late
    r = course.verdict(on_time.assignments["ps1_dsc"], "x", 10.0, None, lms_late=True)
    assert r["score"] == pytest.approx(7.0)


def test_apply_to_result(tmp_path):
    (tmp_path / "course.toml").write_text(TOML)
    (tmp_path / "collect").mkdir()
    (tmp_path / "collect" / "ps2_cost.students.json").write_text('{"s01": {"submitted_at": null}}')
    res = course.apply(tmp_path, {"student": "s01", "assignment": "ps2_cost", "status": "graded", "score": 3.0})
    assert res["status"] == "error" and "missing_time" in res["message"]
    res = course.apply(tmp_path, {"student": "s02", "assignment": "ps9", "status": "graded", "score": 3.0})
    assert "late" not in res and res["score"] == 3.0
    res = course.apply(tmp_path, {"student": "s02", "assignment": "ps1_dsc", "status": "missing", "score": 0.0})
    assert res["late"]["reason"] == "not submitted"


@pytest.mark.parametrize("bad, line, words", [
    ("[assignments.a]\ndue = 2026-13-05T23:59:00+02:00\n", 2, "not valid TOML"),
    ("[assignments.a]\ntitle = 'x'\ndue = \"yesterday\"\n", 3, "not a date"),
    ("[assignments.a]\ndue = 2026-10-05\n", 2, "no time of day"),
    ("[assignments.a]\ndue = 2026-10-05T23:59:00\n", 2, "no time zone"),
    ("[assignments.a]\ndue = 2026-10-05T23:59:00\ntimezone = \"Mars/Olympus\"\n", 3, "no IANA"),
    ("[late]\nper_day = 10\n", 2, "fraction"),
    ("[late]\nmissing_time = \"maybe\"\n", 2, "missing_time"),
    ("[assignments.a]\ndue = 2026-10-05T23:59:00Z\n[assignments.a.extensions]\ns1 = 2026-10-01T00:00:00Z\n", 4, "before"),
    ("[assignments.a]\ndue = 2026-10-05T23:59:00Z\n[assignments.a.extensions]\ns1 = \"soon\"\n", 4, "duration"),
    ("[assignments.a]\ndue = 2026-10-05T23:59:00Z\ndeadline = 1\n", 3, "unknown key"),
])
def test_bad_course_file_names_file_and_line(bad, line, words):
    with pytest.raises(course.CourseError) as e:
        course.parse(bad, "ws/course.toml")
    msg = str(e.value)
    assert msg.startswith("ws/course.toml") and f"line {line}" in msg and words in msg, msg
