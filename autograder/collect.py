"""Bring a class's submissions into a workspace: a folder of <student_id>/<notebook>, or its zip.

Only exact names are accepted: ``<student>/<notebook>`` or nbgrader's own
``<student>/<assignment>/<notebook>``. Everything else is reported (misnamed notebook, duplicate,
unmatched file, bad student id), never guessed: an instructor renames and collects again.
A student whose folder holds no accepted notebook is still collected, empty, so that grading
records "missing" for them with the reason collect found.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import shutil
import tempfile
import zipfile

from .grade import atomic_write
from .release import notebook_names
from .nbgrader_config import SOURCE

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
IGNORED = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.DS_Store|Thumbs\.db)(/|$)|(^|/)\._")


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

    def problems(self) -> int:
        return len(self.misnamed) + len(self.duplicates) + len(self.unmatched) + len(self.bad_ids) + len(self.missing)

    def lines(self) -> list[str]:
        out = [f"collected {len(self.accepted)} student(s): {len(self.updated)} new or changed, "
               f"{len(self.unchanged)} unchanged"]
        for student, found in sorted(self.missing.items()):
            out.append(f"MISSING   {student}: no accepted notebook" + (f" (found: {', '.join(found)})" if found else ""))
        for path, expected in self.misnamed:
            out.append(f"MISNAMED  {path}: expected {expected}; not collected")
        for student, name, paths in self.duplicates:
            out.append(f"DUPLICATE {student}/{name}: {' and '.join(paths)}; none collected")
        for path in self.unmatched:
            out.append(f"UNMATCHED {path}: not in <student_id>/<notebook> layout; ignored")
        for name in self.bad_ids:
            out.append(f"BAD ID    {name!r}: not a student id (letters, digits, _.@+-); ignored")
        out += [f"note: {n}" for n in self.notes]
        if self.ignored:
            out.append(f"ignored {len(self.ignored)} system file(s) (__MACOSX, .DS_Store, checkpoints)")
        return out


def _files(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*") if p.is_file())


def _extract(zpath: pathlib.Path, dest: pathlib.Path, report: Report) -> pathlib.Path:
    """Unzip safely (no absolute paths, no ..); a zip whose one top folder wraps the student folders is rooted there."""
    with zipfile.ZipFile(zpath) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        for name in sorted(set(names)):
            parts = pathlib.PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts:
                report.unmatched.append(name)
            elif names.count(name) > 1:  # the same path twice in one archive: keep neither
                report.duplicates.append((parts[0], "/".join(parts[1:]), [name] * names.count(name)))
            else:
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    tops = [p for p in dest.iterdir() if not IGNORED.search(p.name)]
    if len(tops) == 1 and tops[0].is_dir():
        inner = list(tops[0].iterdir())
        if inner and all(p.is_dir() for p in inner if not IGNORED.search(p.name)):
            report.notes.append(f"the zip wraps everything in {tops[0].name}/: student folders read from there")
            return tops[0]
    return dest


def collect(source, *, assignment: str, workspace, source_dir=SOURCE) -> Report:
    """Copy accepted notebooks to ``workspace/submitted/<student>/<assignment>/``; return the report."""
    source = pathlib.Path(source)
    if not source.exists():
        raise ValueError(f"SOURCE: {source} does not exist")
    expected = notebook_names(assignment, source_dir)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="collect-") as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise ValueError(f"SOURCE: {source} is neither a folder nor a zip file")
            root = _extract(source, pathlib.Path(tmp), report)
        else:
            root = source
        found: dict[str, dict[str, list[str]]] = {}  # student -> notebook -> paths
        others: dict[str, list[str]] = {}
        for rel in _files(root):
            if IGNORED.search(rel):
                report.ignored.append(rel)
                continue
            parts = rel.split("/")
            if len(parts) < 2:
                report.unmatched.append(rel)
                continue
            student = parts[0]
            if not STUDENT_ID.match(student):
                if student not in report.bad_ids:
                    report.bad_ids.append(student)
                continue
            found.setdefault(student, {})
            name = parts[-1]
            exact = (len(parts) == 2 or (len(parts) == 3 and parts[1] == assignment)) and name in expected
            if exact:
                found[student].setdefault(name, []).append(rel)
            elif name.endswith(".ipynb"):
                report.misnamed.append((rel, f"{student}/{expected[0]}" if len(expected) == 1
                                        else f"{student}/<one of {', '.join(expected)}>"))
                others.setdefault(student, []).append(rel)
            else:
                report.unmatched.append(rel)
        folded: dict[str, list[str]] = {}
        for student in found:
            folded.setdefault(student.lower(), []).append(student)
        for group in folded.values():
            if len(group) > 1:  # "Alice" and "alice": one person or two? not ours to guess
                for student in group:
                    report.duplicates.append((student, "*", sorted(group)))
                    del found[student]
        ws = pathlib.Path(workspace)
        for student in sorted(found):
            dest = ws / "submitted" / student / assignment
            accepted = {}
            for name, paths in found[student].items():
                if len(paths) > 1:
                    report.duplicates.append((student, name, paths))
                else:
                    accepted[name] = root / paths[0]
            if not accepted:
                report.missing[student] = others.get(student, [])
            changed = False
            for name in expected:
                target = dest / name
                if name in accepted:
                    data = accepted[name].read_bytes()
                    if not (target.is_file() and target.read_bytes() == data):
                        atomic_write(target, data)
                        changed = True
                elif target.exists():  # a re-collect without this notebook: the old copy must not be graded
                    target.unlink()
                    changed = True
            dest.mkdir(parents=True, exist_ok=True)
            report.accepted[student] = sorted(accepted)
            (report.updated if changed else report.unchanged).append(student)
    notes = ws / "collect" / f"{assignment}.json"
    atomic_write(notes, json.dumps(dataclasses.asdict(report), indent=1, sort_keys=True).encode())
    return report
