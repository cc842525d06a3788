"""A class roster: who is in the class, under which course id, and under which LMS id.

Two CSV forms are read (UTF-8, a BOM allowed), recognised by their header:
  - Canvas's gradebook export (Grades > Export): ``Student,ID,SIS User ID,SIS Login ID,Section,...``.
    The course's student id is the SIS User ID (else the SIS Login ID); the LMS id is Canvas's user
    ``ID``, the number in its submission file names. The "Points Possible" row is skipped, and so is a
    row with neither SIS id (Canvas's "Test Student"), with a note.
  - a plain table ``student_id,name[,lms_id][,email][,section]``; ``lms_id`` is Canvas's user id or
    Moodle's participant id (the number in Moodle's submission folder names).
Every error names the file and the line: a missing column, an empty or invalid id, a student id or
an LMS id that appears twice.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
import re

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")  # as collect accepts a folder name
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
SAVED = "roster.json"  # collect keeps the roster it used in the workspace, for export


@dataclasses.dataclass
class Student:
    student_id: str
    name: str = ""
    lms_id: str = ""
    sis_login: str = ""
    section: str = ""
    email: str = ""
    line: int = 0


@dataclasses.dataclass
class Roster:
    path: str
    kind: str  # "canvas" or "plain"
    students: dict  # student_id -> Student, in file order
    notes: list = dataclasses.field(default_factory=list)

    def by_lms_id(self) -> dict:
        return {s.lms_id: s for s in self.students.values() if s.lms_id}

    def by_name(self, name: str) -> list:
        """Roster students whose name is ``name`` (case and spacing aside; Canvas's "Last, First" too)."""
        want = _norm(name)
        return [s for s in self.students.values() if want in _names(s.name)]


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def _names(name: str) -> set:
    out = {_norm(name)}
    if "," in name:  # Canvas writes "Doe, Jane"; Moodle's folder says "Jane Doe"
        last, first = name.split(",", 1)
        out.add(_norm(f"{first} {last}"))
    return out


def read_roster(path) -> Roster:
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"roster: {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"roster: {path} is not UTF-8 text ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ValueError(f"roster: {path} is empty")
    header = [h.strip() for h in rows[0]]
    if all(h in header for h in CANVAS_HEADER[:3]):
        kind = "canvas"
    elif "student_id" in header:
        kind = "plain"
    else:
        raise ValueError(f"roster: {path}, line 1: header {','.join(header)!r} is neither Canvas's gradebook export "
                         f"({','.join(CANVAS_HEADER)},...) nor student_id,name[,lms_id][,email]")
    col = {h: i for i, h in enumerate(header)}
    roster = Roster(str(path), kind, {})
    seen_lms: dict[str, int] = {}
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue

        def get(name, row=row):
            i = col.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        if kind == "canvas":
            if get("Student") == "Points Possible" or get("Student").startswith("Points Possible"):
                continue
            sid = get("SIS User ID") or get("SIS Login ID")
            if not sid:
                roster.notes.append(f"{path}, line {n}: {get('Student')!r} has no SIS User ID or SIS Login ID "
                                    "(Canvas's test student?); skipped")
                continue
            s = Student(sid, get("Student"), get("ID"), get("SIS Login ID"), get("Section"), "", n)
        else:
            sid = get("student_id")
            s = Student(sid, get("name"), get("lms_id"), "", get("section"), get("email"), n)
        if not STUDENT_ID.match(sid):
            raise ValueError(f"roster: {path}, line {n}: student id {sid!r} is not an id "
                             "(letters, digits, _.@+-, starting with a letter or digit)")
        if sid in roster.students:
            raise ValueError(f"roster: {path}, line {n}: student id {sid} appears twice "
                             f"(first on line {roster.students[sid].line})")
        if s.lms_id:
            if s.lms_id in seen_lms:
                raise ValueError(f"roster: {path}, line {n}: LMS id {s.lms_id} appears twice "
                                 f"(first on line {seen_lms[s.lms_id]})")
            seen_lms[s.lms_id] = n
        roster.students[sid] = s
    if not roster.students:
        raise ValueError(f"roster: {path} lists no student")
    return roster


def save_roster(roster: Roster, workspace) -> pathlib.Path:
    from .grade import atomic_write
    out = pathlib.Path(workspace) / SAVED
    data = {"path": roster.path, "kind": roster.kind,
            "students": [dataclasses.asdict(s) for s in roster.students.values()]}
    atomic_write(out, json.dumps(data, indent=1).encode())
    return out


def load_saved(workspace) -> Roster | None:
    """The roster collect used for this workspace, or None."""
    path = pathlib.Path(workspace) / SAVED
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Roster(data["path"], data["kind"], {s["student_id"]: Student(**s) for s in data["students"]})
