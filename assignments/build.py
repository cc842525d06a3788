"""Write the nbgrader source notebooks solutions/<id>/<id>.ipynb from the authored files assignments/<id>/.

Run: .venv/bin/python -m assignments.build [ID ...]   (then release them: ``make release``, see
tests/nbgrader_harness.py)

An assignment is authored in real files (STYLE.md, rule 11):
- assignments/<id>/notebook.py: the notebook's cells in order, in the percent format editors and
  jupytext know (a Python file, so ruff and go-to-definition see every cell). A line ``# %% <kind>``
  opens each cell:
    ``# %% [markdown]``                 lines of ``# text`` (``#`` alone for an empty line);
    ``# %% setup``                      where the hidden setup cell goes; its one line imports the
                                        checks as ``_ps_grader``, so an editor resolves every hidden call;
    ``# %% readonly <grade_id>``        a locked code cell (nbgrader restores its source when grading);
    ``# %% answer <grade_id>``          an answer cell, the reference answer between ``### BEGIN/END SOLUTION``;
    ``# %% tests <grade_id> points=N``  a grade cell: a one-line docstring (the question it asks),
                                        visible self-checks, then one ``### BEGIN/END HIDDEN TESTS``
                                        block that calls a hidden check ``_ps_grader.<name>(...)``;
  ``reference`` after the grade id marks the cells whose text, markers removed, forms the module
  ``assignments/<id>/reference.py`` of the setup cell (no such file: the cells are its one source):
  the solution's helpers, with which a check runs a learner's function in place of the learner's own
  helpers (so a mistake in a helper costs the helper's cells only). A code line
  ``from assignments.<id>.kernel import Name  # pasted by the build`` becomes Name's source;
- assignments/<id>/checks.py: the hidden checks, a module that imports what it uses from
  assignments/toolkit.py (the helpers all assignments share);
- assignments/<id>/kernel.py, where the checks need helpers that run in the learner's kernel.

Every notebook has the same shape:
1. a hidden 0-point grade cell, first of all code cells, that pastes assignments/loader.py's
   ``load_checks`` and the texts it loads (the toolkit, the kernel helpers, the checks) and runs
   them in a private namespace (see the loader's and the toolkit's docstrings for why and for the
   limits). The notebook is the grader's single truth: grading reads nothing from assignments/;
2. explanations, answer cells (``### BEGIN/END SOLUTION``), and grade cells that open with a
   docstring, run visible self-checks, then call one hidden check ``_ps_grader.<name>(...)``.
solutions/ holds only what this writes (and what nbgrader must release with it): nbgrader copies
every file of solutions/<id>/ into the release, so nothing authored may sit there.

The course's grader (autograder/remote.py) runs the setup cell's hidden block and every hidden
check in its own process instead of the kernel; an assignment opts in with ``RUNS_IN_GRADER = True``
in its checks, which must then reach the learner's objects only through what a stand-in allows
(attributes, calls, iteration; ``kernel_eval`` and helpers defined in the kernel for the rest).
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and str(ROOT) not in sys.path:  # run as a file: python assignments/build.py
    sys.path.insert(0, str(ROOT))

from assignments import loader  # noqa: E402
from autograder.nbgrader_config import GRADER, HIDDEN_BEGIN, HIDDEN_END  # noqa: E402  (one home of the conventions)

SOLUTIONS = ROOT / "solutions"
IDS = ("ps1_dsc", "ps2_cost", "ps3_receptive_field", "ps4_inverted_residual", "ps5_v3_blocks",
       "ps6_roofline", "ps7_timing", "ps8_quantization", "ps9_latency_search")


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


class NotebookSourceError(ValueError):
    """assignments/<id>/notebook.py does not follow the cell format (the message names file and line)."""


_HEADER = re.compile(r"# %%(?: (?P<kind>\[markdown\]|setup|readonly|answer|tests)(?P<rest>(?: \S+)*))?\s*$")
_OPTION = re.compile(r"(?P<key>points|reference)(?:=(?P<value>\d+))?$")
_PASTE = re.compile(r"from (?P<module>assignments\.\w+\.kernel) import (?P<name>\w+)  # pasted by the build$")
_GRADE_ID = re.compile(r"[A-Za-z][\w-]*$")


def _paste(line: str) -> str:
    """A ``from assignments.<id>.kernel import Name  # pasted by the build`` line becomes Name's source."""
    found = _PASTE.match(line)
    if found is None:
        return line
    path = ROOT / (found["module"].replace(".", "/") + ".py")
    text = path.read_text()
    node = next((n for n in ast.parse(text).body if getattr(n, "name", None) == found["name"]), None)
    if node is None:
        raise NotebookSourceError(f"{path.relative_to(ROOT)} defines no top-level {found['name']} to paste")
    return ast.get_source_segment(text, node)


def _cell(path: Path, lineno: int, kind: str, rest: list[str], body: list[str]):
    """One notebook cell from its ``# %%`` header (``kind``, ``rest``) and its lines."""
    where = f"{path.relative_to(ROOT)}:{lineno}"
    if kind == "[markdown]":
        bad = [line for line in body if line not in ("", "#") and not line.startswith("# ")]
        if bad or rest:
            raise NotebookSourceError(f"{where}: a markdown cell is lines of '# text' (or '#'), got {(bad or rest)[0]!r}")
        text = "\n".join("" if line in ("", "#") else line[2:] for line in body)
        return nbformat.v4.new_markdown_cell(text.strip("\n")), False
    if kind == "setup":
        return None, False
    if not rest or not _GRADE_ID.match(rest[0]):
        raise NotebookSourceError(f"{where}: a {kind} cell's header names its grade id: '# %% {kind} <grade_id>'")
    grade_id, options = rest[0], {}
    for word in rest[1:]:
        opt = _OPTION.match(word)
        if opt is None:
            raise NotebookSourceError(f"{where}: unknown option {word!r} (points=N, reference)")
        options[opt["key"]] = int(opt["value"]) if opt["value"] else True
    text = "\n".join(_paste(line) for line in body).strip("\n")
    if kind == "tests":
        if "points" not in options:
            raise NotebookSourceError(f"{where}: a tests cell says its points: '# %% tests {grade_id} points=N'")
        lines = text.split("\n")
        if not (lines[0].startswith('"""') and lines[0].endswith('"""') and len(lines[0]) > 6):
            raise NotebookSourceError(f"{where}: a tests cell opens with a one-line docstring, the question it asks")
        if lines.count(HIDDEN_BEGIN) != 1 or lines[-1] != HIDDEN_END or lines.count(HIDDEN_END) != 1:
            raise NotebookSourceError(f"{where}: a tests cell ends with one {HIDDEN_BEGIN} ... {HIDDEN_END} block")
        meta = _meta(grade_id, grade=True, locked=True, points=options["points"])
    elif "points" in options:
        raise NotebookSourceError(f"{where}: only a tests cell has points")
    else:
        meta = _meta(grade_id, locked=kind == "readonly", solution=kind == "answer")
    hidden = text.split(HIDDEN_BEGIN)[-1] if kind == "tests" else ""
    if GRADER in text.replace(hidden, ""):
        raise NotebookSourceError(f"{where}: {GRADER} may appear only inside the hidden block")
    return nbformat.v4.new_code_cell(text, metadata=meta), bool(options.get("reference"))


def parse(assignment: str, text: str | None = None):
    """The cells of assignments/<assignment>/notebook.py (or of ``text``, read as that file), in order
    (``None`` where the setup cell goes), and the grade ids of the cells marked ``reference``."""
    path = ROOT / "assignments" / assignment / "notebook.py"
    lines = (path.read_text() if text is None else text).split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("# %%")]
    cells, reference = [], []
    setup_line = f"from assignments.{assignment} import checks as {GRADER}  # the build writes the setup cell here"
    for n, start in enumerate(starts):
        header = _HEADER.match(lines[start])
        if header is None or header["kind"] is None:
            raise NotebookSourceError(f"{path.relative_to(ROOT)}:{start + 1}: unknown cell header {lines[start]!r}")
        body = lines[start + 1:starts[n + 1] if n + 1 < len(starts) else len(lines)]
        if header["kind"] == "setup" and [b for b in body if b.strip()] != [setup_line]:
            raise NotebookSourceError(f"{path.relative_to(ROOT)}:{start + 1}: the setup cell holds one line, {setup_line!r}")
        cell, ref = _cell(path, start + 1, header["kind"], header["rest"].split(), body)
        cells.append(cell)
        if ref:
            reference.append(cell.metadata.nbgrader["grade_id"])
    first_code = next((i for i, c in enumerate(cells) if c is None or c.cell_type == "code"), None)
    if sum(c is None for c in cells) != 1 or cells[first_code] is not None:
        raise NotebookSourceError(f"{path.relative_to(ROOT)}: one '# %% setup' cell, before the first code cell")
    return cells, reference


def setup(assignment: str, texts: dict[str, str]):
    """The hidden 0-point grade cell that must run before any answer cell.

    ``texts``: {path: text} for ``loader.load_checks`` (the toolkit first, the checks last).
    """
    for path, text in texts.items():
        assert "'''" not in text, f"{path}: the hidden sources are pasted inside r''' ... ''' literals"
        assert not text.endswith("\\"), f"{path}: a raw literal cannot end with a backslash"
    pasted = "".join(f"    {path!r}: r'''{text}''',\n" for path, text in texts.items())
    src = f"""# Grader setup (hidden, 0 points): it runs before your answers. Leave this cell as it is.
{HIDDEN_BEGIN}
{inspect.getsource(loader.load_checks)}

{inspect.getsource(loader.check_functions)}

{GRADER} = check_functions(load_checks({{
{pasted}}}, remote=globals().get("_AG_REMOTE"),  # _AG_REMOTE: set when the autograder runs it
    stderr_to_stdout=globals().get("_AG_REMOTE") is None))
del load_checks, check_functions
{HIDDEN_END}"""
    return nbformat.v4.new_code_cell(src, metadata=_meta(f"{assignment}_grader_setup", grade=True,
                                                         locked=True, points=0))


def notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):  # stable ids so regenerating gives the same file
        cell.id = f"{cell.metadata.get('nbgrader', {}).get('grade_id', 'md')}-{i}".replace("_", "-")
    nbformat.validate(nb)
    return nb


def reference_text(cells, keep) -> str:
    """The cells of ``cells`` whose grade id is in ``keep``, in order, with the ``### BEGIN/END
    SOLUTION`` lines removed, two blank lines apart: a module's text."""
    parts = []
    for c in cells:
        if c is not None and c.metadata.get("nbgrader", {}).get("grade_id") in keep:
            parts.append("\n".join(line for line in c.source.split("\n")
                                   if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")))
    return "\n\n\n".join(parts)


def texts(assignment: str) -> dict[str, str]:
    """{path: text} the setup cell of ``assignment`` loads, in order: the toolkit, the kernel helpers
    if any, from the files, the cells marked ``reference`` in notebook.py if any (as
    assignments/<id>/reference.py), the checks.
    """
    found = {loader.TOOLKIT: (ROOT / loader.TOOLKIT).read_text()}
    kernel = f"assignments/{assignment}/kernel.py"
    if (ROOT / kernel).is_file():
        found[kernel] = (ROOT / kernel).read_text()
    cells, reference = parse(assignment)
    if reference:
        found[f"assignments/{assignment}/reference.py"] = reference_text(cells, reference)
    checks = f"assignments/{assignment}/checks.py"
    found[checks] = (ROOT / checks).read_text()
    return found


def load(assignment: str, remote=None, replace: dict[str, str] | None = None):
    """The checks module the setup cell of ``assignment`` builds, loaded here from the files (for the
    tests). ``replace``: {path: text} to load in place of a file's text (a test's variant)."""
    found = texts(assignment)
    unknown = set(replace or {}) - set(found)
    if unknown:
        raise ValueError(f"{sorted(unknown)}: not among {assignment}'s texts {list(found)}")
    return loader.load_checks({**found, **(replace or {})}, remote=remote)


def make(assignment: str) -> nbformat.NotebookNode:
    """The source notebook of ``assignment``, from its authored files."""
    cells, _ = parse(assignment)
    setup_cell = setup(assignment, texts(assignment))
    return notebook([setup_cell if c is None else c for c in cells])


def build(assignment: str) -> Path:
    out = SOLUTIONS / assignment / f"{assignment}.ipynb"
    out.parent.mkdir(exist_ok=True)
    nbformat.write(make(assignment), out)
    return out


def main(argv: list[str]) -> None:
    for a in argv or IDS:
        print(build(a))


if __name__ == "__main__":
    main(sys.argv[1:])
