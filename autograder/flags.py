"""Flag submissions whose own code reaches into the kernel's machinery, for a person to review.

The hidden tests no longer depend on the kernel (autograder/remote.py runs them in the grader), so
code that patches IPython, builtins or the grader's requests gains nothing. It still has no place
in an answer to these problem sets, and it is how someone would probe the grader. So grading lists
every submission whose code names these hooks (scenarios ``rewrites-test-cells``,
``swallows-errors`` and ``answers-for-the-grader`` in autograder/scenarios/ are flagged).

A flag changes no score and no status: it is a note in the student's result file and a line in
the grade report, for a person to read the notebook. It is a name search, so code written to hide
can avoid it; hiding a name needs ``getattr`` on a string, ``exec``/``eval`` or ``__import__``,
which are flagged too. Course answers need none of these.
"""
from __future__ import annotations

import re

from nbgrader import utils as nbutils

# reason -> pattern over one cell's source; (?<![\w.]) keeps torch.compile( and re.compile( out
PATTERNS: dict[str, re.Pattern] = {name: re.compile(rx, re.MULTILINE) for name, rx in {
    "IPython internals": r"\bget_ipython\b|\binput_transformers|\bast_transformers|\brun_cell\b|"
                         r"\bshowtraceback\b|\bdisplay_pub\b|\bdo_execute\b|\bexecution_count\b|"
                         r"\b_ag_\w+",  # the grader's requests (autograder/remote.py)
    "frames or tracing": r"\b_getframe\b|\bsettrace\b|\bsetprofile\b|\bcurrentframe\b|\bf_back\b|"
                         r"\bf_locals\b|\bf_globals\b|\bsys\.audit",
    "garbage-collector walk": r"\bgc\s*\.\s*get_(?:objects|referrers|referents)\b",
    "builtins or code objects": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.|\b__code__\b|"
                                r"\bCodeType\b|\b__globals__\b|\b__closure__\b",
    "native code": r"\bctypes\b|\bcffi\b",
    "dynamic code": r"(?<![\w.])(?:exec|eval|compile|__import__)\s*\(|\bimportlib\b|"
                    r"\bgetattr\s*\([^,]*,\s*[^,)]*\+|\bsys\s*\.\s*modules\b",
    "shell escapes or magics": r"^\s*[!%]",
}.items()}


def student_code(nb) -> list[tuple[str, str]]:
    """(label, source) of every code cell the learner may write: answer cells and cells they added."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta and not nbutils.is_solution(cell) and (nbutils.is_grade(cell) or meta.get("locked")):
            continue  # test and read-only cells are replaced by the source's before running
        source = cell.get("source", "")
        out.append((meta.get("grade_id") or f"cell {i + 1}", source if isinstance(source, str) else "".join(source)))
    return out


def flags(nb) -> list[str]:
    """'<cell>: <reason> (<first match>)' for each learner cell and each reason that matches."""
    found = []
    for label, source in student_code(nb):
        for reason, rx in PATTERNS.items():
            m = rx.search(source)
            if m:
                found.append(f"{label}: {reason} ({m.group(0).strip()[:40]!r})")
    return found
