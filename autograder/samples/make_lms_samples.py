"""Write the LMS samples in autograder/samples/lms/ from the sample class in autograder/samples/ps1_dsc/.

Downloads built the way Canvas and Moodle write them, so that collect, grade, feedback and export
run on what an instructor really gets (tests/test_lms.py):

- **Every zip entry carries the download's time**, not the submission's: Canvas's content_zipper.rb
  adds files without a time, so rubyzip stamps the moment the zip was made, and Moodle's zip writer
  does the same. The ps1_dsc downloads were made on 12 Oct 2026, 09:30 Zurich time, a week after the
  due time (5 Oct 23:59).
- The real submission times are where each LMS keeps them: Canvas's Submissions API list
  (``canvas_ps1_dsc_submissions.json``, UTC) and Canvas's ``_LATE`` file-name marker; Moodle's
  offline grading worksheet (``moodle_ps1_dsc_worksheet.csv``, "Last modified (submission)" written
  by ``userdate()`` in English, Zurich time).
- Canvas names a file ``<login>[_LATE]_<user id>_<attachment id>_<uploaded name>``, appending ``-1`` to
  a re-uploaded name; Moodle names a folder ``<Full Name>_<participant id>_assignsubmission_file_``
  with an id that is **per assignment** (``moodle_ps2_cost.zip`` gives the same people other ids, one
  of them an id that belonged to someone else in ps1_dsc).
- ``canvas_ps1_dsc_partial.zip``: a later download holding only one re-submission (s03's).
- ``canvas_roster_ta.csv``: Canvas's gradebook export as a TA without SIS permission gets it with a
  ``;`` separator and the LastName/FirstName setting (no SIS User ID column).

The people (course.toml: due 2026-10-05 23:59 Europe/Zurich, 10 % a started day, 15 min grace):

  s01 Jane Doe      right answers, on time (5 Oct 20:00)
  s03 Ada Lovelace  partial answers, 34 h 1 min late (7 Oct 10:00; Canvas marks it LATE); in the partial
                    re-download she hands in the right answers on 8 Oct 08:00 (56 h 1 min late)
  s06 Alan Turing   a plausible mistake, 36 h late with a 3-day extension (Canvas renamed the file -1)
  s10 Grace Hopper  on the roster, handed nothing in: graded "missing"
  s11 Edsger Dijkstra   uploaded ps1_dsc.py (a script, not the notebook)       -> needs review
  s12 Barbara Liskov    uploaded ps1_dsc.pdf                                   -> needs review
  s13 John Backus       uploaded ps1_dsc.zip with the notebook inside          -> needs review
  s14 Frances Allen     uploaded ps1.ipynb (the right notebook, wrong name)    -> needs review
  s15 Donald Knuth      two notebooks in one attempt (Canvas: ps1_dsc.ipynb and ps1_dsc-1.ipynb)
                                                                               -> needs review
  s16 Karen Jones       an empty ps1_dsc.ipynb (0 bytes)                       -> broken, 0
  -   Bob Stranger  handed in, not on the roster: reported, not collected

The files are byte-for-byte reproducible: run ``python autograder/samples/make_lms_samples.py`` and
``git diff`` shows nothing.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import zipfile
import zoneinfo

HERE = pathlib.Path(__file__).resolve().parent
CLASS = HERE / "ps1_dsc"
OUT = HERE / "lms"
NB = "ps1_dsc.ipynb"
ZURICH = zoneinfo.ZoneInfo("Europe/Zurich")
DOWNLOADED = (2026, 10, 12, 9, 30, 0)          # when the instructor downloaded the ps1_dsc zips (Zurich)
DOWNLOADED_AGAIN = (2026, 10, 13, 8, 15, 0)    # the partial re-download
DOWNLOADED_PS2 = (2026, 10, 20, 17, 5, 0)

# (course id, Canvas sortable name, Canvas user id, Canvas login, Moodle participant id in ps1_dsc, in ps2_cost, email)
PEOPLE = [
    ("s01", "Doe, Jane", 1001, "doejane", 301, 512, "jane.doe@example.edu"),
    ("s03", "Lovelace, Ada", 1003, "lovelaceada", 303, 301, "ada.lovelace@example.edu"),
    ("s06", "Turing, Alan", 1006, "turingalan", 306, 517, "alan.turing@example.edu"),
    ("s10", "Hopper, Grace", 1010, "hoppergrace", 310, 519, "grace.hopper@example.edu"),
    ("s11", "Dijkstra, Edsger", 1011, "dijkstraedsger", 311, 520, "edsger.dijkstra@example.edu"),
    ("s12", "Liskov, Barbara", 1012, "liskovbarbara", 312, 521, "barbara.liskov@example.edu"),
    ("s13", "Backus, John", 1013, "backusjohn", 313, 522, "john.backus@example.edu"),
    ("s14", "Allen, Frances", 1014, "allenfrances", 314, 523, "frances.allen@example.edu"),
    ("s15", "Knuth, Donald", 1015, "knuthdonald", 315, 524, "donald.knuth@example.edu"),
    ("s16", "Jones, Karen", 1016, "joneskaren", 316, 525, "karen.jones@example.edu"),
]
STRANGER = ("Stranger, Bob", 2001, "strangerbob", 399)


def _sample(name: str) -> bytes:
    return (CLASS / name / NB).read_bytes()


def _nested_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(NB, date_time=(2026, 10, 5, 19, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, _sample("s01_right"))
    return buf.getvalue()


# (who, uploaded file name (Canvas suffix included), bytes, Zurich local submission time, Canvas attachment id)
UPLOADS = [
    ("s01", NB, lambda: _sample("s01_right"), (2026, 10, 5, 20, 0), 50001),
    ("s03", NB, lambda: _sample("s03_partial"), (2026, 10, 7, 10, 0), 50003),
    ("s06", "ps1_dsc-1.ipynb", lambda: _sample("s06_padding_off"), (2026, 10, 7, 12, 0), 50006),
    ("s11", "ps1_dsc.py", lambda: b"# my answers\nclass DepthwiseSeparableConv:\n    pass\n", (2026, 10, 5, 18, 0), 50011),
    ("s12", "ps1_dsc.pdf", lambda: b"%PDF-1.4\n% a printed notebook\n%%EOF\n", (2026, 10, 5, 17, 0), 50012),
    ("s13", "ps1_dsc.zip", _nested_zip, (2026, 10, 5, 19, 30), 50013),
    ("s14", "ps1.ipynb", lambda: _sample("s01_right"), (2026, 10, 5, 21, 0), 50014),
    ("s15", NB, lambda: _sample("s04_blank"), (2026, 10, 5, 22, 0), 50015),
    ("s15", "ps1_dsc-1.ipynb", lambda: _sample("s01_right"), (2026, 10, 5, 22, 0), 50016),
    ("s16", NB, lambda: b"", (2026, 10, 5, 23, 0), 50017),
    ("stranger", NB, lambda: _sample("s01_right"), (2026, 10, 5, 21, 0), 50099),
]
RESUBMIT = ("s03", NB, lambda: _sample("s01_right"), (2026, 10, 8, 8, 0), 50203)
DUE = dt.datetime(2026, 10, 5, 23, 59, tzinfo=ZURICH)


def _person(who):
    if who == "stranger":
        return (None, *STRANGER[:3], STRANGER[3], 599, "bob@example.org")
    return next(p for p in PEOPLE if p[0] == who)


def _first_last(canvas_name: str) -> str:
    last, first = (s.strip() for s in canvas_name.split(","))
    return f"{first} {last}"


def _zip(path: pathlib.Path, entries: list, stamp: tuple) -> None:
    """A download as the LMS writes it: every entry stamped with the download's time."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def _late(when: tuple) -> bool:
    return dt.datetime(*when, tzinfo=ZURICH) > DUE


def canvas_entries(uploads=UPLOADS) -> list:
    out = []
    for who, fname, data, when, attachment in uploads:
        _, _, uid, login, *_ = _person(who)
        late = "_LATE" if _late(when) else ""
        out.append((f"{login}{late}_{uid}_{attachment}_{fname}", data()))
    return out


def canvas_submissions(uploads=UPLOADS) -> str:
    """The Submissions API list of the assignment (one object per student who submitted, UTC times)."""
    subs, seen = [], set()
    for who, _, _, when, _ in uploads:
        _, _, uid, *_ = _person(who)
        if uid in seen:
            continue  # one submission (attempt) per student, however many files it has
        seen.add(uid)
        t = dt.datetime(*when, tzinfo=ZURICH).astimezone(dt.timezone.utc)
        late_s = max(0, int((t - DUE).total_seconds()))
        subs.append({"id": 90000 + uid, "assignment_id": 4101, "user_id": uid, "attempt": 1,
                     "submitted_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "late": late_s > 0, "seconds_late": late_s,
                     "workflow_state": "submitted", "submission_type": "online_upload"})
    for p in PEOPLE:  # the API lists students who handed nothing in, too
        if p[2] not in seen:
            subs.append({"id": 90000 + p[2], "assignment_id": 4101, "user_id": p[2], "attempt": None,
                         "submitted_at": None, "late": False, "seconds_late": 0, "workflow_state": "unsubmitted",
                         "submission_type": None})
    return json.dumps(subs, indent=1) + "\n"


def moodle_entries(assignment: str, uploads: list, pid_index: int) -> list:
    out = []
    for who, fname, data, _, _ in uploads:
        p = _person(who)
        if fname == "ps1_dsc-1.ipynb":  # Canvas's re-upload suffix; Moodle keeps the name as uploaded
            fname = "ps1_dsc (1).ipynb" if who == "s15" else NB  # s15: Moodle renames a second file of one name
        if assignment != "ps1_dsc":
            fname = fname.replace("ps1_dsc", assignment)
        out.append((f"{_first_last(p[1])}_{p[pid_index]}_assignsubmission_file_/{fname}", data()))
    return out


def _moodle_date(when: tuple) -> str:
    """Moodle's userdate() in English (strftimedaydatetime, day without a leading zero)."""
    t = dt.datetime(*when)
    return f"{t:%A}, {t.day} {t:%B %Y}, {t.hour % 12 or 12}:{t:%M} {'AM' if t.hour < 12 else 'PM'}"


def moodle_worksheet(uploads=UPLOADS) -> str:
    """The offline grading worksheet of ps1_dsc, as Moodle 4.x writes it (English)."""
    head = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
            "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"]
    times = {}
    for who, _, _, when, _ in uploads:
        times[who] = max(times.get(who, when), when)
    lines = [",".join(f'"{h}"' for h in head)]
    for p in PEOPLE + [(None, STRANGER[0], None, None, STRANGER[3], None, "bob@example.org")]:
        who = p[0] or "stranger"
        when = times.get(who)
        status = "Submitted for grading" if when else "No submission"
        row = [f"Participant {p[4]}", _first_last(p[1]), p[6], status, "", "10.00", "Yes",
               _moodle_date(when) if when else "-", "", "-", ""]
        lines.append(",".join(f'"{c}"' for c in row))
    return "\n".join(lines) + "\n"


def canvas_roster() -> str:
    """Canvas's gradebook export: its header, the Points Possible row, one row per student."""
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section,PS1 depthwise separable convolutions (4101)",
             "    Points Possible,,,,,10.00"]
    for sid, name, uid, login, *_ in PEOPLE:
        lines.append(f'"{name}",{uid},{sid},{login},MobileNet 2026,')
    lines.append('"Student, Test",9999,,,MobileNet 2026,')  # Canvas's test student: no SIS id
    return "\n".join(lines) + "\n"


def canvas_roster_ta() -> str:
    """The same export as a TA without SIS permission gets it: no SIS User ID column, LastName and
    FirstName columns, ';' between fields and a decimal comma (lib/gradebook_exporter.rb)."""
    lines = ["LastName;FirstName;ID;SIS Login ID;Section;PS1 depthwise separable convolutions (4101)",
             "    Points Possible;;;;;10,00"]
    for sid, name, uid, login, *_ in PEOPLE:
        last, first = (x.strip() for x in name.split(","))
        lines.append(f"{last};{first};{uid};{sid};MobileNet 2026;")
    lines.append("Student;Test;9999;;MobileNet 2026;")
    return "\n".join(lines) + "\n"


def moodle_roster() -> str:
    lines = ["student_id,name,lms_id,email"]
    for sid, name, _, _, mid, _, email in PEOPLE:
        lines.append(f"{sid},{_first_last(name)},{mid},{email}")
    return "\n".join(lines) + "\n"


COURSE = """# The sample course file (autograder/samples/make_lms_samples.py writes it; see autograder/course.py)
[late]
per_day = 0.10                # 10 % of the score per started day late
cap = 0.50
grace_minutes = 15
not_accepted_after_days = 7
# missing_time is not set: a submission whose time is unknown is not graded until a time is given

[assignments.ps1_dsc]
due = 2026-10-05T23:59:00
timezone = "Europe/Zurich"
title = "PS1 depthwise separable convolutions"
canvas_id = 4101

[assignments.ps1_dsc.extensions]
s06 = "3d"
"""


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    ps1 = list(UPLOADS)
    _zip(OUT / "canvas_ps1_dsc.zip", canvas_entries(ps1), DOWNLOADED)
    _zip(OUT / "canvas_ps1_dsc_partial.zip", canvas_entries([RESUBMIT]), DOWNLOADED_AGAIN)
    (OUT / "canvas_ps1_dsc_submissions.json").write_text(canvas_submissions(ps1))
    (OUT / "canvas_ps1_dsc_submissions_again.json").write_text(
        canvas_submissions([RESUBMIT] + [u for u in ps1 if u[0] != "s03"]))
    _zip(OUT / "moodle_ps1_dsc.zip", moodle_entries("ps1_dsc", ps1, 4), DOWNLOADED)
    (OUT / "moodle_ps1_dsc_worksheet.csv").write_text(moodle_worksheet(ps1))
    # ps2_cost's download is only collected (ids and names), never graded: a fixed stand-in notebook
    stand_in = (json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}) + "\n").encode()
    ps2 = [("s01", NB, lambda: stand_in, None, None), ("s03", NB, lambda: stand_in, None, None),
           ("s06", NB, lambda: stand_in, None, None)]
    _zip(OUT / "moodle_ps2_cost.zip", moodle_entries("ps2_cost", ps2, 5), DOWNLOADED_PS2)
    (OUT / "canvas_roster.csv").write_text(canvas_roster())
    (OUT / "canvas_roster_ta.csv").write_text(canvas_roster_ta())
    (OUT / "moodle_roster.csv").write_text(moodle_roster())
    (OUT / "course.toml").write_text(COURSE)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.iterdir()))} in {OUT}")


if __name__ == "__main__":
    main()
