"""What a learner runs before submitting: the notebook's visible tests, and a plain summary."""
from __future__ import annotations

import pathlib

import nbformat
from nbgrader import utils as nbutils
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput
from traitlets.config import Config

from . import console, sandbox
from .execute import Run, cell_score, failing_line, was_run
from .nbgrader_config import CELL_TIMEOUT_S

STUB = "NotImplementedError"


def selfcheck(notebook, *, timeout_cell: int = CELL_TIMEOUT_S, log=console.stdout) -> bool:
    """Run ``notebook`` top to bottom (hidden tests stripped if any), print a summary; True if all checks pass."""
    path = pathlib.Path(notebook)
    if not path.is_file():
        raise ValueError(f"NOTEBOOK: {path} is not a file")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise ValueError(f"NOTEBOOK: {path} is not a readable notebook ({exc})") from None
    nb, _ = ClearOutput().preprocess(nb, {})
    nb, _ = ClearHiddenTests(enforce_metadata=False).preprocess(nb, {})  # visible tests only, always
    tests = [c for c in nb.cells if nbutils.is_grade(c) and c.cell_type == "code" and not nbutils.is_solution(c)]
    if not tests:
        raise ValueError(f"NOTEBOOK: {path} has no test cells (is it an exercise notebook?)")
    # The learner's own code on the learner's own machine: no sandbox needed, just the time limits.
    run = Run(limits=sandbox.Limits(wall_s=None, cpu_s=None, memory_bytes=None, output_bytes=None,
                                    disk_bytes=None, nproc=None), unsafe=True, wall_s=None)
    resources = {}
    cfg = Config()
    stopped = ""
    try:
        run.cwd = path.parent.resolve()
        run.execute(nb, resources, cfg, timeout_cell)
    except Exception as exc:
        stopped = f"the notebook stopped early ({type(exc).__name__}): later checks did not run"
    finally:
        run.close()
    passed, checks, lines = 0, 0, []
    for cell in tests:
        score, max_score, reason = cell_score(cell)
        gid = cell.metadata.nbgrader["grade_id"]
        doc = _docstring(cell.source)
        if max_score == 0:  # the grader's setup (0 points): no check of yours, but it must run cleanly
            if reason or not was_run(cell):
                stopped = stopped or (f"the setup cell {gid} failed ({reason or 'not run'}): this is not your "
                                      "answer's fault; is the course environment installed (mnlib, torch)?")
            continue
        checks += 1
        if score == max_score:
            passed += 1
            lines.append(f"  pass  {gid}" + (f"  ({doc})" if doc else ""))
        else:
            at = failing_line(cell)
            if at and reason.endswith(":"):  # an assert without a message: show which one failed
                reason += f" at line {at[0]}: {at[1]}"
            lines.append(f"  FAIL  {gid}" + (f"  ({doc})" if doc else "") + (f"\n        {reason}" if reason else ""))
    todo = [c.metadata.nbgrader["grade_id"] for c in nb.cells
            if nbutils.is_solution(c) and c.cell_type == "code" and f"raise {STUB}" in c.source]
    log(f"Self-check of {path.name}: {passed} of {checks} visible checks pass.")
    log("\n".join(lines))
    if todo:
        log(f"Still to write (they raise {STUB}): {', '.join(todo)}")
    if stopped:
        log(stopped)
    log("Visible checks passing does not guarantee full marks: the grader runs more cases.")
    return passed == checks and not stopped


def _docstring(source: str) -> str:
    first = source.strip().splitlines()[0] if source.strip() else ""
    return first.strip('"\' ') if first.startswith(('"""', "'''")) else ""
