"""Bring a class's submissions into a workspace: a folder of <student_id>/<notebook>, its zip, or an LMS download.

Layouts, recognised from the files themselves (``layout`` in the report):
  - ``folders``: ``<student>/<notebook>`` or nbgrader's own ``<student>/<assignment>/<notebook>``;
  - ``canvas``: Canvas's "Download Submissions" zip, flat files
    ``<login>[_LATE]_<canvas user id>_<submission id>_<uploaded name>`` (Canvas appends ``-1``, ``-2``
    to a re-uploaded file's name: ``ps1_dsc-1.ipynb`` is accepted as ``ps1_dsc.ipynb``);
  - ``moodle``: Moodle's "Download all submissions" zip, one folder per submission
    ``<Full Name>_<participant id>_assignsubmission_file_/`` holding the uploaded files.
An LMS layout needs a roster (``roster.py``) to turn LMS ids into the course's student ids: a
submission from someone not on it is reported, never guessed; a roster student without a submission
is collected empty and graded "missing". The submission time (a zip entry's time, a file's time in
an LMS folder) and Canvas's LATE marker go to ``collect/<assignment>.students.json``, which the late
policy (``course.py``) reads. Two files for one student and notebook in an LMS download: the latest
by time is kept and the others reported; equal or unknown times keep neither.

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

from .course import submissions_file
from .grade import atomic_write
from .roster import read_roster, save_roster
from .release import notebook_names
from .nbgrader_config import SOURCE

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
IGNORED = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.DS_Store|Thumbs\.db)(/|$)|(^|/)\._")
CANVAS = re.compile(r"^(?P<login>[^_/]+)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<name>[^/]+)$")
CANVAS_SUFFIX = re.compile(r"-\d+(?=\.ipynb$)")   # Canvas renames a re-upload ps1.ipynb -> ps1-1.ipynb
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")
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

    def problems(self) -> int:
        return (len(self.misnamed) + len(self.duplicates) + len(self.unmatched) + len(self.bad_ids)
                + len(self.missing) + len(self.not_on_roster))

    def lines(self) -> list[str]:
        out = [f"collected {len(self.accepted)} student(s) from a {self.layout} layout: {len(self.updated)} "
               f"new or changed, {len(self.unchanged)} unchanged"]
        for path, who in self.not_on_roster:
            out.append(f"NOT ON ROSTER {path}: {who} is not on the roster; not collected")
        for student, kept, dropped in self.superseded:
            out.append(f"SUPERSEDED {student}: kept the latest, {kept}; not collected: {', '.join(dropped)}")
        for student, found in sorted(self.missing.items()):
            out.append(f"MISSING   {student}: no accepted notebook" + (f" (found: {', '.join(found)})" if found else ""))
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
    if files and all("/" not in f for f in files) and any(CANVAS.match(f) for f in files):
        return "canvas"
    if any(MOODLE.match(t) for t in tops if any(f.startswith(t + "/") for f in files)):
        return "moodle"
    return "folders"


@dataclasses.dataclass
class Candidate:
    rel: str                     # path under the extracted root
    time: dt.datetime | None     # aware, or None when unknown
    meta: dict


def _lms_candidates(layout, files, root, roster, expected, report, times, tz, source_is_zip):
    """student -> notebook -> [Candidate] for a Canvas or Moodle tree; the rest goes into the report."""
    by_lms = roster.by_lms_id()
    if layout == "canvas" and not by_lms:
        raise ValueError(f"roster: {roster.path} gives no Canvas user ids (an lms_id column, or Canvas's own "
                         "gradebook export with its ID column): the files of a Canvas download name only those")
    found: dict[str, dict[str, list[Candidate]]] = {}
    others: dict[str, list[str]] = {}
    for rel in files:
        if layout == "canvas":
            m = CANVAS.match(rel)
            if not m:
                report.unmatched.append(rel)
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
            if m["plugin"] != "file":
                report.unmatched.append(rel)  # online text and other plugins: no notebook in them
                continue
            lms_id, who = m["id"], f"Moodle participant {m['id']} ({m['name']})"
            meta = {"lms": "moodle", "lms_id": lms_id, "lms_name": m["name"], "lms_late": False}
            student = by_lms.get(lms_id)
            if student is None and not by_lms:
                same = roster.by_name(m["name"])
                if len(same) == 1:  # the roster has no Moodle ids: an exact, unique full name is enough
                    student = same[0]
                    meta["matched_by"] = "name"
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
        if name in expected:
            if rel in times:
                when, source = times[rel].replace(tzinfo=tz), f"zip entry time, read as {tz.key}"
            elif not source_is_zip:
                when = dt.datetime.fromtimestamp(os.stat(root / rel).st_mtime, dt.timezone.utc)
                source = "file modification time"
            else:
                when, source = None, None
            found[sid].setdefault(name, []).append(Candidate(rel, when, meta | {"time_source": source}))
        elif name.endswith(".ipynb"):
            report.misnamed.append((rel, expected[0] if len(expected) == 1 else f"<one of {', '.join(expected)}>"))
            others.setdefault(sid, []).append(rel)
        else:
            report.unmatched.append(rel)
    return found, others


def _folder_candidates(files, root, expected, assignment, report, times, tz, roster):
    found: dict[str, dict[str, list[Candidate]]] = {}
    others: dict[str, list[str]] = {}
    for rel in files:
        parts = rel.split("/")
        if len(parts) < 2:
            report.unmatched.append(rel)
            continue
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
            when = times[rel].replace(tzinfo=tz) if rel in times else None
            meta = {"lms": None, "time_source": f"zip entry time, read as {tz.key}" if when else None}
            found[student].setdefault(name, []).append(Candidate(rel, when, meta))
        elif name.endswith(".ipynb"):
            report.misnamed.append((rel, f"{student}/{expected[0]}" if len(expected) == 1
                                    else f"{student}/<one of {', '.join(expected)}>"))
            others.setdefault(student, []).append(rel)
        else:
            report.unmatched.append(rel)
    return found, others


def collect(source, *, assignment: str, workspace, source_dir=SOURCE, roster=None,
            zip_timezone: str = "UTC") -> Report:
    """Copy accepted notebooks to ``workspace/submitted/<student>/<assignment>/``; return the report.

    ``roster``: a roster CSV (required for Canvas and Moodle downloads). ``zip_timezone``: the zone
    in which the zip's entry times are read (a zip stores local times without a zone).
    """
    source = pathlib.Path(source)
    if not source.exists():
        raise ValueError(f"SOURCE: {source} does not exist")
    try:
        tz = zoneinfo.ZoneInfo(zip_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--zip-timezone: {zip_timezone!r} is no IANA time zone (e.g. UTC, Europe/Zurich)") from None
    expected = notebook_names(assignment, source_dir)
    roster_obj = read_roster(roster) if roster is not None else None
    report = Report()
    if roster_obj is not None:
        report.notes += roster_obj.notes
    times: dict[str, dt.datetime] = {}
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise ValueError(f"SOURCE: {source} is neither a folder nor a zip file (expected {LAYOUTS})")
            root = _extract(source, pathlib.Path(tmp), report, times)
        else:
            root = source
        files = []
        for rel in _files(root):
            if IGNORED.search(rel):
                report.ignored.append(rel)
            else:
                files.append(rel)
        report.layout = detect(files)
        if report.layout in ("canvas", "moodle"):
            if roster_obj is None:
                raise ValueError(f"SOURCE: {source} is a {report.layout} download: pass --roster ROSTER.csv "
                                 "(Canvas's gradebook export, or student_id,name,lms_id) to map its ids to students")
            found, others = _lms_candidates(report.layout, files, root, roster_obj, expected, report, times, tz,
                                            source.is_file())
        else:
            found, others = _folder_candidates(files, root, expected, assignment, report, times, tz, roster_obj)
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
        if roster_obj is not None:  # on the roster, nothing handed in: collected empty, graded "missing"
            for sid in roster_obj.students:
                found.setdefault(sid, {})
        ws = pathlib.Path(workspace)
        info_path = submissions_file(ws, assignment)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
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
                    if len(timed) == len(cands) and timed[-1].time > timed[-2].time:
                        accepted[name] = timed[-1]
                        report.superseded.append((student, timed[-1].rel, [c.rel for c in timed[:-1]]))
                    else:
                        report.duplicates.append((student, name, [c.rel for c in cands]))
            if not accepted:
                report.missing[student] = others.get(student, [])
            changed = False
            for name in expected:
                target = dest / name
                if name in accepted:
                    data = (root / accepted[name].rel).read_bytes()
                    if not (target.is_file() and target.read_bytes() == data):
                        atomic_write(target, data)
                        changed = True
                elif target.exists():  # a re-collect without this notebook: the old copy must not be graded
                    target.unlink()
                    changed = True
            dest.mkdir(parents=True, exist_ok=True)
            report.accepted[student] = sorted(accepted)
            (report.updated if changed else report.unchanged).append(student)
            info[student] = _student_info(student, accepted, roster_obj)
    if roster_obj is not None:
        save_roster(roster_obj, ws)
    atomic_write(info_path, json.dumps(info, indent=1, sort_keys=True).encode())
    notes = ws / "collect" / f"{assignment}.json"
    atomic_write(notes, json.dumps(dataclasses.asdict(report), indent=1, sort_keys=True).encode())
    return report


def _student_info(student: str, accepted: dict, roster) -> dict:
    """What the late policy and the export need: the submission time (the latest of its notebooks), LMS ids."""
    times = [c.time for c in accepted.values()]
    known = [t for t in times if t is not None]
    meta = next(iter(accepted.values())).meta if accepted else {}
    entry = roster.students.get(student) if roster is not None else None
    return {"submitted_at": max(known).isoformat() if known and len(known) == len(times) else None,
            "time_source": meta.get("time_source"), "lms": meta.get("lms"), "lms_id": meta.get("lms_id"),
            "lms_late": any(c.meta.get("lms_late") for c in accepted.values()),
            "files": {name: c.rel for name, c in accepted.items()},
            "name": entry.name if entry else meta.get("lms_name", ""),
            **({"matched_by": meta["matched_by"]} if "matched_by" in meta else {}),
            **({"renamed_from": {n: c.meta["renamed_from"] for n, c in accepted.items() if "renamed_from" in c.meta}}
               if any("renamed_from" in c.meta for c in accepted.values()) else {})}
