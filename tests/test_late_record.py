"""The typed late record (autograder/result.py LateRecord): result files written before it existed, in
the JSON shape the grader has always written, load into it and are written back key for key; a late
record that is not one is refused naming the field; course.verdict and course.with_late build it."""
from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from autograder import course, result
from autograder.result import LateRecord, PolicyRecord, ResultFileError, StudentResult

POLICY = {"cap": 0.3, "grace": 900.0, "missing_time": "error", "not_accepted_after": 604800.0, "per_day": 0.1}
NO_TIME = ("no submission time is known (zip and file times are not submission times): collect again with --times "
           "(Canvas's Submissions API list or Moodle's grading worksheet), or set missing_time in course.toml")
# The late objects course.apply wrote before the typed record (copied from its output for TOML below), one
# per shape: a late submission with the time's source, an unknown time (error), a student who submitted
# nothing (no policy), an extension.
SHAPES = {
    "late": {"accepted": True, "days_late": 2, "due": "2026-10-05T23:59:00+02:00", "extended": False,
             "late_by_s": 127860.0, "penalty": 0.2, "policy": POLICY, "raw_score": 8.0,
             "reason": "submitted 1 d 11 h 31 min after the due time: 2 day(s) late x 10% = 20% off", "score": 6.4,
             "submitted_at": "2026-10-07T09:30:00+00:00", "time_source": "Canvas Submissions API (subs.json)"},
    "no_time": {"accepted": True, "days_late": 0, "due": "2026-10-05T23:59:00+02:00", "error": NO_TIME,
                "extended": False, "late_by_s": None, "penalty": 0.0, "policy": POLICY, "raw_score": 10.0,
                "reason": NO_TIME, "score": 10.0, "submitted_at": None},
    "missing": {"accepted": True, "days_late": 0, "due": "2026-10-05T23:59:00+02:00", "extended": False,
                "late_by_s": None, "penalty": 0.0, "raw_score": 0.0, "reason": "not submitted", "score": 0.0,
                "submitted_at": None},
    "extended": {"accepted": True, "days_late": 0, "due": "2026-10-08T23:59:00+02:00", "extended": True,
                 "late_by_s": -215940.0, "penalty": 0.0, "policy": POLICY, "raw_score": 6.5,
                 "reason": "on time (extended to 2026-10-08T23:59:00+02:00)", "score": 6.5,
                 "submitted_at": "2026-10-06T10:00:00+00:00"},
}
TOML = """[late]
per_day = 0.10
cap = 0.30
grace_minutes = 15
not_accepted_after_days = 7
[assignments.ps1_dsc]
due = 2026-10-05T23:59:00+02:00
[assignments.ps1_dsc.extensions]
s03 = "3d"
"""
INFO = {"s01": {"submitted_at": "2026-10-07T09:30:00+00:00", "time_source": "Canvas Submissions API (subs.json)",
                "lms_late": True},
        "s02": {"submitted_at": None, "lms_late": False}, "s03": {"submitted_at": "2026-10-06T10:00:00+00:00"}}


def result_file(late: dict, score: float = 8.0, status: str = "graded") -> dict:
    """A whole result file as the grader wrote it before the typed late record (schema 1)."""
    return {"schema": 1, "student": "s01", "assignment": "ps1_dsc", "status": status, "score": score,
            "max_score": 10.0, "message": "",
            "cells": {"t1": {"notebook": "ps1_dsc", "score": score, "max_score": 10.0, "reason": ""}},
            "comments": {"answer": None}, "restored": [], "discarded": [], "flags": [],
            "hidden_tests": {"ps1_dsc": {"where": "grader", "requests": 2}}, "execute_s": 1.5, "total_s": 2.25,
            "submission_sha": "ab" * 32, "source_sha": "cd" * 32, "grader": 2, "history": [], "late": late}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_todays_json_loads_typed_and_round_trips_key_for_key(shape):
    data = copy.deepcopy(SHAPES[shape])
    rec = LateRecord.from_json(data)
    assert rec.to_json() == data and json.dumps(rec.to_json(), sort_keys=True) == json.dumps(data, sort_keys=True)
    assert LateRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert (rec.score, rec.raw_score, rec.penalty, rec.days_late) == (data["score"], data["raw_score"],
                                                                     data["penalty"], data["days_late"])
    assert rec.policy == (None if "policy" not in data else PolicyRecord(0.1, 0.3, 900.0, 604800.0, "error"))
    assert rec.error == data.get("error") and rec.time_source == data.get("time_source")
    assert rec["reason"] == data["reason"] and rec.get("policy") == data.get("policy")  # the JSON view
    assert ("error" in rec) == ("error" in data)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_result_file_on_disk_loads_and_is_written_back_the_same(tmp_path, shape):
    score = SHAPES[shape]["raw_score"]
    data = result_file(SHAPES[shape], score=score, status="missing" if shape == "missing" else "graded")
    path = result.path_of(tmp_path, "ps1_dsc", "s01")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
    rec = StudentResult.read(path)
    assert isinstance(rec.late, LateRecord)
    assert rec.final_score == SHAPES[shape]["score"]
    assert json.loads(rec.dumps()) == data  # rewriting a kept result changes no key
    assert rec["late"] == SHAPES[shape] and rec.get("late")["score"] == SHAPES[shape]["score"]


def test_a_file_without_a_late_record_has_none():
    data = result_file(SHAPES["late"])
    del data["late"]
    rec = StudentResult.from_json(data)
    assert rec.late is None and rec.final_score == rec.score == 8.0 and "late" not in rec.to_json()


@pytest.mark.parametrize("change, field", [
    ({"score": "6.4"}, "score"), ({"score": None}, "score"), ({"raw_score": True}, "raw_score"),
    ({"days_late": 2.0}, "days_late"), ({"accepted": "yes"}, "accepted"), ({"policy": {"cap": 0.3}}, "per_day"),
    ({"policy": [0.1]}, "policy"), ({"reason": 3}, "reason"),
])
def test_a_late_record_that_is_not_one_is_refused_naming_the_field(change, field):
    data = result_file({**SHAPES["late"], **change})
    with pytest.raises(ResultFileError, match=rf"s01\.json: not a valid result record \(late record: .*{field}"):
        StudentResult.from_json(data, "s01.json")


def test_a_late_record_that_is_no_object_is_refused():
    with pytest.raises(ResultFileError, match=r"s01\.json: not a valid result record \(late is a list\)"):
        StudentResult.from_json({**result_file(SHAPES["late"]), "late": [1]}, "s01.json")


def test_a_mapping_given_to_the_record_is_typed():
    """A script (or an older caller) that builds a StudentResult with the late record's JSON gets the record."""
    res = StudentResult(student="s", assignment="a", status="graded", late={"score": 1.0, "raw_score": 2.0})
    assert res.late == LateRecord(score=1.0, raw_score=2.0) and res.final_score == 1.0


def test_verdict_and_with_late_build_the_typed_record_that_the_stored_one_equals(tmp_path):
    """course.verdict returns a LateRecord; with_late puts it into a StudentResult; a record stored and
    read back equals the recomputed one, so a kept result is not rewritten (grade.refreshed) and check
    sees no stale record."""
    c = course.parse(TOML)
    a = c.assignments["ps1_dsc"]
    v = course.verdict(a, "s01", 8.0, dt.datetime(2026, 10, 7, 9, 30, tzinfo=dt.timezone.utc))
    assert isinstance(v, LateRecord) and v.days_late == 2 and v.score == pytest.approx(6.4)
    (tmp_path / "course.toml").write_text(TOML)
    for student, shape, status, score in (("s01", "late", "graded", 8.0), ("s02", "no_time", "graded", 10.0),
                                          ("s04", "missing", "missing", 0.0), ("s03", "extended", "graded", 6.5)):
        res = StudentResult.from_json({**result_file(None, score=score, status=status), "student": student})
        new = course.with_late(tmp_path, res, c, INFO)
        assert new.late == LateRecord.from_json(SHAPES[shape]) and new.late.to_json() == SHAPES[shape]
        assert new.status == ("error" if shape == "no_time" else status)
        assert (new.message == NO_TIME) == (shape == "no_time")
        again = StudentResult.from_json(json.loads(new.dumps()))
        assert again == new
        if new.status != "error":  # (an error is graded again, not re-dated: with_late gives it no record)
            assert course.with_late(tmp_path, again, None, INFO).late == again.late
    gone = course.with_late(tmp_path, StudentResult(student="s", assignment="ps9", status="graded"), c, INFO)
    assert gone.late is None
