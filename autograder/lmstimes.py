"""Submission times from a source that knows them: what the LMS itself records, never a zip entry's time.

An LMS download is no such source: Canvas's "Download Submissions" zip (lib/content_zipper.rb) adds
each file without a time, so every entry carries the moment the zip was made, and Moodle's zip writer
does the same. The files read here do know:

- **Canvas**, the Submissions API's list for one assignment, saved as JSON by the instructor
  (``GET /api/v1/courses/<course>/assignments/<assignment>/submissions?per_page=100``, every page; a
  list of submission objects, or a list of such lists, one per page). Read per object: ``user_id``,
  ``submitted_at`` (ISO 8601, UTC), ``late``, ``assignment_id``, ``workflow_state``.
- **Moodle**, the assignment's offline grading worksheet (Grading action > "Download grading
  worksheet"; the assignment needs the "Offline grading worksheet" feedback type). Read per row:
  ``Identifier`` ("Participant <id>", the same per-assignment id as the download's folder names),
  ``Full name``, ``Email address`` and ``Last modified (submission)``, which Moodle writes with
  ``userdate()`` in the downloading user's time zone and language ("Monday, 5 October 2026, 11:59 PM"
  in English; "-" for none): the zone must be given, and a date in another language is refused.
- **Any LMS**, a plain CSV ``lms_id,submitted_at`` or ``student_id,submitted_at`` with ISO 8601 times
  that carry their offset (``2026-10-05T23:12:00+02:00``).

``read`` returns a ``Times``: per LMS id (or student id) an aware time or None, the source's name,
and for Moodle the names and emails the worksheet gives, which collect uses to match participants.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
import re
import zoneinfo

from .roster import csv_rows, read_text

MOODLE_ID = "Identifier"
MOODLE_SUBMITTED = "Last modified (submission)"
MOODLE_PARTICIPANT = re.compile(r"^\s*Participant\s+(\d+)\s*$")
MOODLE_FORMATS = ("%A, %d %B %Y, %I:%M %p", "%d %B %Y, %I:%M %p", "%A, %d %B %Y, %H:%M", "%d %B %Y, %H:%M")


@dataclasses.dataclass
class Times:
    source: str                                   # e.g. "Canvas Submissions API (canvas.json)"
    kind: str                                     # "canvas", "moodle" or "plain"
    by_lms: dict = dataclasses.field(default_factory=dict)      # lms id -> aware datetime or None
    by_student: dict = dataclasses.field(default_factory=dict)  # course student id -> aware datetime or None
    late: dict = dataclasses.field(default_factory=dict)        # lms id -> the LMS's own "late" (Canvas)
    people: dict = dataclasses.field(default_factory=dict)      # lms id -> (full name, email) (Moodle)
    assignment_ids: set = dataclasses.field(default_factory=set)  # Canvas assignment ids seen in the file


def read(path, timezone: str | None = None) -> Times:
    """The submission times in ``path`` (kind recognised from its content); every error names the file."""
    path = pathlib.Path(path)
    text = read_text(path, "--times")
    if text.lstrip().startswith(("[", "{")):
        return _canvas(path, text)
    return _csv(path, text, timezone)


def _utc(value, where: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise ValueError(f"{where}: {value!r} has no time zone offset")
    return t


def _canvas(path: pathlib.Path, text: str) -> Times:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--times: {path} is not valid JSON ({exc})") from None
    items = data if isinstance(data, list) else [data]
    flat = []
    for item in items:  # one list per page, or one list
        flat.extend(item if isinstance(item, list) else [item])
    out = Times(f"Canvas Submissions API ({path.name})", "canvas")
    for i, sub in enumerate(flat):
        where = f"--times: {path}, submission #{i + 1}"
        if not isinstance(sub, dict) or "user_id" not in sub or "submitted_at" not in sub:
            raise ValueError(f"{where}: not a Canvas submission object (needs user_id and submitted_at; save the "
                             "Submissions API's answer as it comes)")
        uid = str(sub["user_id"])
        if uid in out.by_lms:
            raise ValueError(f"{where}: user {uid} appears twice (two assignments' lists in one file?)")
        when = _utc(sub["submitted_at"], f"{where} (user {uid})")
        if sub.get("workflow_state") == "unsubmitted":
            when = None
        out.by_lms[uid] = when
        out.late[uid] = bool(sub.get("late"))
        if sub.get("assignment_id") is not None:
            out.assignment_ids.add(str(sub["assignment_id"]))
    if not out.by_lms:
        raise ValueError(f"--times: {path} holds no submission")
    return out


def moodle_time(text: str, tz: zoneinfo.ZoneInfo, where: str) -> dt.datetime | None:
    """A Moodle ``userdate()`` as the worksheet writes it, read in the downloading user's zone ``tz``."""
    t = " ".join(text.split())
    if t in ("", "-"):
        return None
    for fmt in MOODLE_FORMATS:
        try:
            return dt.datetime.strptime(t, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    try:
        iso = dt.datetime.fromisoformat(t)
        return iso if iso.tzinfo else iso.replace(tzinfo=tz)
    except ValueError:
        pass
    raise ValueError(f"{where}: {text!r} is not a date Moodle writes in English (e.g. 'Monday, 5 October 2026, "
                     "11:59 PM'): download the worksheet with your Moodle language set to English")


def _csv(path: pathlib.Path, text: str, timezone: str | None) -> Times:
    rows = csv_rows(text)
    if not rows:
        raise ValueError(f"--times: {path} is empty")
    header = [h.strip() for h in rows[0]]
    col = {h: i for i, h in enumerate(header)}

    def get(row, name):
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    if MOODLE_ID in col and MOODLE_SUBMITTED in col:
        if not timezone:
            raise ValueError(f"--times: {path} is a Moodle grading worksheet, whose times are in the time zone of "
                             "the person who downloaded it: pass --timezone (e.g. Europe/Zurich)")
        tz = zoneinfo.ZoneInfo(timezone)
        out = Times(f"Moodle grading worksheet ({path.name}), read as {timezone}", "moodle")
        for n, row in enumerate(rows[1:], 2):
            if not any(c.strip() for c in row):
                continue
            where = f"--times: {path}, line {n}"
            m = MOODLE_PARTICIPANT.match(get(row, MOODLE_ID))
            if not m:
                raise ValueError(f"{where}: Identifier {get(row, MOODLE_ID)!r} is not 'Participant <id>' (an "
                                 "anonymous or non-English worksheet?)")
            pid = m.group(1)
            if pid in out.by_lms:
                raise ValueError(f"{where}: Participant {pid} appears twice")
            out.by_lms[pid] = moodle_time(get(row, MOODLE_SUBMITTED), tz, where)
            out.people[pid] = (get(row, "Full name"), get(row, "Email address"))
        return out
    key = "lms_id" if "lms_id" in col else "student_id" if "student_id" in col else None
    if key is None or "submitted_at" not in col:
        raise ValueError(f"--times: {path}: header {','.join(header)!r} is none of: Canvas's Submissions API JSON, "
                         "Moodle's grading worksheet (Identifier, ..., Last modified (submission)), "
                         "lms_id,submitted_at or student_id,submitted_at")
    out = Times(f"submission times ({path.name})", "plain")
    target = out.by_lms if key == "lms_id" else out.by_student
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        who = get(row, key)
        if who in target:
            raise ValueError(f"--times: {path}, line {n}: {key} {who} appears twice")
        target[who] = _utc(get(row, "submitted_at"), f"--times: {path}, line {n}")
    return out
