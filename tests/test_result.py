"""The per-student result record (autograder/result.py): its file round-trips, its score is the sum
of its cells, and a file that is not a record of this schema is refused naming the file."""
from __future__ import annotations

import json
import pickle

import pytest

from autograder import result
from autograder.check import check
from autograder.result import SCHEMA, CellResult, ResultFileError, StudentResult, grader_error

CELL_POINTS = [(1.5, 2.0), (0.0, 3.0), (None, 1.0), (0.25, 0.25)]  # (score, max): None awaits a person


def _record(**kw) -> StudentResult:
    cells = {f"t{i}": CellResult(notebook="nb", score=s, max_score=m, reason="" if s == m else f"lost {i}")
             for i, (s, m) in enumerate(CELL_POINTS)}
    base = dict(student="s01", assignment="ps0", status="graded", cells=cells, message="restored test cells: nb:t1",
                comments={"answer": "No response.", "task": None}, restored=("nb:t1",), discarded=(),
                flags=("nb: calls get_ipython",), hidden_tests={"nb": {"where": "grader", "requests": 3}},
                execute_s=1.25, total_s=2.5, submission_sha="ab" * 32, source_sha="cd" * 32, grader=2,
                late={"score": 1.0, "raw_score": 1.75, "penalty": 0.4, "reason": "1 day late"},
                history=({"score": 0.5, "status": "broken"},))
    return StudentResult(**{**base, **kw})


def test_score_is_the_sum_of_the_cells():
    rec = _record()
    assert rec.score == sum(s or 0.0 for s, _ in CELL_POINTS) == 1.75
    assert rec.max_score == sum(m for _, m in CELL_POINTS)
    assert rec.final_score == 1.0  # the late record's
    assert _record(late=None).final_score == rec.score
    assert grader_error("s", "a", "boom").score == 0.0 and grader_error("s", "a", "boom").status == "error"


def test_file_round_trip(tmp_path):
    rec = _record()
    path = result.path_of(tmp_path, "ps0", "s01")
    path.parent.mkdir(parents=True)
    path.write_text(rec.dumps())
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["score"] == 1.75 and data["max_score"] == 6.25
    assert StudentResult.read(path) == rec
    assert result.load(tmp_path) == {("ps0", "s01"): rec}
    assert pickle.loads(pickle.dumps(rec)) == rec  # what a worker process sends the grader
    assert rec["cells"]["t0"]["score"] == 1.5 and rec.get("late")["penalty"] == 0.4  # the JSON view


def test_a_file_from_before_the_schema_is_read_as_it(tmp_path):
    """The grader before the record wrote the same fields without ``schema``: such a workspace keeps its
    grades (nothing is regraded); the same file with a wrong total is still refused."""
    rec = _record()
    data = {k: v for k, v in rec.to_json().items() if k != "schema"}
    path = result.path_of(tmp_path, "ps0", "s01")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    assert StudentResult.read(path) == rec
    path.write_text(json.dumps({**data, "score": data["score"] + 1}))
    with pytest.raises(ResultFileError, match="not the sum of its cells"):
        StudentResult.read(path)


@pytest.mark.parametrize("edit, words", [
    (lambda d: "{not json", "unreadable result file (JSONDecodeError"),
    (lambda d: json.dumps([d]), "not a result record (a JSON list"),
    (lambda d: json.dumps({**d, "schema": SCHEMA + 1}), f"schema {SCHEMA + 1}; this grader reads schema {SCHEMA}"),
    (lambda d: json.dumps({k: v for k, v in d.items() if k != "student"}), "missing field 'student'"),
    (lambda d: json.dumps({**d, "status": "passed"}), "status 'passed' is not one of graded"),
    (lambda d: json.dumps({**d, "cells": {"t0": {**d["cells"]["t0"], "score": "1.5"}}}), "cell t0: score '1.5'"),
    (lambda d: json.dumps({**d, "score": d["score"] + 1}), "score 2.75 is not the sum of its cells' (1.75)"),
])
def test_malformed_file_is_refused_naming_it(tmp_path, edit, words):
    path = result.path_of(tmp_path, "ps0", "s01")
    path.parent.mkdir(parents=True)
    path.write_text(edit(_record().to_json()))
    with pytest.raises(ResultFileError) as info:
        StudentResult.read(path)
    assert str(info.value).startswith(f"{path}: ") and words in str(info.value), str(info.value)
    with pytest.raises(ResultFileError):
        result.load(tmp_path)
    errors = []
    assert result.load(tmp_path, errors=errors) == {} and [str(e) for e in errors] == [str(info.value)]
    # check reports it, naming the file relative to the workspace, and reads no further
    (tmp_path / "submitted" / "s01" / "ps0").mkdir(parents=True)
    problems = check(tmp_path)
    assert f"results/ps0/s01.json: {str(info.value).split(': ', 1)[1]}" in problems, problems
