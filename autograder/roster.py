"""A class roster: who is in the class, under which course id, and under which LMS id.

Two CSV forms are read (UTF-8, a BOM allowed, ``,`` or ``;`` between fields), recognised by their header:
  - Canvas's gradebook export (Grades > Export), in each form Canvas writes it (lib/gradebook_exporter.rb):
    ``Student`` or ``LastName,FirstName`` (a course setting), ``ID``, ``SIS User ID`` (only for a user
    allowed to see SIS data: a TA often gets no such column), ``SIS Login ID``, optional ``Integration ID``
    and ``Root Account``, ``Section``, then one column per assignment ``<title> (<assignment id>)``. Canvas
    writes ``;`` between fields for users whose locale or setting asks for it.
    The course's student id is the SIS User ID (else the SIS Login ID); the LMS id is Canvas's user
    ``ID``, the number in its submission file names. The "Points Possible" row gives each assignment's
    points (kept: export checks them), the row Canvas adds for hidden (manually posted) grades and a
    row with neither SIS id (Canvas's "Test Student") are skipped, with a note.
  - a plain table ``student_id,name[,lms_id][,email][,section]``; ``lms_id`` is Canvas's user id or
    Moodle's participant id (the number in Moodle's submission folder names).
  - Moodle's offline grading worksheet of the assignment (``Identifier,Full name,...``): the student id
    is its ``ID number`` column (shown where the site lists that identity field), else the
    ``Email address``; the LMS id is the participant id of ``Participant <id>``, this assignment's only.
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
    sis_user: str = ""  # Canvas's SIS User ID, when the export had that column


@dataclasses.dataclass
class Roster:
    path: str
    kind: str  # "canvas" or "plain"
    students: dict  # student_id -> Student, in file order
    notes: list = dataclasses.field(default_factory=list)
    columns: tuple = ()  # Canvas: the identity columns of the export, in order (export writes the same)
    points: dict = dataclasses.field(default_factory=dict)  # Canvas: assignment id -> Points Possible

    def by_lms_id(self) -> dict:
        return {s.lms_id: s for s in self.students.values() if s.lms_id}

    def by_name(self, name: str) -> list:
        """Roster students whose name is ``name`` (case and spacing aside; Canvas's "Last, First" too)."""
        want = _norm(name)
        return [s for s in self.students.values() if want in _names(s.name)]


def _norm(name: str) -> str:
    """A name compared as a person reads it: case, spacing and '_' aside (Moodle's download folder
    names write a name's '_' and a roster may keep it)."""
    return " ".join(name.replace("_", " ").lower().split())


def _names(name: str) -> set:
    out = {_norm(name)}
    if "," in name:  # Canvas writes "Doe, Jane"; Moodle's folder says "Jane Doe"
        last, first = name.split(",", 1)
        out.add(_norm(f"{first} {last}"))
    return out


CANVAS_IDENTITY = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Integration ID",
                   "Root Account", "Section")
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*) \((?P<id>\d+)\)$")


def csv_rows(text: str) -> list[list[str]]:
    """CSV rows, with the separator Canvas or a spreadsheet used (',' or ';'), read from the header line."""
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return list(csv.reader(text.splitlines(), delimiter=delimiter))


def _number(text: str) -> float | None:
    """A Canvas number as its export writes it ('10.00', or '10,00' where the locale uses a decimal comma)."""
    t = text.strip().replace(" ", "")
    if re.fullmatch(r"\d+,\d+", t):
        t = t.replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return None


def read_text(path: pathlib.Path, what: str) -> str:
    """A file from outside (an LMS export) as text: UTF-8, a BOM allowed; errors name ``what`` and the file."""
    if not path.is_file():
        raise ValueError(f"{what}: {path} does not exist")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what}: {path} is not UTF-8 text ({exc})") from None


def read_roster(path) -> Roster:
    path = pathlib.Path(path)
    text = read_text(path, "roster")
    rows = csv_rows(text)
    if not rows:
        raise ValueError(f"roster: {path} is empty")
    header = [h.strip() for h in rows[0]]
    if "ID" in header and "SIS Login ID" in header and ("Student" in header or
                                                         ("LastName" in header and "FirstName" in header)):
        kind = "canvas"
    elif "student_id" in header:
        kind = "plain"
    elif "Identifier" in header and "Full name" in header:
        kind = "moodle-worksheet"
        if "ID number" not in header and "Email address" not in header:
            raise ValueError(f"roster: {path}: this Moodle grading worksheet shows neither ID number nor Email "
                             "address, so it names no student id: use a student_id,name,email roster")
    else:
        raise ValueError(f"roster: {path}, line 1: header {','.join(header)!r} is neither Canvas's gradebook export "
                         f"({','.join(CANVAS_HEADER)},... or LastName,FirstName,ID,SIS Login ID,...) "
                         "nor student_id,name[,lms_id][,email]")
    col = {h: i for i, h in enumerate(header)}
    roster = Roster(str(path), kind, {})
    if kind == "canvas":
        roster.columns = tuple(h for h in header if h in CANVAS_IDENTITY)
        if "SIS User ID" not in header:
            roster.notes.append(f"{path}: no SIS User ID column (an export by someone without permission to see "
                                "SIS data): students are known by their SIS Login ID")
    seen_lms: dict[str, int] = {}
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue

        def get(name, row=row):
            i = col.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        if kind == "canvas":
            name = get("Student") if "Student" in col else ", ".join(x for x in (get("LastName"), get("FirstName")) if x)
            first = row[0].strip() if row else ""
            if first.startswith("Points Possible"):
                for h, i in col.items():
                    m = CANVAS_ASSIGNMENT.match(h)
                    if m and i < len(row) and _number(row[i]) is not None:
                        roster.points[m["id"]] = _number(row[i])
                continue
            if not get("ID"):  # the row Canvas adds above Points Possible when grades are posted manually
                roster.notes.append(f"{path}, line {n}: a row without a Canvas user ID (Canvas's posting row); skipped")
                continue
            sid = get("SIS User ID") or get("SIS Login ID")
            if not sid:
                roster.notes.append(f"{path}, line {n}: {name!r} has no SIS User ID or SIS Login ID "
                                    "(Canvas's test student?); skipped")
                continue
            s = Student(sid, name, get("ID"), get("SIS Login ID"), get("Section"), "", n, get("SIS User ID"))
            if not s.lms_id.isdigit():
                raise ValueError(f"roster: {path}, line {n}: Canvas user ID {s.lms_id!r} is not a number")
        elif kind == "moodle-worksheet":
            m = re.match(r"^\s*Participant\s+(\d+)\s*$", get("Identifier"))
            if not m:
                raise ValueError(f"roster: {path}, line {n}: Identifier {get('Identifier')!r} is not "
                                 "'Participant <id>'")
            sid = get("ID number") or get("Email address")
            if not sid:
                roster.notes.append(f"{path}, line {n}: {get('Full name')!r} has no ID number or email; skipped")
                continue
            s = Student(sid, get("Full name"), m.group(1), "", "", get("Email address"), n)
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


def _saved_path(workspace, assignment: str | None) -> pathlib.Path:
    ws = pathlib.Path(workspace)
    return ws / SAVED if assignment is None else ws / "rosters" / f"{assignment}.json"


def save_roster(roster: Roster, workspace, assignment: str | None = None) -> pathlib.Path:
    """Keep the roster collect used, per assignment: Moodle's participant ids differ from one
    assignment to the next (assign_user_mapping), so one file for all would give every earlier
    assignment the newest one's ids."""
    from .files import atomic_write
    out = _saved_path(workspace, assignment)
    data = {"path": roster.path, "kind": roster.kind, "columns": list(roster.columns), "points": roster.points,
            "students": [dataclasses.asdict(s) for s in roster.students.values()]}
    atomic_write(out, json.dumps(data, indent=1).encode())
    return out


def load_saved(workspace, assignment: str | None = None) -> Roster | None:
    """The roster collect used for ``assignment`` in this workspace, or None. A workspace collected by an
    earlier version has one ``roster.json`` for all assignments: it is read when the assignment has none."""
    path = _saved_path(workspace, assignment)
    if assignment is not None and not path.is_file():
        path = _saved_path(workspace, None)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(Student)}
    return Roster(data["path"], data["kind"],
                  {s["student_id"]: Student(**{k: v for k, v in s.items() if k in fields}) for s in data["students"]},
                  columns=tuple(data.get("columns") or ()), points=data.get("points") or {})
