"""The autograder's nbgrader-metadata check (restore.CheckMetadata) against nbgrader's own
(CheckCellMetadata / MetadataValidator) as the oracle: every cell of every assignment, and each one
tampered with in the ways a submission can, gets the same verdict, with the same error and message."""
from __future__ import annotations

import copy

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import CheckCellMetadata

from autograder.nbgrader_config import SOURCE
from autograder.restore import CheckMetadata, FastMetadataValidator

NOTEBOOKS = sorted(SOURCE.glob("*/*.ipynb"))

TAMPER = {
    "points as text": lambda m: m.update(points="10"),
    "negative points": lambda m: m.update(points=-1),
    "no points": lambda m: m.pop("points", None) if m.get("grade") else m.update(grade=True, points=None),
    "grade as text": lambda m: m.update(grade="yes"),
    "no solution key": lambda m: m.pop("solution", None),
    "locked null": lambda m: m.update(locked=None),
    "empty grade_id": lambda m: m.update(grade_id=""),
    "no grade_id": lambda m: m.pop("grade_id", None),
    "grade_id a number": lambda m: m.update(grade_id=7),
    "extra key": lambda m: m.update(sneaky=True),
    "schema 2": lambda m: m.update(schema_version=2),
    "schema 4": lambda m: m.update(schema_version=4),
    "schema as text": lambda m: m.update(schema_version="3"),
    "no schema": lambda m: m.pop("schema_version", None),
    "task on code": lambda m: m.update(task=True),
    "cell_type changed": lambda m: m.update(cell_type="raw"),
}


def _verdict(validator, cell):
    try:
        validator.validate_cell(cell)
    except Exception as exc:  # noqa: BLE001 - the verdict is the comparison
        return type(exc).__name__, str(exc)
    return None


def _cells():
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if "nbgrader" in cell.metadata:
                yield f"{path.parent.name}:{i}", cell


def test_the_corpus_has_what_it_needs():
    assert len(NOTEBOOKS) >= 9
    kinds = {(c.cell_type, bool(c.metadata.nbgrader.get("grade")), bool(c.metadata.nbgrader.get("solution")),
              bool(c.metadata.nbgrader.get("locked"))) for _, c in _cells()}
    # test cells, answer cells and read-only cells (the course has no markdown answers: the tampering
    # "task on code" and "cell_type changed" cover the markdown rules' branches)
    assert {("code", True, False, True), ("code", False, True, False), ("code", False, False, True)} <= kinds


@pytest.mark.parametrize("how", ["as released", *TAMPER])
def test_each_cell_gets_nbgraders_verdict(how):
    theirs, ours = MetadataValidator(), FastMetadataValidator()
    failures = 0
    for where, cell in _cells():
        cell = copy.deepcopy(cell)
        if how != "as released":
            TAMPER[how](cell.metadata.nbgrader)
        want = _verdict(theirs, cell)
        failures += want is not None
        assert _verdict(ours, cell) == want, where
    if how == "as released":
        assert failures == 0
    elif how not in ("cell_type changed", "no schema"):  # nbgrader warns only, or reads a default
        assert failures > 0, f"{how}: no cell failed, so the comparison proves nothing"


def test_a_notebook_gets_the_same_verdict_and_message():
    nb = nbformat.read(SOURCE / "ps1_dsc" / "ps1_dsc.ipynb", as_version=4)
    for tamper in (None, "duplicate id", "points as text"):
        mine, theirs = copy.deepcopy(nb), copy.deepcopy(nb)
        for x in (mine, theirs):
            graded = [c for c in x.cells if c.metadata.get("nbgrader", {}).get("grade")]
            if tamper == "duplicate id":
                graded[1].metadata.nbgrader.grade_id = graded[0].metadata.nbgrader.grade_id
            elif tamper == "points as text":
                graded[0].metadata.nbgrader.points = "ten"
        outcome = []
        for pp, x in ((CheckCellMetadata(), theirs), (CheckMetadata(), mine)):
            try:
                pp.preprocess(x, {})
                outcome.append(None)
            except Exception as exc:  # noqa: BLE001
                outcome.append((type(exc).__name__, str(exc)))
        assert outcome[0] == outcome[1], tamper
        assert (outcome[0] is None) == (tamper is None)
