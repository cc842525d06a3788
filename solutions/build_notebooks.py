"""Write the nbgrader source notebooks solutions/<id>/<id>.ipynb from the sources solutions/<id>_src.py.

Run: .venv/bin/python solutions/build_notebooks.py [ID ...]   (then release them: see tests/nbgrader_harness.py)

Every notebook has the same shape:
1. a hidden 0-point grade cell, first of all code cells, that runs solutions/grading_guard.py and
   the assignment's hidden checks in a private namespace (see grading_guard's docstring for why
   and for its limits);
2. explanations, answer cells (``### BEGIN/END SOLUTION``), and grade cells that open with a
   docstring, run visible self-checks, then call one hidden check ``_ps_grader.<name>(...)``.
The notebooks are generated so that their source stays reviewable as Python here.

The course's grader (autograder/remote.py) runs the setup cell's hidden block and every hidden
check in its own process instead of the kernel; an assignment opts in with ``RUNS_IN_GRADER = True``
in its CHECKS, which must then reach the learner's objects only through what a stand-in allows
(attributes, calls, iteration; ``kernel_eval`` and helpers defined in the kernel for the rest).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat

from autograder.nbgrader_config import GRADER, HIDDEN_BEGIN, HIDDEN_END  # one home of the conventions

sys.dont_write_bytecode = True  # no __pycache__ in solutions/ (nbgrader would see a folder)

HERE = Path(__file__).resolve().parent
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


def setup(assignment: str, checks: str):
    """The hidden 0-point grade cell that must run before any answer cell."""
    guard = (HERE / "grading_guard.py").read_text()
    for text in (guard, checks):
        assert "'''" not in text, "the hidden sources are pasted inside r''' ... ''' literals"
    src = f"""# Grader setup (hidden, 0 points): it runs before your answers. Leave this cell as it is.
{HIDDEN_BEGIN}
def _grader_setup(guard, checks):
    import builtins, types
    ns = {{"__builtins__": dict(vars(builtins)), "__name__": "grader",  # a private copy of the builtins
          "REMOTE": globals().get("_AG_REMOTE"), "GUARD_SOURCE": guard}}  # set when the autograder runs it
    if ns["REMOTE"] is None:  # in the kernel, under plain nbgrader, which zeroes a test cell on any stderr
        import sys  # output: the course's rule (autograder/execute.py, cell_score) is that only an error
        sys.stderr = sys.stdout  # does, so library warnings (matplotlib, torch) go to stdout, on every machine
    exec(compile(guard, "grading_guard.py", "exec"), ns)
    exec(compile(checks, "{assignment}_checks.py", "exec"), ns)
    return types.SimpleNamespace(**{{k: v for k, v in ns.items() if k.startswith("check_")}})


{GRADER} = _grader_setup(r'''{guard}''', r'''{checks}''')
del _grader_setup
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


def build(assignment: str) -> Path:
    sys.path.insert(0, str(HERE))
    mod = importlib.import_module(f"{assignment}_src")
    nb = notebook(mod.cells(setup(assignment, mod.CHECKS)))
    out = HERE / assignment / f"{assignment}.ipynb"
    out.parent.mkdir(exist_ok=True)
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    for a in sys.argv[1:] or IDS:
        print(build(a))
