"""Write the sample class autograder/samples/ps1_dsc/<student>/ps1_dsc.ipynb (run after `release`).

Ten submissions built from the released notebook, named for what they are: right answers, right
answers with harmless stderr noise, partial, blank, two plausible mistakes (taken from the
assignment's scenario notebooks), a syntax error, a deleted test cell, an unreadable file and a
misnamed file. ``make grade`` collects and grades them; README "Grading a class" walks through it.
"""
from __future__ import annotations

import pathlib
import shutil

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[2]
ASSIGNMENT = "ps1_dsc"
OUT = pathlib.Path(__file__).resolve().parent / ASSIGNMENT
SCENARIOS = REPO / "tests" / "scenarios" / ASSIGNMENT


def _answers() -> dict[str, str]:
    """grade_id -> the solution source without its BEGIN/END SOLUTION markers."""
    src = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    out = {}
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(line for line in cell.source.splitlines()
                                              if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
    return out


def _released():
    return nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def _fill(nb, answers: dict[str, str]):
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def submissions() -> dict[str, object]:
    """student id -> notebook node, or bytes for a file that is not a notebook."""
    answers = _answers()
    ids = list(answers)
    subs = {
        "s01_right": _fill(_released(), answers),
        "s04_blank": _released(),
        "s03_partial": _fill(_released(), {ids[0]: answers[ids[0]]}),
    }
    noisy = dict(answers)
    noisy[ids[0]] = ("import sys, warnings\nprint('UserWarning: TypedStorage is deprecated', file=sys.stderr)\n"
                     "warnings.warn('a harmless warning on stderr')\n" + answers[ids[0]])
    subs["s02_right_with_stderr_noise"] = _fill(_released(), noisy)
    for name, student in (("missing-bn", "s05_missing_bn"), ("padding-fixed-at-1", "s06_padding_off")):
        path = SCENARIOS / f"{name}.ipynb"
        if path.is_file():
            subs[student] = nbformat.read(path, as_version=4)
    broken = dict(answers)
    broken[ids[-1]] = answers[ids[-1]] + "\n\ndef oops(:\n    pass\n"
    subs["s07_syntax_error"] = _fill(_released(), broken)
    deleted = _fill(_released(), answers)
    deleted.cells = [c for c in deleted.cells
                     if not (c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("points"))]
    subs["s08_deleted_test_cells"] = deleted
    subs["s09_unreadable"] = nbformat.writes(_fill(_released(), answers)).encode()[:500]  # a cut-off upload
    return subs


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    for student, nb in submissions().items():
        path = OUT / student / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        else:
            nbformat.write(nb, path)
    # Saved under the wrong name: collect reports it and grading records the student as missing.
    misnamed = OUT / "s10_misnamed" / f"{ASSIGNMENT} (1).ipynb"
    misnamed.parent.mkdir()
    nbformat.write(_fill(_released(), _answers()), misnamed)
    print(f"{len(list(OUT.iterdir()))} submissions under {OUT}")


if __name__ == "__main__":
    main()
