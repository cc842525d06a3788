"""One student's grading result: the typed record that grade builds and every later step reads.

``grade`` builds a :class:`StudentResult` per student (``job.grade_one`` in a worker, completed by
the parent with the digests and the late record), writes the gradebook from it and stores it as
``results/<assignment>/<student>.json`` (:meth:`StudentResult.to_json`). ``feedback``, ``export``
and ``check`` read those files back with :meth:`StudentResult.from_json` / :func:`load`, never the
raw JSON: the score is one number, the sum of the cells' scores (:attr:`StudentResult.score`), and
the score that counts is :attr:`StudentResult.final_score` (the late record's, if any). The late
record is a :class:`LateRecord` (``course.verdict`` makes it), with the policy it applied as a
:class:`PolicyRecord`.

The file format is the record's fields as JSON, with ``schema`` (:data:`SCHEMA`), ``score`` and
``max_score`` written out for the people and scripts that read the files. A file that is not valid
JSON, lacks a field, holds a wrong type, a score that is not the sum of its cells, or another schema
version is refused with :class:`ResultFileError`, naming the file. A file without ``schema`` (written
before the record existed, with the same fields) is read as schema 1 when it passes those checks.

For scripts written against the files, ``rec["score"]``, ``rec.get("late")`` and friends read the
record as its file gives it (the JSON view), and so do ``late["score"]``, ``late.get("reason")`` and
``"error" in late`` on a :class:`LateRecord`; code in this package uses the attributes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Mapping

SCHEMA = 1  # bump when the file format changes; a file of another version is refused (grade again)
STATUSES = ("graded", "broken", "timeout", "missing", "needs_review", "error")
# graded: the notebook ran; broken: the submission could not run to the end (unreadable, tampered
# metadata, dead kernel, too much output); timeout: stopped at the wall-time limit; missing: not
# submitted; needs_review: handed in something collect could not take as the notebook (a .py, a
# misnamed notebook, two at once): scored 0 in the gradebook but never exported as a mark; error: the grader failed (nothing recorded in the gradebook; graded again next run).
RAN = ("graded", "broken", "timeout")  # statuses whose cells ran: class statistics count only these
TOL = 1e-6  # how far a stored total may be from the sum of its cells (float sums)


class ResultFileError(ValueError):
    """A result file cannot be read as a :class:`StudentResult`; the message names the file and why."""


@dataclasses.dataclass(frozen=True)
class CellResult:
    """One grade cell: its notebook, the points it got (None: needs a person) out of ``max_score``, and why."""

    notebook: str
    score: float | None
    max_score: float
    reason: str = ""

    @property
    def full_marks(self) -> bool:
        return self.score is not None and self.score >= self.max_score

    def to_json(self) -> dict:
        return {"notebook": self.notebook, "score": self.score, "max_score": self.max_score, "reason": self.reason}

    @classmethod
    def from_json(cls, data) -> "CellResult":
        if not isinstance(data, Mapping):
            raise TypeError(f"a cell is {type(data).__name__}, not an object")
        score = data.get("score")
        if score is not None and not _number(score):
            raise TypeError(f"score {score!r} is not a number")
        if not _number(data.get("max_score")):
            raise TypeError(f"max_score {data.get('max_score')!r} is not a number")
        return cls(notebook=_str(data, "notebook"), score=None if score is None else float(score),
                   max_score=float(data["max_score"]), reason=data.get("reason") or "")


@dataclasses.dataclass(frozen=True)
class PolicyRecord:
    """The late policy a :class:`LateRecord` applied (``course.Policy`` as the record keeps it: durations
    in seconds), so that ``check`` can redo its arithmetic without the course file."""

    per_day: float  # fraction of the score lost per started day late
    cap: float  # the most a late submission can lose (fraction)
    grace: float  # seconds after the due time that still count as on time
    not_accepted_after: float | None  # seconds after the due time past which the score is 0; None: never
    missing_time: str  # what a submission with no known time gets: "error", "late" or "on_time"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data) -> "PolicyRecord":
        if not isinstance(data, Mapping):
            raise TypeError(f"policy is a {type(data).__name__}, not an object")
        after = data.get("not_accepted_after")
        return cls(per_day=_num(data, "per_day"), cap=_num(data, "cap"), grace=_num(data, "grace"),
                   not_accepted_after=None if after is None else _num(data, "not_accepted_after"),
                   missing_time=_str(data, "missing_time"))


@dataclasses.dataclass(frozen=True)
class LateRecord:
    """One submission against its due time (``course.verdict``): the score that counts and why.

    Its JSON form is the ``late`` object of a result file, key for key as the grader has always
    written it: every field below, except ``policy``, ``error`` and ``time_source``, which are
    written only when set (a missing submission's record has no policy). Frozen: build it with the
    constructor, change it with :func:`dataclasses.replace`."""

    score: float  # the score that counts: raw_score after the penalty
    raw_score: float  # the tests' score (the result's; 0 for a student who submitted nothing)
    penalty: float = 0.0  # the fraction of raw_score lost (1.0 when not accepted)
    reason: str = ""  # why, in words for the learner and the instructor
    due: str | None = None  # the due time that applied (the student's extension, if any), ISO 8601
    extended: bool = False  # the student has an extension
    submitted_at: str | None = None  # ISO 8601; None when not known, or nothing was submitted
    late_by_s: float | None = None  # seconds after the due time (negative: early); None without a time
    days_late: int = 0  # started 24-hour periods after the due time plus grace
    accepted: bool = True  # False: later than the policy's not_accepted_after (scored 0)
    policy: PolicyRecord | None = None  # the policy applied; None for a missing submission
    error: str | None = None  # no verdict possible (no submission time): the result's status is error
    time_source: str | None = None  # where submitted_at came from (collect's record), when known

    _KEYS = ("due", "extended", "submitted_at", "late_by_s", "days_late", "penalty", "accepted", "raw_score",
             "score", "reason")  # always written; policy, error and time_source only when set

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self._KEYS}
        if self.policy is not None:
            out["policy"] = self.policy.to_json()
        for key in ("error", "time_source"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, data) -> "LateRecord":
        """The record of a result file's ``late`` object; TypeError or KeyError (naming the field) if it is
        not one. Only ``score`` and ``raw_score`` are required; the others default as above."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a {type(data).__name__}, not an object")
        kw = {"score": _num(data, "score"), "raw_score": _num(data, "raw_score")}
        for key, kind in (("penalty", "number"), ("late_by_s", "number"), ("days_late", int),
                          ("extended", bool), ("accepted", bool), ("reason", str), ("due", str),
                          ("submitted_at", str), ("error", str), ("time_source", str)):
            if data.get(key) is None:
                continue  # the default (a null submitted_at, late_by_s or due is the default too)
            if kind == "number":
                kw[key] = _num(data, key)
            elif not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool)):
                raise TypeError(f"{key} {data[key]!r} is not {'an' if kind is int else 'a'} {kind.__name__}")
            else:
                kw[key] = data[key]
        if data.get("policy") is not None:
            kw["policy"] = PolicyRecord.from_json(data["policy"])
        return cls(**kw)

    # the JSON view, for scripts (and the course's tests, written against verdict's dict)
    def __getitem__(self, key: str):
        return self.to_json()[key]

    def get(self, key: str, default=None):
        return self.to_json().get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.to_json()


@dataclasses.dataclass(frozen=True)
class StudentResult:
    """Everything grading one student's submission produced. Build it with :func:`grader_error` or the
    constructor; change it with :func:`dataclasses.replace` (it is frozen)."""

    student: str
    assignment: str
    status: str  # one of STATUSES
    cells: Mapping[str, CellResult] = dataclasses.field(default_factory=dict)  # grade_id -> result
    message: str = ""  # for the instructor and the learner: why the status, what was restored or discarded
    comments: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # answer cell -> auto comment
    restored: tuple[str, ...] = ()   # "<notebook>:<grade_id>" of test cells put back (deleted by the learner)
    discarded: tuple[str, ...] = ()  # "<notebook>:<grade_id>" of read-only cells whose edits were discarded
    flags: tuple[str, ...] = ()      # for a person to read (autograder/flags.py); change no score
    hidden_tests: Mapping[str, dict] = dataclasses.field(default_factory=dict)  # notebook -> where they ran
    execute_s: float = 0.0  # seconds executing the notebooks
    total_s: float | None = None  # seconds for the whole student in the worker
    traceback: str | None = None  # the grader's traceback (status error)
    submission_sha: str | None = None  # set when the parent commits the result
    source_sha: str | None = None
    grader: int | None = None  # grade.GRADER_VERSION that produced it
    late: LateRecord | None = None  # course.verdict's record: the score that counts and why (None: no due time)
    history: tuple[Mapping, ...] = ()  # earlier {"score", "status"} of this student, oldest first

    def __post_init__(self):
        if isinstance(self.late, Mapping):  # the record's JSON form (a script, an older caller): typed here
            object.__setattr__(self, "late", LateRecord.from_json(self.late))
        if self.status not in STATUSES:
            raise ValueError(f"result of {self.student}/{self.assignment}: status {self.status!r} is not one of "
                             f"{', '.join(STATUSES)}")

    # ------------------------------------------------------------- derived numbers: one place each
    @property
    def score(self) -> float:
        """The raw score: the sum of the cells' scores (a cell awaiting a person counts 0)."""
        return math.fsum(c.score or 0.0 for c in self.cells.values())

    @property
    def max_score(self) -> float:
        return math.fsum(c.max_score for c in self.cells.values())

    @property
    def final_score(self) -> float:
        """The score that counts: the late record's (penalised) when there is one, else the raw score."""
        return float(self.late.score) if self.late is not None else self.score

    @property
    def ran(self) -> bool:
        """Its notebooks ran (graded, broken or timeout): its cells say something about the class."""
        return self.status in RAN

    # ------------------------------------------------------------- the file
    def to_json(self) -> dict:
        """The record as the result file holds it (with ``schema``, ``score`` and ``max_score``)."""
        out = {"schema": SCHEMA, "student": self.student, "assignment": self.assignment, "status": self.status,
               "score": self.score, "max_score": self.max_score, "message": self.message,
               "cells": {g: c.to_json() for g, c in self.cells.items()}, "comments": dict(self.comments),
               "restored": list(self.restored), "discarded": list(self.discarded), "flags": list(self.flags),
               "hidden_tests": dict(self.hidden_tests), "execute_s": self.execute_s,
               "submission_sha": self.submission_sha, "source_sha": self.source_sha, "grader": self.grader,
               "history": [dict(h) for h in self.history]}
        if self.total_s is not None:  # a grader error has none (scripts read r.get("total_s", 0.0))
            out["total_s"] = self.total_s
        if self.traceback is not None:
            out["traceback"] = self.traceback
        if self.late is not None:
            out["late"] = self.late.to_json()
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, data, where: str = "result") -> "StudentResult":
        """The record of a result file's JSON object; ResultFileError naming ``where`` if it is not one."""
        if not isinstance(data, Mapping):
            raise ResultFileError(f"{where}: not a result record (a JSON {type(data).__name__}, not an object)")
        schema = data.get("schema")
        # A file without a schema was written by the grader before the record existed: same fields,
        # read as schema 1 when they pass the checks below (a workspace graded then is not regraded).
        if schema is not None and schema != SCHEMA:
            raise ResultFileError(f"{where}: schema {schema!r}; this grader reads schema {SCHEMA}. Grade again "
                                  "(`python -m autograder grade --regrade`) to rewrite it")
        try:
            cells = {}
            for gid, c in _field(data, "cells", Mapping).items():
                try:
                    cells[gid] = CellResult.from_json(c)
                except (TypeError, KeyError) as exc:
                    raise TypeError(f"cell {gid}: {exc}") from None
            late = _field(data, "late", Mapping, None)
            try:
                late = None if late is None else LateRecord.from_json(late)
            except (TypeError, KeyError) as exc:
                what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise TypeError(f"late record: {what}") from None
            rec = cls(student=_str(data, "student"), assignment=_str(data, "assignment"),
                      status=_str(data, "status"), cells=cells, message=data.get("message") or "",
                      comments=dict(_field(data, "comments", Mapping, {})),
                      restored=tuple(_field(data, "restored", list, [])),
                      discarded=tuple(_field(data, "discarded", list, [])),
                      flags=tuple(_field(data, "flags", list, [])),
                      hidden_tests=dict(_field(data, "hidden_tests", Mapping, {})),
                      execute_s=float(data.get("execute_s") or 0.0),
                      total_s=None if data.get("total_s") is None else float(data["total_s"]),
                      traceback=data.get("traceback"), submission_sha=data.get("submission_sha"),
                      source_sha=data.get("source_sha"), grader=data.get("grader"),
                      late=late,
                      history=tuple(_field(data, "history", list, [])))
        except (TypeError, KeyError, ValueError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ResultFileError(f"{where}: not a valid result record ({what})") from None
        for key, value in (("score", rec.score), ("max_score", rec.max_score)):
            stored = data.get(key)
            if not _number(stored) or not math.isclose(float(stored), value, abs_tol=TOL):
                raise ResultFileError(f"{where}: {key} {stored!r} is not the sum of its cells' ({value:g})")
        return rec

    @classmethod
    def read(cls, path, name: str | None = None) -> "StudentResult":
        """The record in the result file ``path``; ResultFileError naming the file (as ``name``, if given)
        if it cannot be read."""
        path = pathlib.Path(path)
        name = name or str(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ResultFileError(f"{name}: unreadable result file ({type(exc).__name__}: {exc})") from None
        return cls.from_json(data, name)

    # ------------------------------------------------------------- the JSON view, for scripts
    def __getitem__(self, key: str):
        return self.to_json()[key]

    def get(self, key: str, default=None):
        return self.to_json().get(key, default)


def grader_error(student: str, assignment: str, message: str, traceback: str | None = None) -> StudentResult:
    """The result of a student the grader failed on (status error): nothing scored, graded again next run."""
    return StudentResult(student=student, assignment=assignment, status="error", message=message,
                         traceback=traceback)


def path_of(workspace, assignment: str, student: str) -> pathlib.Path:
    """Where a student's result file lives: ``<workspace>/results/<assignment>/<student>.json``."""
    return pathlib.Path(workspace) / "results" / assignment / f"{student}.json"


def load(workspace, assignment: str | None = None, errors: list | None = None) -> dict[tuple[str, str], StudentResult]:
    """Every stored result, keyed by (assignment, student). A file that cannot be read raises
    ResultFileError, or, with an ``errors`` list, is appended to it (the exception) and skipped."""
    out = {}
    root = pathlib.Path(workspace) / "results"
    for path in sorted(root.glob(f"{assignment or '*'}/*.json")):
        try:
            rec = StudentResult.read(path)
        except ResultFileError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        out[(rec.assignment, rec.student)] = rec
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(data: Mapping, key: str) -> float:
    v = data[key]
    if not _number(v):
        raise TypeError(f"{key} {v!r} is not a number")
    return v


def _str(data: Mapping, key: str) -> str:
    v = data[key]
    if not isinstance(v, str):
        raise TypeError(f"{key} {v!r} is not a string")
    return v


_MISSING = object()


def _field(data: Mapping, key: str, kind, default=_MISSING):
    if key not in data or data[key] is None:
        if default is _MISSING:
            raise KeyError(key)
        return default
    v = data[key]
    if not isinstance(v, kind):
        raise TypeError(f"{key} is a {type(v).__name__}")
    return v
