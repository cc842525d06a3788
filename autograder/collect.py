"""Bring a class's submissions into a workspace: a folder of <student_id>/<notebook>, its zip, or an LMS download.

Layouts, recognised from the files themselves (``layout`` in the report):
  - ``folders``: ``<student>/<notebook>`` or nbgrader's own ``<student>/<assignment>/<notebook>``;
  - ``canvas``: Canvas's "Download Submissions" zip, flat files
    ``<login>[_LATE]_<canvas user id>_<submission id>_<uploaded name>`` (Canvas appends ``-1``, ``-2``
    to a re-uploaded file's name: ``ps1_dsc-1.ipynb`` is accepted as ``ps1_dsc.ipynb``);
  - ``moodle``: Moodle's "Download all submissions" zip, one folder per submission
    ``<Full Name>_<participant id>_assignsubmission_file_/`` holding the uploaded files.
An LMS layout needs a roster (``roster.py``) to turn LMS ids into the course's student ids: a
submission from someone not on it is reported, never guessed. Moodle's participant ids are per
assignment, so a Moodle folder whose id the roster gives to someone else (or to nobody) is matched by
its full name (or, with Moodle's grading worksheet, by email), and said so; a download of which no
roster student matches is refused.

Submission times come from a source that knows them (``lmstimes.py``: Canvas's Submissions API
list, Moodle's grading worksheet, a plain CSV; nbgrader's own ``timestamp.txt``), or from Canvas's
``_LATE`` marker (absent: Canvas saw it on time). Zip entry and file times are *not* submission times
(Canvas and Moodle stamp every entry with the moment the zip was made) and are read only with
``file_times=True``, and even then refused when every entry carries the same time. Where each time
came from goes to ``collect/<assignment>.students.json`` (``time_source``), which the late policy
(``course.py``) reads and the feedback page shows.

Collecting merges: a student absent from this download keeps what an earlier collect brought in
(``replace=True``: the download is complete, and the absent lose theirs). A roster student never
collected and absent is collected empty and graded "missing". A student who uploaded something that
cannot be graded (not a notebook, a misnamed notebook, two notebooks at one time) is marked
``needs_review`` with what was found: graded "needs_review", never exported as a 0.

Only exact names are accepted (after Canvas's suffixes). Everything else is reported (misnamed notebook, duplicate,
unmatched file, bad student id), never guessed: an instructor renames and collects again.
A student whose folder holds no accepted notebook is still collected, empty, so that grading
records "missing" for them with the reason collect found.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import re
import shutil
import tempfile
import zipfile
import zoneinfo

from . import lmstimes
from .course import submissions_file
from .files import atomic_write, private_dirs
from .roster import _names, _norm, read_roster, save_roster
from .nbgrader_config import SOURCE, notebook_names

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
IGNORED = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.DS_Store|Thumbs\.db)(/|$)|(^|/)\._")
# Canvas (lib/content_zipper.rb): "<sortable name, lower case, non-word characters removed>[_LATE]_<user id>_<attachment
# id>_<file>". The name keeps '_' and non-ASCII letters but never "_<digits>_" (sanitize_user_name), so the first
# "_<digits>_<digits>_" ends it. Text and URL entries are "<name>[_LATE]_<user id>_text.html" / "_link.html".
CANVAS = re.compile(r"^(?P<login>[^/]*?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<name>[^/]+)$")
CANVAS_ONLINE = re.compile(r"^(?P<login>[^/]*?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<kind>text|link)\.html$")
CANVAS_ANON = re.compile(r"^(LATE_)?anon_")
CANVAS_SUFFIX = re.compile(r"-\d+(?=\.ipynb$)")   # Canvas renames a re-upload ps1.ipynb -> ps1-1.ipynb
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")
# Moodle's download without "Download submissions in folders": each file's name carries its folder's
MOODLE_FLAT = re.compile(r"^(?P<folder>.+?_\d+_assignsubmission_[a-z]+_)(?P<file>[^/]+)$")
LAYOUTS = ("<student_id>/<notebook> folders (or nbgrader's <student_id>/<assignment>/<notebook>), "
           "a Canvas 'Download Submissions' zip (<login>[_LATE]_<user id>_<submission id>_<file>), "
           "or a Moodle 'Download all submissions' zip (<Full Name>_<id>_assignsubmission_file_/<file>)")


@dataclasses.dataclass
class Report:
    """What collect did and what it refused, per category (paths are as given in SOURCE)."""

    accepted: dict = dataclasses.field(default_factory=dict)   # student -> [notebook names]
    updated: list = dataclasses.field(default_factory=list)    # students whose submission changed
    unchanged: list = dataclasses.field(default_factory=list)
    missing: dict = dataclasses.field(default_factory=dict)    # student -> what was found instead
    misnamed: list = dataclasses.field(default_factory=list)   # (path, expected name)
    duplicates: list = dataclasses.field(default_factory=list)  # (student, notebook, [paths])
    unmatched: list = dataclasses.field(default_factory=list)  # files outside the layout
    bad_ids: list = dataclasses.field(default_factory=list)    # folder names that are no student id
    ignored: list = dataclasses.field(default_factory=list)    # OS litter (__MACOSX, .DS_Store, ...)
    notes: list = dataclasses.field(default_factory=list)
    layout: str = "folders"
    not_on_roster: list = dataclasses.field(default_factory=list)  # (path, who the LMS says it is)
    superseded: list = dataclasses.field(default_factory=list)   # (student, kept path, [dropped paths])
    needs_review: dict = dataclasses.field(default_factory=dict)  # student -> what they uploaded instead
    kept: list = dataclasses.field(default_factory=list)  # absent from this download: earlier collect kept
    removed: list = dataclasses.field(default_factory=list)  # absent, and replace=True: their files removed
    times: dict = dataclasses.field(default_factory=dict)  # time source -> [students]

    def problems(self) -> int:
        return (len(self.misnamed) + len(self.duplicates) + len(self.unmatched) + len(self.bad_ids)
                + len(self.missing) + len(self.not_on_roster) + len(self.needs_review))

    def lines(self) -> list[str]:
        out = [f"collected {len(self.accepted)} student(s) from a {self.layout} layout: {len(self.updated)} "
               f"new or changed, {len(self.unchanged)} unchanged"]
        for path, who in self.not_on_roster:
            out.append(f"NOT ON ROSTER {path}: {who} is not on the roster; not collected")
        for student, kept, dropped in self.superseded:
            out.append(f"SUPERSEDED {student}: kept the latest, {kept}; not collected: {', '.join(dropped)}")
        for student, found in sorted(self.needs_review.items()):
            out.append(f"NEEDS REVIEW {student}: handed in {'; '.join(found)}; nothing gradable, so not graded "
                       "(status needs_review, never exported as 0): fix the file and collect it again")
        for student in sorted(set(self.missing) - set(self.needs_review)):
            out.append(f"MISSING   {student}: nothing handed in")
        if self.kept:
            out.append(f"kept {len(self.kept)} student(s) absent from this download as collected before "
                       f"({', '.join(self.kept[:8])}{', ...' if len(self.kept) > 8 else ''}); --replace would remove them")
        for student in self.removed:
            out.append(f"REMOVED   {student}: absent from this download, and --replace says it is complete")
        for source, who in sorted(self.times.items()):
            if source == UNKNOWN_TIME:
                out.append(f"TIME UNKNOWN {', '.join(who)}: no submission time; with a due time in course.toml, grade "
                           "stops at them (status error) until collect gets --times (Canvas's Submissions API list, "
                           "Moodle's grading worksheet)")
            else:
                out.append(f"times: {len(who)} student(s): {source}")
        for path, expected in self.misnamed:
            out.append(f"MISNAMED  {path}: expected {expected}; not collected")
        for student, name, paths in self.duplicates:
            out.append(f"DUPLICATE {student}/{name}: {' and '.join(paths)}; none collected")
        for path in self.unmatched:
            out.append(f"UNMATCHED {path}: not in the {self.layout} layout; ignored")
        for name in self.bad_ids:
            out.append(f"BAD ID    {name!r}: not a student id (letters, digits, _.@+-); ignored")
        out += [f"note: {n}" for n in self.notes]
        if self.ignored:
            out.append(f"ignored {len(self.ignored)} system file(s) (__MACOSX, .DS_Store, checkpoints)")
        return out


def _files(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*") if p.is_file())


def _extract(zpath: pathlib.Path, dest: pathlib.Path, report: Report, times: dict) -> pathlib.Path:
    """Unzip safely (no absolute paths, no ..); a zip whose one top folder wraps the student folders is rooted there.

    ``times`` receives each extracted file's entry time (naive: a zip stores no time zone).
    """
    try:
        with zipfile.ZipFile(zpath) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            names = [i.filename for i in infos]
            for info in infos:
                name = info.filename
                parts = pathlib.PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    report.unmatched.append(name)
                elif names.count(name) > 1:  # the same path twice in one archive: keep neither
                    if name not in [p for d in report.duplicates for p in d[2]]:
                        report.duplicates.append((parts[0], "/".join(parts[1:]), [name] * names.count(name)))
                else:
                    target = dest / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                    times[name] = dt.datetime(*info.date_time)
    except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:  # truncated download, CRC mismatch
        raise ValueError(f"SOURCE: {zpath} is a corrupt zip file ({type(exc).__name__}: {exc}); "
                         "download it again") from None
    tops = [p for p in dest.iterdir() if not IGNORED.search(p.name)]
    if len(tops) == 1 and tops[0].is_dir() and not MOODLE.match(tops[0].name):
        inner = [p for p in tops[0].iterdir() if not IGNORED.search(p.name)]
        if inner and (all(p.is_dir() for p in inner)  # student folders, or a re-zipped Canvas download
                      or all(p.is_file() and CANVAS.match(p.name) for p in inner)):
            report.notes.append(f"the zip wraps everything in {tops[0].name}/: student folders read from there")
            prefix = tops[0].name + "/"
            for name in list(times):
                if name.startswith(prefix):
                    times[name[len(prefix):]] = times.pop(name)
            return tops[0]
    return dest


def zlib_error():
    import zlib
    return zlib.error


def detect(files: list[str]) -> str:
    """The layout of a submission tree from its file paths: "canvas", "moodle" or "folders"."""
    tops = {f.split("/")[0] for f in files}
    if files and all("/" not in f for f in files) and any(CANVAS.match(f) or CANVAS_ONLINE.match(f) for f in files):
        return "canvas"
    if any(MOODLE.match(t) for t in tops if any(f.startswith(t + "/") for f in files)):
        return "moodle"
    return "folders"


@dataclasses.dataclass
class Candidate:
    rel: str                     # path under the extracted root
    time: dt.datetime | None     # aware, or None when unknown
    meta: dict


def _when(rel, times, file_times, root, source_is_zip, tz):
    """(time, source) from a zip entry or a file, when the instructor said to trust them; else (None, None)."""
    if not file_times:
        return None, None
    if rel in times:
        return times[rel].replace(tzinfo=tz), f"zip entry time, read as {tz.key} (--file-times)"
    if not source_is_zip:
        return (dt.datetime.fromtimestamp(os.stat(root / rel).st_mtime, dt.timezone.utc),
                "file modification time (--file-times)")
    return None, None


def _match_moodle(roster, by_lms, folder_name, pid, lms_times, taken, meta):
    """The roster student of a Moodle folder ``<name>_<pid>_...``, or None; ``meta`` says how."""
    s = by_lms.get(pid)
    if s is not None and (not s.name or _norm(folder_name) in _names(s.name)):
        meta["matched_by"] = "participant id"
        return s
    clash = s
    person = lms_times.people.get(pid) if lms_times is not None else None
    if person and person[1]:  # the grading worksheet gives this participant's email
        same = [x for x in roster.students.values() if x.email and x.email.lower() == person[1].lower()]
        if len(same) == 1 and same[0].student_id not in taken:
            meta["matched_by"] = "email (grading worksheet)"
            return same[0]
    same = [x for x in roster.by_name(folder_name) if x.student_id not in taken]
    if len(same) == 1:
        meta["matched_by"] = "name"
        if clash is not None:
            meta["id_clash"] = (f"the roster gives participant id {pid} to {clash.student_id} ({clash.name}); the "
                                f"download names {folder_name}: Moodle's ids are per assignment")
        return same[0]
    return None


def _lms_candidates(layout, files, root, roster, expected, report, times, tz, source_is_zip,
                    lms_times=None, file_times=False):
    """student -> notebook -> [Candidate] for a Canvas or Moodle tree; the rest goes into the report."""
    by_lms = roster.by_lms_id()
    if layout == "canvas" and not by_lms:
        raise ValueError(f"roster: {roster.path} gives no Canvas user ids (an lms_id column, or Canvas's own "
                         "gradebook export with its ID column): the files of a Canvas download name only those")
    if lms_times is not None and lms_times.kind not in (layout, "plain"):
        raise ValueError(f"--times: {lms_times.source} is a {lms_times.kind} file, but this is a {layout} download")
    found: dict[str, dict[str, list[Candidate]]] = {}
    others: dict[str, list[str]] = {}
    taken: dict[str, str] = {}  # student -> the LMS id matched to them (Moodle: one folder per person)
    for rel in files:
        if layout == "canvas":
            m = CANVAS.match(rel) or CANVAS_ONLINE.match(rel)
            if not m:
                report.unmatched.append(rel)
                continue
            if "kind" in m.groupdict():  # an online text or URL entry: attributed, never a notebook
                student = by_lms.get(m["uid"])
                if student is None:
                    report.not_on_roster.append((rel, f"Canvas user {m['uid']} ({m['login']})"))
                else:
                    found.setdefault(student.student_id, {})
                    others.setdefault(student.student_id, []).append(
                        f"an online {'text entry' if m['kind'] == 'text' else 'URL'} ({rel}), not a notebook upload")
                continue
            lms_id, who, uploaded = m["uid"], f"Canvas user {m['uid']} ({m['login']})", m["name"]
            meta = {"lms": "canvas", "lms_id": lms_id, "lms_login": m["login"], "lms_submission": m["sid"],
                    "lms_late": bool(m["late"])}
            student = by_lms.get(lms_id)
        else:
            folder, _, uploaded = rel.partition("/")
            m = MOODLE.match(folder)
            if not m or not uploaded:
                report.unmatched.append(rel)
                continue
            lms_id, who = m["id"], f"Moodle participant {m['id']} ({m['name']})"
            meta = {"lms": "moodle", "lms_id": lms_id, "lms_name": m["name"], "lms_late": False}
            student = _match_moodle(roster, by_lms, m["name"], lms_id, lms_times, taken, meta)
            if m["plugin"] != "file":  # online text and other plugins: no notebook, but the learner handed in
                if student is None:
                    report.not_on_roster.append((rel, who))
                else:
                    found.setdefault(student.student_id, {})
                    taken.setdefault(student.student_id, lms_id)
                    others.setdefault(student.student_id, []).append(
                        f"{uploaded} (Moodle's {m['plugin']} submission, not a notebook upload)")
                continue
            if student is not None:
                if taken.get(student.student_id, lms_id) != lms_id:
                    report.duplicates.append((student.student_id, "*", [f"participant {taken[student.student_id]}",
                                                                        f"participant {lms_id}"]))
                    continue
                taken[student.student_id] = lms_id
                if meta.get("id_clash") and meta["id_clash"] not in report.notes:
                    report.notes.append(meta["id_clash"])
        if student is None:
            if (rel, who) not in report.not_on_roster:
                report.not_on_roster.append((rel, who))
            continue
        sid = student.student_id
        found.setdefault(sid, {})
        base = pathlib.PurePosixPath(uploaded).name
        name = CANVAS_SUFFIX.sub("", base) if layout == "canvas" else base
        if name != base:
            meta["renamed_from"] = base
        if name in expected and "/" not in uploaded:
            when, source = None, None
            if lms_times is not None and lms_id in lms_times.by_lms:
                when, source = lms_times.by_lms[lms_id], lms_times.source
                if layout == "canvas" and lms_times.late.get(lms_id) != meta["lms_late"]:
                    report.notes.append(f"{rel}: Canvas's _LATE marker and its Submissions API disagree; the API's "
                                        "time is used")
            elif lms_times is not None and sid in lms_times.by_student:
                when, source = lms_times.by_student[sid], lms_times.source
            else:
                when, source = _when(rel, times, file_times, root, source_is_zip, tz)
            if when is None and layout == "canvas" and not meta["lms_late"]:
                meta["lms_on_time"] = True  # Canvas marks a late submission's files _LATE; this one is not
                source = "Canvas: no _LATE marker in the file name (on time by Canvas's due date)"
            found[sid].setdefault(name, []).append(Candidate(rel, when, meta | {"time_source": source}))
        elif name.endswith(".ipynb"):
            report.misnamed.append((rel, expected[0] if len(expected) == 1 else f"<one of {', '.join(expected)}>"))
            others.setdefault(sid, []).append(f"{uploaded} (a notebook, but not named {' or '.join(expected)})")
        else:
            others.setdefault(sid, []).append(f"{uploaded} ({_what(root / rel, base)})")
    if files and not found and by_lms is not None and report.not_on_roster:
        shown = ", ".join(w for _, w in report.not_on_roster[:3])
        raise ValueError(f"roster: no one in this {layout} download is on {roster.path} (found {shown}, ...): "
                         + ("Moodle's participant ids differ per assignment; give a roster with names or emails, "
                            "or this assignment's grading worksheet with --times" if layout == "moodle"
                            else "is it this course's roster?"))
    return found, others


def _what(path: pathlib.Path, name: str) -> str:
    """What an uploaded file that is not a notebook looks like, in a TA's words."""
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size == 0:
        return "an empty file, 0 bytes"
    low = name.lower()
    if low.endswith(".zip") or (size and path.read_bytes()[:4] == b"PK\x03\x04"):
        return "a zip file: notebooks inside an archive are not unpacked"
    if low.endswith(".py"):
        return "a Python file, not a notebook"
    if low.endswith(".pdf"):
        return "a PDF, not a notebook"
    if low.endswith(".html"):
        return "an HTML export, not a notebook"
    return "not a notebook"


def nbgrader_timestamp(path: pathlib.Path) -> dt.datetime | None:
    """The time in nbgrader's ``timestamp.txt`` (``2026-10-05 21:59:00.123456 UTC``), aware; None if unreadable."""
    text = path.read_text(errors="replace").strip()
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)\s*(\S+)?", text)
    if not m:
        return None
    t = dt.datetime.fromisoformat(m.group(1))
    zone = m.group(2) or "UTC"
    try:
        return t.replace(tzinfo=dt.timezone.utc if zone.upper() in ("UTC", "Z") else zoneinfo.ZoneInfo(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _folder_candidates(files, root, expected, assignment, report, times, tz, roster, lms_times=None,
                       file_times=False, source_is_zip=False):
    found: dict[str, dict[str, list[Candidate]]] = {}
    others: dict[str, list[str]] = {}
    for rel in files:
        parts = rel.split("/")
        if len(parts) < 2:
            report.unmatched.append(rel)
            continue
        if parts[-1] == "timestamp.txt" and (len(parts) == 2 or (len(parts) == 3 and parts[1] == assignment)):
            continue  # nbgrader's submission time, read below
        student = parts[0]
        if not STUDENT_ID.match(student):
            if student not in report.bad_ids:
                report.bad_ids.append(student)
            continue
        if roster is not None and student not in roster.students:
            report.not_on_roster.append((rel, f"student id {student}"))
            continue
        found.setdefault(student, {})
        name = parts[-1]
        exact = (len(parts) == 2 or (len(parts) == 3 and parts[1] == assignment)) and name in expected
        if exact:
            stamp = root / pathlib.PurePosixPath(rel).parent / "timestamp.txt"
            if lms_times is not None and student in lms_times.by_student:
                when, source = lms_times.by_student[student], lms_times.source
            elif stamp.is_file() and nbgrader_timestamp(stamp) is not None:
                when, source = nbgrader_timestamp(stamp), "nbgrader's timestamp.txt"
            else:
                when, source = _when(rel, times, file_times, root, source_is_zip, tz)
            meta = {"lms": None, "time_source": source}
            found[student].setdefault(name, []).append(Candidate(rel, when, meta))
        elif name.endswith(".ipynb"):
            report.misnamed.append((rel, f"{student}/{expected[0]}" if len(expected) == 1
                                    else f"{student}/<one of {', '.join(expected)}>"))
            others.setdefault(student, []).append(f"{'/'.join(parts[1:])} (a notebook, but not named "
                                                  f"{' or '.join(expected)})")
        else:
            others.setdefault(student, []).append(f"{'/'.join(parts[1:])} ({_what(root / rel, name)})")
    return found, others


UNKNOWN_TIME = "no submission time known"
SAME_TIME_S = 120  # every entry of a download within this many seconds: the time the zip was made


def collect(source, *, assignment: str, workspace, source_dir=SOURCE, roster=None,
            zip_timezone: str = "UTC", times=None, timezone: str | None = None, file_times: bool = False,
            replace: bool = False) -> Report:
    """Copy accepted notebooks to ``workspace/submitted/<student>/<assignment>/``; return the report.

    ``roster``: a roster CSV (required for Canvas and Moodle downloads). ``times``: a file of submission
    times (``lmstimes``), read in ``timezone`` where it has no offsets (Moodle's worksheet).
    ``file_times``: take zip entry (or file) times, read in ``zip_timezone``, as submission times.
    ``replace``: this download is complete: students absent from it lose what was collected before.
    """
    source = pathlib.Path(source)
    if not source.exists():
        raise ValueError(f"SOURCE: {source} does not exist")
    zone = timezone or zip_timezone
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--timezone: {zone!r} is no IANA time zone (e.g. UTC, Europe/Zurich)") from None
    expected = notebook_names(assignment, source_dir)
    roster_obj = read_roster(roster) if roster is not None else None
    lms_times = lmstimes.read(times, timezone) if times is not None else None
    report = Report()
    if roster_obj is not None:
        report.notes += roster_obj.notes
    times_of: dict[str, dt.datetime] = {}
    ws = pathlib.Path(workspace)
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise ValueError(f"SOURCE: {source} is neither a folder nor a zip file (expected {LAYOUTS})")
            root = _extract(source, pathlib.Path(tmp), report, times_of)
        else:
            root = source
        files = []
        for rel in _files(root):
            if IGNORED.search(rel):
                report.ignored.append(rel)
            else:
                files.append(rel)
        if files and all("/" not in f for f in files) and any(CANVAS_ANON.match(f) for f in files):
            raise ValueError(f"SOURCE: {source} is a Canvas download of an anonymously graded assignment "
                             "(anon_<id>_... file names): they name no student, so nothing can be matched to the "
                             "roster. Download again after Canvas reveals the names (Post grades / unmute)")
        if files and all("/" not in f and MOODLE_FLAT.match(f) for f in files):
            flat = pathlib.Path(tmp) / "moodle-in-folders"  # Moodle's flat download, laid out in its folders
            for rel in files:
                m = MOODLE_FLAT.match(rel)
                (flat / m["folder"]).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / rel, flat / m["folder"] / m["file"])
                if rel in times_of:
                    times_of[f"{m['folder']}/{m['file']}"] = times_of.pop(rel)
            root, files = flat, _files(flat)
            report.notes.append("a flat Moodle download (without 'Download submissions in folders'): each file "
                                "read under the folder its name gives")
        report.layout = detect(files)
        if report.layout == "moodle" and all(MOODLE.match(f.split("/")[0])["name"] == "Participant"
                                             for f in files if MOODLE.match(f.split("/")[0])):
            raise ValueError(f"SOURCE: {source} is a Moodle download under blind marking (every folder is "
                             "Participant_<id>_...): it names no student, and its ids are this assignment's alone, "
                             "so nothing can be matched safely. Reveal student identities in Moodle, then download "
                             "again")
        if file_times and source.is_file():
            stamps = [times_of[f] for f in files if f in times_of]
            if len(stamps) >= 2 and (max(stamps) - min(stamps)).total_seconds() < SAME_TIME_S:
                raise ValueError(f"--file-times: all {len(stamps)} entries of {source.name} carry the same time "
                                 f"({min(stamps):%Y-%m-%d %H:%M}): that is when the zip was made, not when anyone "
                                 "handed in (Canvas and Moodle stamp every entry so). Give the LMS's own times "
                                 "with --times, or collect without --file-times")
        if report.layout in ("canvas", "moodle"):
            if roster_obj is None:
                raise ValueError(f"SOURCE: {source} is a {report.layout} download: pass --roster ROSTER.csv "
                                 "(Canvas's gradebook export, or student_id,name,lms_id) to map its ids to students")
            if lms_times is not None and lms_times.kind == "canvas" and lms_times.assignment_ids:
                _check_canvas_assignment(ws, assignment, lms_times)
            found, others = _lms_candidates(report.layout, files, root, roster_obj, expected, report, times_of, tz,
                                            source.is_file(), lms_times, file_times)
        else:
            found, others = _folder_candidates(files, root, expected, assignment, report, times_of, tz, roster_obj,
                                               lms_times, file_times, source.is_file())
            if files and not found and not report.not_on_roster:
                shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
                raise ValueError(f"SOURCE: {source}: unknown layout (found {shown}); expected {LAYOUTS}")
        folded: dict[str, list[str]] = {}
        for student in found:
            folded.setdefault(student.lower(), []).append(student)
        for group in folded.values():
            if len(group) > 1:  # "Alice" and "alice": one person or two? not ours to guess
                for student in group:
                    report.duplicates.append((student, "*", sorted(group)))
                    del found[student]
        info_path = submissions_file(ws, assignment)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        before = {p.parent.name for p in (ws / "submitted").glob(f"*/{assignment}") if p.is_dir()}
        present = set(found)
        absent = (before | set(roster_obj.students if roster_obj is not None else ())) - present
        for student in sorted(absent):
            if student in before and not replace:
                report.kept.append(student)  # an earlier collect brought them in: a partial download keeps them
                continue
            if student in before:
                report.removed.append(student)
            found[student] = {}  # on the roster, nothing handed in (or --replace): collected empty, "missing"
        for student in sorted(found):
            dest = ws / "submitted" / student / assignment
            accepted: dict[str, Candidate] = {}
            for name, cands in found[student].items():
                if len(cands) == 1:
                    accepted[name] = cands[0]
                elif report.layout == "folders":
                    report.duplicates.append((student, name, [c.rel for c in cands]))
                else:  # an LMS download: the latest upload counts, if the times tell which it is
                    timed = sorted((c for c in cands if c.time is not None), key=lambda c: c.time)
                    if (len(timed) == len(cands) and timed[-1].time > timed[-2].time
                            and len({c.meta.get("time_source") for c in cands}) == 1
                            and "--file-times" in str(timed[-1].meta.get("time_source"))):
                        accepted[name] = timed[-1]
                        report.superseded.append((student, timed[-1].rel, [c.rel for c in timed[:-1]]))
                    else:
                        report.duplicates.append((student, name, [c.rel for c in cands]))
                if name not in accepted:
                    others.setdefault(student, []).append(
                        f"{len(cands)} files that are each {name} ({', '.join(c.rel for c in cands)}): which one "
                        "counts is not known")
            if not accepted:
                report.missing[student] = others.get(student, [])
                if others.get(student):
                    report.needs_review[student] = others[student]
            elif others.get(student):
                report.notes.append(f"{student} also handed in {'; '.join(others[student])}: graded "
                                    f"{', '.join(sorted(accepted))}; look if that was not their intent")
            changed = False
            for name in expected:
                target = dest / name
                if name in accepted:
                    data = (root / accepted[name].rel).read_bytes()
                    if not (target.is_file() and target.read_bytes() == data):
                        atomic_write(target, data)
                        changed = True
                elif target.exists():  # their new upload lacks this notebook: the old copy must not be graded
                    target.unlink()
                    changed = True
            private_dirs(dest)  # 0700, like everything the workspace holds
            report.accepted[student] = sorted(accepted)
            (report.updated if changed else report.unchanged).append(student)
            info[student] = _student_info(student, accepted, roster_obj, report.needs_review.get(student))
            if accepted:
                src = (info[student].get("time_source") if info[student].get("submitted_at")
                       or info[student].get("lms_on_time") else None) or UNKNOWN_TIME
                report.times.setdefault(src, []).append(student)
    if roster_obj is not None:
        # This assignment's LMS ids (Moodle's differ per assignment). For a roster student absent from a Moodle
        # download the roster's id stands only if every participant present matched by that id (the roster is
        # this assignment's); else the grading worksheet, which lists everyone, says it; else it is unknown.
        how = {m.get("matched_by") for sid, m in info.items() if sid in roster_obj.students and m.get("lms") == "moodle"}
        trusted = how == {"participant id"}
        listed = {}
        if lms_times is not None and lms_times.kind == "moodle":
            for pid, (name, email) in lms_times.people.items():
                same = [x for x in roster_obj.students.values() if email and x.email.lower() == email.lower()]
                same = same or roster_obj.by_name(name)
                if len(same) == 1:
                    listed[same[0].student_id] = pid
        for sid, st in roster_obj.students.items():
            meta = info.get(sid) or {}
            if meta.get("lms_id") and meta.get("lms") == report.layout:
                st.lms_id = str(meta["lms_id"])
            elif report.layout == "moodle" and not trusted:
                st.lms_id = listed.get(sid, "")
        save_roster(roster_obj, ws, assignment)
    atomic_write(info_path, json.dumps(info, indent=1, sort_keys=True).encode())
    notes = ws / "collect" / f"{assignment}.json"
    atomic_write(notes, json.dumps(dataclasses.asdict(report), indent=1, sort_keys=True).encode())
    return report


def _check_canvas_assignment(ws: pathlib.Path, assignment: str, lms_times) -> None:
    """The Submissions API list must be this assignment's (course.toml's canvas_id), when both say."""
    from .course import load
    course = load(ws)
    a = course.assignments.get(assignment) if course else None
    if a is not None and a.canvas_id is not None and lms_times.assignment_ids != {str(a.canvas_id)}:
        raise ValueError(f"--times: {lms_times.source} lists Canvas assignment(s) "
                         f"{', '.join(sorted(lms_times.assignment_ids))}, but course.toml says {assignment} is "
                         f"Canvas assignment {a.canvas_id}")


def _student_info(student: str, accepted: dict, roster, needs_review: list | None = None) -> dict:
    """What the late policy and the export need: the submission time (the latest of its notebooks) and where
    it came from, LMS ids, and what needs a person's review."""
    times = [c.time for c in accepted.values()]
    known = [t for t in times if t is not None]
    meta = next(iter(accepted.values())).meta if accepted else {}
    entry = roster.students.get(student) if roster is not None else None
    return {"submitted_at": max(known).isoformat() if known and len(known) == len(times) else None,
            "time_source": meta.get("time_source"), "lms": meta.get("lms"), "lms_id": meta.get("lms_id"),
            "lms_late": any(c.meta.get("lms_late") for c in accepted.values()),
            "lms_on_time": bool(accepted) and all(c.meta.get("lms_on_time") for c in accepted.values()),
            "collected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **({"needs_review": list(needs_review)} if needs_review else {}),
            "files": {name: c.rel for name, c in accepted.items()},
            "name": entry.name if entry else meta.get("lms_name", ""),
            **({"matched_by": meta["matched_by"]} if "matched_by" in meta else {}),
            **({"renamed_from": {n: c.meta["renamed_from"] for n, c in accepted.items() if "renamed_from" in c.meta}}
               if any("renamed_from" in c.meta for c in accepted.values()) else {})}
