"""Write the nbgrader source notebooks solutions/<id>/<id>.ipynb from the authored files assignments/<id>/.

Run: .venv/bin/python -m assignments.build [ID ...]   (then release them: ``make release``, see
tests/nbgrader_harness.py)

An assignment is authored in real files (STYLE.md, rule 11):
- assignments/<id>/cells.py: ``cells(setup_cell)``, the notebook's cells in order (markdown, the
  reference answers between ``### BEGIN/END SOLUTION``, visible self-checks);
- assignments/<id>/checks.py: the hidden checks, a module that imports what it uses from
  assignments/toolkit.py (the helpers all assignments share);
- assignments/<id>/kernel.py, where the checks need helpers that run in the learner's kernel;
- where a check runs a learner's function with the solution's helpers in place of the learner's own
  (so a mistake in a helper costs the helper's cells only), cells.py defines ``reference_src()``: the
  text of those reference answers, built from the answer cells (``reference_text``). The setup cell
  loads it as the module ``assignments/<id>/reference.py`` (no such file: the cells are its one
  source), which the checks import and send to the kernel.

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

import importlib
import inspect
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


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def readonly(grade_id: str, text: str):
    """A locked code cell (nbgrader restores its source when grading)."""
    return nbformat.v4.new_code_cell(text.strip("\n"), metadata=_meta(grade_id, locked=True))


def answer(grade_id: str, text: str):
    return nbformat.v4.new_code_cell(text.strip("\n"), metadata=_meta(grade_id, solution=True))


def tests(grade_id: str, points: int, doc: str, visible: str, hidden: str):
    """A grade cell: docstring, visible self-checks, then the hidden block."""
    src = f'"""{doc}"""\n{visible.strip()}\n{HIDDEN_BEGIN}\n{hidden.strip()}\n{HIDDEN_END}'
    return nbformat.v4.new_code_cell(src, metadata=_meta(grade_id, grade=True, locked=True, points=points))


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


def reference_text(cells, keep, head: str = "") -> str:
    """The cells of ``cells`` whose grade id is in ``keep``, in order, with the ``### BEGIN/END
    SOLUTION`` lines removed, after ``head`` (if any), two blank lines apart: a module's text."""
    parts = [head] if head else []
    for c in cells:
        if c is not None and c.metadata.get("nbgrader", {}).get("grade_id") in keep:
            parts.append("\n".join(line for line in c.source.split("\n")
                                   if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")))
    return "\n\n\n".join(parts)


def texts(assignment: str) -> dict[str, str]:
    """{path: text} the setup cell of ``assignment`` loads, in order: the toolkit, the kernel helpers
    if any, from the files, the reference answers if cells.py defines ``reference_src`` (as
    assignments/<id>/reference.py), the checks.
    """
    found = {loader.TOOLKIT: (ROOT / loader.TOOLKIT).read_text()}
    kernel = f"assignments/{assignment}/kernel.py"
    if (ROOT / kernel).is_file():
        found[kernel] = (ROOT / kernel).read_text()
    reference_src = getattr(importlib.import_module(f"assignments.{assignment}.cells"), "reference_src", None)
    if reference_src is not None:
        found[f"assignments/{assignment}/reference.py"] = reference_src()
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
    cells = importlib.import_module(f"assignments.{assignment}.cells").cells
    return notebook(cells(setup(assignment, texts(assignment))))


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
