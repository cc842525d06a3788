"""The canary: the reference answers, graded first in the same sandbox and environment as the class.

``grade`` puts the canary's job (:data:`CANARY`, :func:`canary_submission`) before every student's and
holds their results until :func:`canary_verdict` says the reference scored full marks; otherwise
nothing is recorded and the batch stops with :class:`CanaryFailed`. The message names what changed
in the reference since the canary last passed (:func:`source_changes`): the files of
:func:`_canary_roots`, hashed by :func:`canary_inputs` on each pass.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import time

import nbformat
from nbgrader import utils as nbutils

from .errors import GradingStopped
from .files import atomic_write
from .options import Options
from .result import StudentResult

CANARY = ".canary"  # the reference answers' pseudo-student (a leading dot: no student id collect accepts)


class CanaryFailed(GradingStopped):
    """The reference answers do not score full marks here: the environment, not the class, is broken.
    Nothing was graded. CLI: exit status 3."""

    exit_status = 3


def canary_submission(opts: Options, notebooks: list[str]) -> dict:
    """The released notebooks with the source's reference answers filled in, as a student would submit
    them, in <workspace>/.canary/<assignment>/; returns the ``where`` of grade_one."""
    ws = pathlib.Path(opts.workspace)
    root = ws / CANARY / opts.assignment
    for name in notebooks:
        source = nbformat.read(pathlib.Path(opts.source) / opts.assignment / name, as_version=4)
        answers = {c.metadata.nbgrader["grade_id"]: _reference(c.source) for c in source.cells
                   if nbutils.is_solution(c) and "grade_id" in c.metadata.get("nbgrader", {})}
        nb = nbformat.read(ws / "release" / opts.assignment / name, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers and nbutils.is_solution(cell):
                cell.source = answers[gid]
        atomic_write(root / "submitted" / name, nbformat.writes(nb).encode())
    return {"submitted": str(root / "submitted"), "autograded": str(root / "autograded")}


def _reference(source: str) -> str:
    """An answer cell of the source notebook without nbgrader's solution markers."""
    return "\n".join(line for line in source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def canary_verdict(opts: Options, res: StudentResult) -> str | None:
    """Why the reference answers' result shows a broken grading environment, or None if they scored full marks.

    A pass records what the reference was made of (``canary_inputs``) in the canary's folder, so that a
    later failure can name what changed since (``source_changes``)."""
    if res.status != "graded":
        why = res.message or res.status
    else:
        lost = [f"{gid} {c.score:g}/{c.max_score:g} ({c.reason or 'no reason recorded'})"
                for gid, c in sorted(res.cells.items()) if c.score is not None and c.score < c.max_score]
        if not lost:
            with contextlib.suppress(OSError):
                atomic_write(_canary_passed(opts), json.dumps(
                    {"at": time.time(), "files": canary_inputs(opts)}, indent=1, sort_keys=True).encode())
            return None
        why = "they lose points: " + "; ".join(lost)
    changes = source_changes(opts)
    return (f"canary: the reference answers of {opts.assignment} (from {opts.source}) do not score full marks "
            f"in this grading environment, so every student would be graded wrongly. Nothing was graded. "
            f"Status {res.status}: {why}. " + (changes + " " if changes else "") +
            f"Fix the environment (the kernel's Python, mnlib, torch, the "
            f"sandbox) or the reference, or, if you know the reference is meant to lose points, pass --no-canary. "
            f"The canary's notebooks are in {pathlib.Path(opts.workspace) / CANARY / opts.assignment}.")


def _canary_passed(opts: Options) -> pathlib.Path:
    return pathlib.Path(opts.workspace) / CANARY / opts.assignment / "passed.json"


def _canary_roots(opts: Options) -> list[pathlib.Path]:
    """The files a reference answer's grading depends on, besides the environment: the assignment's
    source folder, the source's shared top-level files (not another assignment's), where the checks
    are authored beside it (assignments/toolkit.py, loader.py, build.py and assignments/<id>/), and mnlib."""
    source = pathlib.Path(opts.source)
    others = [p.name for p in source.iterdir() if p.is_dir() and p.name != opts.assignment] if source.is_dir() else []
    roots = [source / opts.assignment]
    roots += [p for p in sorted(source.glob("*")) if p.is_file() and p.suffix in (".py", ".json", ".toml", ".txt")
              and not any(p.name.startswith(o + "_") for o in others)]
    authored = source.resolve().parent / "assignments"  # where the checks are authored (assignments/build.py)
    if authored.is_dir():
        roots += sorted(authored.glob("*.py"))  # toolkit.py, loader.py, build.py, __init__.py
        if (authored / opts.assignment).is_dir():
            roots.append(authored / opts.assignment)  # notebook.py, checks.py, kernel.py
    spec = importlib.util.find_spec("mnlib")
    if spec is not None and spec.origin:
        roots.append(pathlib.Path(spec.origin).parent)
    return roots


def canary_inputs(opts: Options) -> dict[str, str]:
    """{path: sha256} of every file in ``_canary_roots`` (caches and checkpoints left out)."""
    out = {}
    for root in _canary_roots(opts):
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts:
                with contextlib.suppress(OSError):
                    out[_shown(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _shown(path: pathlib.Path) -> str:
    """``path`` relative to the working folder when it is under it (solutions/ps1_dsc/...), else absolute."""
    path = pathlib.Path(os.path.abspath(path))
    try:
        return str(path.relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def _listed(names: list[str], most: int = 6) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def source_changes(opts: Options) -> str:
    """A sentence naming what changed in the reference (the assignment's source, solutions/'s shared
    files, mnlib) as the likely cause of a canary failure; '' when nothing is known.

    Since the canary last passed in this workspace, when it did (its record in .canary/); else the
    uncommitted changes git reports there (no git, no repository: skipped); else the files modified
    since the last grading run of the assignment."""
    record = _canary_passed(opts)
    try:
        before = json.loads(record.read_text())
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict) and isinstance(before.get("files"), dict):
        now, old = canary_inputs(opts), before["files"]
        when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(before.get("at") or 0))
        changed = sorted(f for f in now if f in old and now[f] != old[f])
        added, removed = sorted(set(now) - set(old)), sorted(set(old) - set(now))
        if not (changed or added or removed):
            return (f"The reference and mnlib are as they were when the canary last passed here ({when}): "
                    "look at the environment.")
        parts = ([f"changed: {_listed(changed)}"] if changed else []) + \
                ([f"new: {_listed(added)}"] if added else []) + ([f"removed: {_listed(removed)}"] if removed else [])
        return f"Likely cause: the reference changed since the canary last passed here ({when}); " + "; ".join(parts) + "."
    dirty = _git_changes(_canary_roots(opts))
    if dirty:
        return f"Likely cause: uncommitted changes to the reference (git status): {_listed(dirty)}."
    results = [p.stat().st_mtime for p in (pathlib.Path(opts.workspace) / "results" / opts.assignment).glob("*.json")]
    if results:
        last = max(results)
        newer = []
        for root in _canary_roots(opts):
            for f in ([root] if root.is_file() else root.rglob("*")):
                with contextlib.suppress(OSError):
                    if f.is_file() and "__pycache__" not in f.parts and f.stat().st_mtime > last:
                        newer.append(_shown(f))
        if newer:
            return f"Likely cause: files of the reference modified since the last grading run: {_listed(sorted(newer))}."
    return ""


def _git_changes(roots: list[pathlib.Path]) -> list[str]:
    """Files under ``roots`` with uncommitted changes, as git reports them; [] without git or a repository."""
    existing = [r for r in roots if r.exists()]
    if not existing or shutil.which("git") is None:
        return []
    where = existing[0] if existing[0].is_dir() else existing[0].parent
    try:
        top = subprocess.run(["git", "-C", str(where), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode != 0:
            return []
        inside = [str(x.resolve()) for x in existing if x.resolve().is_relative_to(pathlib.Path(top.stdout.strip()))]
        if not inside:
            return []
        r = subprocess.run(["git", "-C", top.stdout.strip(), "status", "--porcelain", "--untracked-files=all", "--",
                            *inside], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if r.returncode != 0:
        return []
    out = []
    for line in r.stdout.splitlines():
        name = line[3:].split(" -> ")[-1].strip().strip('"')
        if name and "__pycache__" not in name:
            out.append(_shown(pathlib.Path(top.stdout.strip()) / name))
    return sorted(out)
