"""Deadlines, late work and extensions: the course file ``<workspace>/course.toml`` and its arithmetic.

Pure: nothing here grades, reads a gradebook or knows a notebook. ``load`` reads the course file
(every error names the file and the line), ``verdict`` turns (raw score, submission time, student)
into the recorded late record (an autograder.result.LateRecord), and ``with_late`` puts that record into
an autograder.result.StudentResult (``apply``: into a result's JSON form).

    [late]                        # the course's default policy (every key optional)
    per_day = 0.10                # fraction of the score lost per started day late (24 h of elapsed time)
    cap = 0.50                    # the most a late submission can lose (fraction)
    grace_minutes = 15            # up to this late counts as on time
    not_accepted_after_days = 7   # later than this after the due time: not accepted (score 0)
    missing_time = "error"        # a submission with no known time: "error" (not graded until a time is
                                  # given: the default), "late" (the cap), "on_time"

    [assignments.ps1_dsc]
    due = 2026-10-05T23:59:00+02:00   # with an offset, or a local time plus timezone = "Europe/Zurich"
    timezone = "Europe/Zurich"
    title = "PS1 depthwise separable"  # the LMS's name of the assignment (export)
    canvas_id = 1234                   # Canvas's assignment id (export --format canvas)
    late = { per_day = 0.2 }           # overrides of the default policy for this assignment

    [assignments.ps1_dsc.extensions]   # per student: a new due time, or extra days
    s03 = 2026-10-08T23:59:00+02:00
    s07 = "3d"

    [watch]                       # grading as submissions arrive (python -m autograder watch)
    before_due = "visible"        # what a learner's feedback shows before the (extended) due time:
                                  # "visible" (the visible checks' outcomes, no score), "score" (the
                                  # score only), "full" (the whole page); after it, always "full"
    per_day = 3                   # gradings per learner and assignment per calendar day (in the
                                  # assignment's time zone, else UTC); 0: no limit
    # an assignment may override either: [assignments.ps1_dsc] watch = { per_day = 5 }

Without a [watch] section, ``watch`` shows the visible checks only and grades three times a day, so
that nobody can learn the hidden checks by resubmitting.

A late submission keeps ``(1 - penalty)`` of its raw score, with ``penalty = min(cap, per_day x
days)`` and ``days`` the number of started 24-hour periods after the (extended) due time plus grace.
Times are compared as instants, so a daylight-saving change between due time and submission
neither adds nor removes an hour.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import pathlib
import re
import tomllib
import zoneinfo

from .result import LateRecord, PolicyRecord, StudentResult

COURSE_FILE = "course.toml"
DAY = dt.timedelta(days=1)
MISSING_TIME = ("late", "on_time", "error")
POLICY_KEYS = {"per_day", "cap", "grace_minutes", "not_accepted_after_days", "missing_time"}
ASSIGNMENT_KEYS = {"due", "timezone", "title", "canvas_id", "late", "extensions", "watch"}
BEFORE_DUE = ("visible", "score", "full")
WATCH_KEYS = {"before_due", "per_day"}


class CourseError(ValueError):
    """The course file is wrong; the message names the file and, where known, the line."""


@dataclasses.dataclass(frozen=True)
class Policy:
    per_day: float = 0.0
    cap: float = 1.0
    grace: dt.timedelta = dt.timedelta(0)
    not_accepted_after: dt.timedelta | None = None
    missing_time: str = "error"  # an unknown time never silently costs (or spares) anyone


@dataclasses.dataclass(frozen=True)
class WatchPolicy:
    """What ``watch`` shows a learner before the due time, and how often it grades one a day."""

    before_due: str = "visible"
    per_day: int = 3  # 0: no limit


@dataclasses.dataclass(frozen=True)
class Assignment:
    id: str
    due: dt.datetime                      # timezone-aware
    policy: Policy
    extensions: dict = dataclasses.field(default_factory=dict)  # student -> aware datetime
    title: str | None = None
    canvas_id: int | None = None
    watch: WatchPolicy = WatchPolicy()

    def due_for(self, student: str) -> dt.datetime:
        return self.extensions.get(student, self.due)


@dataclasses.dataclass(frozen=True)
class Course:
    path: pathlib.Path
    assignments: dict  # id -> Assignment
    watch: WatchPolicy = WatchPolicy()  # the course's default (an assignment's own is in Assignment.watch)


def _line(text: str, pattern: str) -> int | None:
    """1-based line of the first line matching ``pattern`` (a regex), if any."""
    for i, line in enumerate(text.splitlines(), 1):
        if re.search(pattern, line):
            return i
    return None


def _where(path, text: str, key: str) -> str:
    n = _line(text, rf"^\s*\"?{re.escape(key)}\"?\s*=") if key else None
    return f"{path}, line {n}" if n else f"{path}"


def _aware(value, tz: zoneinfo.ZoneInfo | None, what: str, where: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise CourseError(f"{where}: {what} = {value!r} is not a date and time "
                              "(write e.g. 2026-10-05T23:59:00+02:00)") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        raise CourseError(f"{where}: {what} = {value} has no time of day (write e.g. {value}T23:59:00+02:00)")
    if not isinstance(value, dt.datetime):
        raise CourseError(f"{where}: {what} = {value!r} is not a date and time")
    if value.tzinfo is None:
        if tz is None:
            raise CourseError(f"{where}: {what} = {value.isoformat()} has no time zone: add an offset "
                              "(+02:00) or a timezone = \"Region/City\" key to the assignment")
        value = value.replace(tzinfo=tz)
    return value


def _duration(value, what: str, where: str) -> dt.timedelta:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.timedelta(days=value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dh])\s*", str(value))
    if not m:
        raise CourseError(f"{where}: {what} = {value!r}: expected a due time or a duration like \"3d\" or \"12h\"")
    n = float(m.group(1))
    return dt.timedelta(days=n) if m.group(2) == "d" else dt.timedelta(hours=n)


def _policy(table: dict, base: Policy, path, text: str) -> Policy:
    unknown = set(table) - POLICY_KEYS
    if unknown:
        k = sorted(unknown)[0]
        raise CourseError(f"{_where(path, text, k)}: unknown late-policy key {k!r} (known: {', '.join(sorted(POLICY_KEYS))})")
    kw = {}
    for key in ("per_day", "cap"):
        if key in table:
            v = table[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise CourseError(f"{_where(path, text, key)}: {key} = {v!r} must be a fraction between 0 and 1")
            kw[key] = float(v)
    if "grace_minutes" in table:
        v = table["grace_minutes"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise CourseError(f"{_where(path, text, 'grace_minutes')}: grace_minutes = {v!r} must be >= 0")
        kw["grace"] = dt.timedelta(minutes=v)
    if "not_accepted_after_days" in table:
        v = table["not_accepted_after_days"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise CourseError(f"{_where(path, text, 'not_accepted_after_days')}: not_accepted_after_days = {v!r} must be >= 0")
        kw["not_accepted_after"] = dt.timedelta(days=v)
    if "missing_time" in table:
        v = table["missing_time"]
        if v not in MISSING_TIME:
            raise CourseError(f"{_where(path, text, 'missing_time')}: missing_time = {v!r}: one of {', '.join(MISSING_TIME)}")
        kw["missing_time"] = v
    return dataclasses.replace(base, **kw)


def _watch(table, base: WatchPolicy, path, text: str) -> WatchPolicy:
    if not isinstance(table, dict):
        raise CourseError(f"{_where(path, text, 'watch')}: watch must be a table (before_due, per_day)")
    bad = set(table) - WATCH_KEYS
    if bad:
        k = sorted(bad)[0]
        raise CourseError(f"{_where(path, text, k)}: unknown key {k!r} in watch (known: before_due, per_day)")
    kw = {}
    if "before_due" in table:
        v = table["before_due"]
        if v not in BEFORE_DUE:
            raise CourseError(f"{_where(path, text, 'before_due')}: before_due = {v!r}: one of {', '.join(BEFORE_DUE)}")
        kw["before_due"] = v
    if "per_day" in table:
        v = table["per_day"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CourseError(f"{_where(path, text, 'per_day')}: watch's per_day = {v!r}: a whole number of gradings "
                              "a day, 0 for no limit")
        kw["per_day"] = v
    return dataclasses.replace(base, **kw)


def parse(text: str, path="course.toml") -> Course:
    """Parse the course file's text; every error names ``path`` and the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise CourseError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"late", "assignments", "watch"}
    if unknown:
        k = sorted(unknown)[0]
        raise CourseError(f"{path}, line {_line(text, re.escape(k)) or '?'}: unknown section {k!r} "
                          "(expected [late], [watch], [assignments.<id>])")
    base = _policy(data.get("late", {}), Policy(), path, text)
    watch = _watch(data.get("watch", {}), WatchPolicy(), path, text)
    out = {}
    for aid, a in data.get("assignments", {}).items():
        header = r"^\s*\[assignments\." + re.escape(aid) + r"\]"
        head = f"{path}, line {_line(text, header) or '?'}"
        if not isinstance(a, dict):
            raise CourseError(f"{head}: assignments.{aid} must be a table")
        bad = set(a) - ASSIGNMENT_KEYS
        if bad:
            k = sorted(bad)[0]
            raise CourseError(f"{_where(path, text, k)}: unknown key {k!r} in assignments.{aid} "
                              f"(known: {', '.join(sorted(ASSIGNMENT_KEYS))})")
        tz = None
        if "timezone" in a:
            try:
                tz = zoneinfo.ZoneInfo(str(a["timezone"]))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise CourseError(f"{_where(path, text, 'timezone')}: timezone = {a['timezone']!r} is no IANA "
                                  "time zone (e.g. \"Europe/Zurich\")") from None
        if "due" not in a:
            raise CourseError(f"{head}: assignments.{aid} has no due time")
        due = _aware(a["due"], tz, f"assignments.{aid}.due", _where(path, text, "due"))
        ext = {}
        for student, v in a.get("extensions", {}).items():
            where = _where(path, text, student)
            if isinstance(v, (dt.datetime, dt.date)) or (isinstance(v, str) and re.match(r"\d{4}-", v)):
                ext[student] = _aware(v, tz, f"extension of {student}", where)
            else:
                ext[student] = due + _duration(v, f"extension of {student}", where)
            if ext[student] < due:
                raise CourseError(f"{where}: the extension of {student} ({ext[student].isoformat()}) is before "
                                  f"the due time ({due.isoformat()})")
        canvas_id = a.get("canvas_id")
        if canvas_id is not None and (isinstance(canvas_id, bool) or not isinstance(canvas_id, int)):
            raise CourseError(f"{_where(path, text, 'canvas_id')}: canvas_id = {canvas_id!r} must be an integer")
        out[aid] = Assignment(aid, due, _policy(a.get("late", {}), base, path, text), ext,
                              a.get("title"), canvas_id, _watch(a.get("watch", {}), watch, path, text))
    return Course(pathlib.Path(path), out, watch)


def load(workspace) -> Course | None:
    """The workspace's course file, or None when it has none (then no deadline applies)."""
    path = pathlib.Path(workspace) / COURSE_FILE
    if not path.is_file():
        return None
    return parse(path.read_text(encoding="utf-8"), path)


def days_late(late_by: dt.timedelta, grace: dt.timedelta) -> int:
    """Started 24-hour periods late, after the grace period (0: on time)."""
    if late_by <= grace:
        return 0
    return math.ceil((late_by - grace) / DAY)


def verdict(a: Assignment, student: str, raw: float, submitted_at: dt.datetime | None,
            lms_late: bool = False, lms_on_time: bool = False) -> LateRecord:
    """The late record of one submission: times, lateness, penalty, the raw and the penalised score, why.

    ``lms_on_time``: no time is known, but the LMS saw the submission on time (Canvas: no _LATE marker)."""
    p = a.policy
    due = a.due_for(student)
    rec = LateRecord(score=raw, raw_score=raw, due=due.isoformat(), extended=student in a.extensions,
                     submitted_at=submitted_at.isoformat() if submitted_at else None,
                     policy=PolicyRecord(per_day=p.per_day, cap=p.cap, grace=p.grace.total_seconds(),
                                         not_accepted_after=None if p.not_accepted_after is None
                                         else p.not_accepted_after.total_seconds(), missing_time=p.missing_time))
    if submitted_at is None:
        if lms_on_time and not lms_late:  # (course.toml's due time should be Canvas's, as the how-to says)
            return dataclasses.replace(rec, reason="on time (Canvas did not mark it late; its exact time is not known)")
        if p.missing_time == "error":
            error = ("no submission time is known (" + ("the LMS marked it late, but not by how much"
                     if lms_late else "zip and file times are not submission times") + "): collect again "
                     "with --times (Canvas's Submissions API list or Moodle's grading worksheet), or set "
                     "missing_time in course.toml")
            return dataclasses.replace(rec, error=error, reason=error)
        if p.missing_time == "on_time" and not lms_late:
            return dataclasses.replace(rec, reason="no submission time is known; course.toml says to treat it as on time")
        penalty = p.cap if p.per_day > 0 else 0.0
        why = "the LMS marked it late" if lms_late else "course.toml says missing_time = \"late\""
        return dataclasses.replace(rec, penalty=penalty, score=round(raw * (1 - penalty), 6),
                                   reason=f"no submission time is known and {why}: the largest late penalty "
                                          f"applies ({penalty:.0%})")
    if submitted_at.tzinfo is None:
        raise ValueError(f"submission time {submitted_at.isoformat()} of {student} has no time zone")
    # as UTC instants: two datetimes sharing one tzinfo subtract as wall-clock times (DST hours lost)
    late_by = submitted_at.astimezone(dt.timezone.utc) - due.astimezone(dt.timezone.utc)
    rec = dataclasses.replace(rec, late_by_s=late_by.total_seconds())
    ext = f" (extended to {due.isoformat()})" if rec.extended else ""
    if p.not_accepted_after is not None and late_by > p.not_accepted_after:
        return dataclasses.replace(rec, accepted=False, penalty=1.0, score=0.0, days_late=days_late(late_by, p.grace),
                                   reason=f"submitted {_human(late_by)} after the due time{ext}; late work is not "
                                          f"accepted after {_human(p.not_accepted_after)}: scored 0")
    n = days_late(late_by, p.grace)
    if n == 0:
        return dataclasses.replace(rec, reason=("on time" + ext if late_by <= dt.timedelta(0) else
                                                f"within the grace period ({_human(late_by)} after the due time{ext})"))
    penalty = min(p.cap, p.per_day * n)
    capped = " (the cap)" if p.per_day * n > p.cap else ""
    return dataclasses.replace(rec, days_late=n, penalty=penalty, score=round(raw * (1 - penalty), 6),
                               reason=f"submitted {_human(late_by)} after the due time{ext}: {n} day(s) late x "
                                      f"{p.per_day:.0%} = {penalty:.0%} off{capped}")


def _human(d: dt.timedelta) -> str:
    s = int(round(d.total_seconds()))
    days, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    parts = [f"{days} d"] if days else []
    if h or days:
        parts.append(f"{h} h")
    parts.append(f"{m} min")
    return " ".join(parts)


# ---------------------------------------------------------------- the workspace side

def submissions_file(workspace, assignment: str) -> pathlib.Path:
    """Where collect keeps per-student submission metadata (time, LMS ids, files)."""
    return pathlib.Path(workspace) / "collect" / f"{assignment}.students.json"


def submission_info(workspace, assignment: str) -> dict:
    path = submissions_file(workspace, assignment)
    return json.loads(path.read_text()) if path.is_file() else {}


def late_record(a: Assignment, student: str, status: str, raw: float | None, meta: dict) -> LateRecord:
    """The late record of ``student``'s result of status ``status`` (not error) and raw score ``raw``;
    ``meta``: what collect recorded of the submission (its time, where that came from, the LMS's marks)."""
    if status in ("missing", "needs_review"):
        return LateRecord(due=a.due_for(student).isoformat(), raw_score=0.0, score=0.0,
                          extended=student in a.extensions,
                          reason="not submitted" if status == "missing" else "handed in, not gradable yet")
    when = meta.get("submitted_at")
    rec = verdict(a, student, float(raw or 0.0), dt.datetime.fromisoformat(when) if when else None,
                  bool(meta.get("lms_late")), bool(meta.get("lms_on_time")))
    if meta.get("time_source"):
        rec = dataclasses.replace(rec, time_source=meta["time_source"])
    return rec


def with_late(ws, res: StudentResult, course: Course | None = None, info: dict | None = None) -> StudentResult:
    """``res`` with its late record from the course file: the score that counts and why. ``course``: the
    parsed course file (None: the workspace's); ``info``: collect's submission records (None: the
    workspace's). An assignment without a due time, or a result of status error, gets none; a
    submission time course.toml cannot do without makes the result the grader's error (retried)."""
    course = load(ws) if course is None else course
    if course is None or res.assignment not in course.assignments or res.status == "error":
        return dataclasses.replace(res, late=None)
    a = course.assignments[res.assignment]
    info = submission_info(ws, a.id) if info is None else info
    rec = late_record(a, res.student, res.status, res.score, info.get(res.student, {}))
    if rec.error:
        return dataclasses.replace(res, status="error", late=rec,
                                   message="; ".join(m for m in (res.message, rec.error) if m))
    return dataclasses.replace(res, late=rec)


def apply(workspace, res: dict, course: Course | None = None, info: dict | None = None) -> dict:
    """``with_late`` for a result's JSON form: put the late record's JSON into ``res`` (in place) under
    "late"; an assignment without a due time gets none.

    ``res["score"]`` stays the raw score (the gradebook's); ``res["late"]["score"]`` is what counts.
    A missing time with missing_time = "error" makes the result status "error" (retried next run).
    """
    course = load(workspace) if course is None else course
    res.pop("late", None)
    if course is None or res.get("assignment") not in course.assignments or res.get("status") == "error":
        return res
    a = course.assignments[res["assignment"]]
    if info is None:
        info = submission_info(workspace, a.id)
    rec = late_record(a, res["student"], res.get("status"), res.get("score"), info.get(res["student"], {}))
    if rec.error:
        res["status"] = "error"
        res["message"] = "; ".join(m for m in (res.get("message"), rec.error) if m)
    res["late"] = rec.to_json()
    return res
