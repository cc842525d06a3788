"""Write the LMS samples in autograder/samples/lms/ from the sample class in autograder/samples/ps1_dsc/.

A Canvas "Download Submissions" zip and a Moodle "Download all submissions" zip of the same small
class, with the rosters each LMS gives and the course file, so that collect, grade, feedback and
export run on what an instructor downloads (tests/test_lms.py). The people, all due 2026-10-05
23:59 Zurich time (course.toml; zip entry times are Zurich local times, collect --zip-timezone
Europe/Zurich):

  s01 Jane Doe      right answers, handed in on time (5 Oct 20:00)
  s03 Ada Lovelace  partial answers, 34 h 1 min late (7 Oct 10:00; Canvas marks it LATE)
  s06 Alan Turing   a plausible mistake, 36 h late but with a 3-day extension; a first, blank upload
                    (4 Oct 09:00) is superseded by the later one, which Canvas renamed ps1_dsc-1.ipynb
  s10 Grace Hopper  on the roster, handed nothing in: graded "missing"
  -   Bob Stranger  handed in, not on the roster: reported, not collected

The zips are byte-for-byte reproducible (fixed entry times and order): run
``python autograder/samples/make_lms_samples.py`` and ``git diff`` shows nothing.
"""
from __future__ import annotations

import pathlib
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
CLASS = HERE / "ps1_dsc"
OUT = HERE / "lms"
NB = "ps1_dsc.ipynb"

# (course id, Canvas name, Canvas user id, Canvas login, Moodle participant id, email)
PEOPLE = [
    ("s01", "Doe, Jane", 1001, "doejane", 301, "jane.doe@example.edu"),
    ("s03", "Lovelace, Ada", 1003, "lovelaceada", 303, "ada.lovelace@example.edu"),
    ("s06", "Turing, Alan", 1006, "turingalan", 306, "alan.turing@example.edu"),
    ("s10", "Hopper, Grace", 1010, "hoppergrace", 310, "grace.hopper@example.edu"),
]
# (who, sample notebook, Zurich local time of the upload, Canvas submission id, Canvas re-upload suffix)
UPLOADS = [
    ("s01", "s01_right", (2026, 10, 5, 20, 0, 0), 50001, ""),
    ("s03", "s03_partial", (2026, 10, 7, 10, 0, 0), 50003, ""),
    ("s06", "s04_blank", (2026, 10, 4, 9, 0, 0), 50005, ""),
    ("s06", "s06_padding_off", (2026, 10, 7, 12, 0, 0), 50006, "-1"),
    ("stranger", "s01_right", (2026, 10, 5, 21, 0, 0), 50099, ""),
]
STRANGER = ("Stranger, Bob", 2001, "strangerbob", 399)
DUE = "2026-10-05T23:59:00"  # Europe/Zurich


def _person(who):
    if who == "stranger":
        return (None, *STRANGER, None)
    return next(p for p in PEOPLE if p[0] == who)


def _first_last(canvas_name: str) -> str:
    last, first = (s.strip() for s in canvas_name.split(","))
    return f"{first} {last}"


def _zip(path: pathlib.Path, entries: list) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, when, data in entries:
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def canvas_entries() -> list:
    out = []
    for who, sample, when, sid, suffix in UPLOADS:
        _, name, uid, login, _, *_ = _person(who)
        late = "_LATE" if when[:3] > (2026, 10, 5) else ""
        out.append((f"{login}{late}_{uid}_{sid}_{NB[:-6]}{suffix}.ipynb", when, (CLASS / sample / NB).read_bytes()))
    return out


def moodle_entries() -> list:
    out = []
    for who, sample, when, _, _ in UPLOADS:
        p = _person(who)
        name, mid = p[1], p[4]
        if who == "s06" and sample == "s04_blank":
            continue  # Moodle keeps one file per name in a submission: only the last upload
        out.append((f"{_first_last(name)}_{mid}_assignsubmission_file_/{NB}", when, (CLASS / sample / NB).read_bytes()))
    return out


def canvas_roster() -> str:
    """Canvas's gradebook export: its header, the Points Possible row, one row per student."""
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section,PS1 depthwise separable convolutions (4101)",
             "    Points Possible,,,,,10.00"]
    for sid, name, uid, login, _, _ in PEOPLE:
        lines.append(f'"{name}",{uid},{sid},{login},MobileNet 2026,')
    lines.append('"Student, Test",9999,,,MobileNet 2026,')  # Canvas's test student: no SIS id
    return "\n".join(lines) + "\n"


def moodle_roster() -> str:
    lines = ["student_id,name,lms_id,email"]
    for sid, name, _, _, mid, email in PEOPLE:
        lines.append(f"{sid},{_first_last(name)},{mid},{email}")
    return "\n".join(lines) + "\n"


COURSE = f"""# The sample course file (autograder/samples/make_lms_samples.py writes it; see autograder/course.py)
[late]
per_day = 0.10                # 10 % of the score per started day late
cap = 0.50
grace_minutes = 15
not_accepted_after_days = 7
missing_time = "late"

[assignments.ps1_dsc]
due = {DUE}
timezone = "Europe/Zurich"
title = "PS1 depthwise separable convolutions"
canvas_id = 4101

[assignments.ps1_dsc.extensions]
s06 = "3d"
"""


def main() -> None:
    OUT.mkdir(exist_ok=True)
    _zip(OUT / "canvas_ps1_dsc.zip", canvas_entries())
    _zip(OUT / "moodle_ps1_dsc.zip", moodle_entries())
    (OUT / "canvas_roster.csv").write_text(canvas_roster())
    (OUT / "moodle_roster.csv").write_text(moodle_roster())
    (OUT / "course.toml").write_text(COURSE)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.iterdir()))} in {OUT}")


if __name__ == "__main__":
    main()
