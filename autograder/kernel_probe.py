"""The environment probe: before any cell of a submission runs, can its kernel import what the
assignment needs, from the same place as the grader?

A grading machine whose kernel cannot import ``mnlib`` or ``torch`` (or imports ``mnlib`` from
another checkout) would fail every test cell of every student, and the class would get zeros that
are the grader's fault. ``autograder.execute`` sends :func:`probe`'s source to the fresh kernel as
a cell of its own (no answer has run yet, so the answer is trusted), and grading stops with status
``error`` and the reason when the report disagrees with the grader's own imports.

This file runs in two places: :func:`probe` in the kernel (its source is sent there), the rest in
the grader.
"""
from __future__ import annotations

import ast
import inspect
import json
import os

MARK = "\x1eAG-PROBE\x1e"


def probe(modules):  # runs in the kernel: keep it self-contained
    """Import each module; print {"python": ..., "modules": {name: file or "!Error: message"}}."""
    import importlib
    import json
    import sys
    found = {}
    for name in modules:
        try:
            found[name] = getattr(importlib.import_module(name), "__file__", None) or ""
        except BaseException as exc:  # noqa: BLE001 - any failure to import is what we report
            found[name] = "!" + type(exc).__name__ + ": " + str(exc)[:300]
    return json.dumps({"python": sys.executable, "modules": found})


def request(modules: list[str]) -> str:
    """The code of the probe cell: define the probe, run it, print its report between marks, forget it."""
    return (inspect.getsource(probe) + f"\nprint({MARK!r} + probe({list(modules)!r}) + {MARK!r})\n"
            "del probe\n")


def parse(text: str) -> dict | None:
    """The probe's report from the cell's stdout, or None if it is not there."""
    parts = text.split(MARK)
    if len(parts) < 3:
        return None
    try:
        report = json.loads(parts[1])
    except ValueError:
        return None
    return report if isinstance(report, dict) and isinstance(report.get("modules"), dict) else None


def origin_folder(path: str | None) -> str | None:
    """The folder a module is imported from (its package folder), resolved; None if unknown."""
    if not path:
        return None
    return os.path.dirname(os.path.realpath(path))


def compare(report: dict, grader: dict[str, str | None]) -> list[str]:
    """Problems: modules the kernel cannot import, or imports from another folder than the grader."""
    problems = []
    for name, where in sorted(grader.items()):
        got = report["modules"].get(name)
        if not isinstance(got, str):
            problems.append(f"{name}: not probed")
        elif got.startswith("!"):
            problems.append(f"the kernel cannot import {name} ({got[1:]})")
        elif where is not None and got and origin_folder(got) != where:
            problems.append(f"the kernel imports {name} from {origin_folder(got)}, the grader from {where}")
    return problems


def assignment_modules(source, assignment: str, notebooks: list[str]) -> list[str]:
    """What the assignment's own notebooks ``notebooks`` (in ``source/assignment``) import
    (:func:`needed_modules`). Read as plain JSON: the grade command calls it before it imports
    nbgrader, to start the zygote early."""
    sources = []
    for name in notebooks:
        path = os.path.join(str(source), assignment, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                cells = json.load(f).get("cells", [])
            for cell in cells:
                if cell.get("cell_type") == "code":
                    text = cell.get("source", "")
                    sources.append(text if isinstance(text, str) else "".join(text))
    return needed_modules(sources)


def needed_modules(sources: list[str]) -> list[str]:
    """Top-level modules the assignment's own code imports (reference answers and checks included),
    plus mnlib when the assignment names it; only those the grader itself can import."""
    import importlib.util
    names = set()
    for src in sources:
        if "mnlib" in src:
            names.add("mnlib")
        try:
            tree = ast.parse(src)
        except SyntaxError:  # a cell with IPython magics: its imports are not probed
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    out = []
    for name in sorted(names):
        try:
            if importlib.util.find_spec(name) is not None:
                out.append(name)
        except (ImportError, ValueError):
            continue
    return out
