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

An answer that *is* mnlib's code escapes the hidden checks' mnlib guard when it is a copy (pasted
text, or mnlib's file read with ``inspect.getsource`` and run with ``exec`` or ``runpy``): its code
no longer lives in mnlib's files. So a cell that repeats a run of mnlib's source lines, or reads
mnlib's source, is flagged as "mnlib's source" for a person to judge.
"""
from __future__ import annotations

import functools
import importlib.util
import pathlib
import re

from nbgrader import utils as nbutils

# reason -> pattern over one cell's source; (?<![\w.]) keeps torch.compile( and re.compile( out
PATTERNS: dict[str, re.Pattern] = {name: re.compile(rx, re.MULTILINE) for name, rx in {
    "IPython internals": r"\bget_ipython\b|\binput_transformers|\bast_transformers|\brun_cell\b|"
                         r"\bshowtraceback\b|\bdisplay_pub\b|\bdo_execute\b|\bexecution_count\b|"
                         r"\b_ag_\w+|"  # the grader's requests (autograder/remote.py), the kernel's event loop
                         r"\bIOLoop\b|\b(?:add|remove)_handler\b|\biopub_socket\b|"  # and comms that carry them
                         r"\bcomm_manager\b|\bregister_target\b|^\s*(?:from|import)\s+comm\b",
    "frames or tracing": r"\b_getframe\b|\bsettrace\b|\bsetprofile\b|\bcurrentframe\b|\bf_back\b|"
                         r"\bf_locals\b|\bf_globals\b|\bsys\.audit",
    "garbage-collector walk": r"\bgc\s*\.\s*get_(?:objects|referrers|referents)\b",
    "builtins or code objects": r"\b__builtins__\b|\bimport\s+builtins\b|\bbuiltins\s*\.|\b__code__\b|"
                                r"\bCodeType\b|\b__globals__\b|\b__closure__\b",
    "native code": r"\bctypes\b|\bcffi\b",
    "dynamic code": r"(?<![\w.])(?:exec|eval|compile|__import__)\s*\(|\bimportlib\b|"
                    r"\bgetattr\s*\([^,]*,\s*[^,)]*\+|\bsys\s*\.\s*modules\b",
    "shell escapes or magics": r"^\s*[!%]",
    # the answer is mnlib's own code, read at run time (inspect, runpy, mnlib's files)
    "mnlib's source": r"\bgetsource(?:lines)?\b|\brunpy\b|\bmnlib\s*\.\s*(?:\w+\s*\.\s*)?__file__|"
                      r"\bmnlib[/\\]\w+\.py\b|\bfind_spec\s*\(\s*['\"]mnlib",
}.items()}

# A learner cell that repeats this many consecutive lines of mnlib's source (blank lines and comments
# aside, whitespace normalised) is mnlib's text pasted in. The reference answers share at most 3
# (``h, w = y.shape[-2:]`` and the like: the same algorithm written plainly); a function copied with
# its signature and docstring has 5 or more.
COPIED_LINES = 5


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


def _lines(text: str) -> list[str]:
    """Code lines with whitespace normalised; blank lines and whole-line comments left out."""
    out = []
    for line in text.split("\n"):
        t = " ".join(line.split())
        if t and not t.startswith("#"):
            out.append(t)
    return out


@functools.lru_cache(maxsize=1)
def _mnlib_lines() -> dict[str, list[tuple[str, int]]]:
    """normalised line -> [(file, index), ...] over mnlib's source (the copy the kernels import)."""
    spec = importlib.util.find_spec("mnlib")
    index: dict[str, list[tuple[str, int]]] = {}
    if spec is None or not spec.submodule_search_locations:
        return index
    for folder in spec.submodule_search_locations:
        for path in sorted(pathlib.Path(folder).glob("*.py")):
            try:
                lines = _lines(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            for i, t in enumerate(lines):
                index.setdefault(t, []).append((path.name, i))
    return index


def copied_from_mnlib(source: str) -> tuple[int, str] | None:
    """(lines, mnlib file) of the longest run of consecutive lines ``source`` shares with mnlib, if long."""
    index = _mnlib_lines()
    best, where, previous = 0, "", {}
    for t in _lines(source):
        current = {}
        for f, i in index.get(t, ()):
            current[(f, i)] = previous.get((f, i - 1), 0) + 1
            if current[(f, i)] > best:
                best, where = current[(f, i)], f
        previous = current
    return (best, where) if best >= COPIED_LINES else None


def flags(nb) -> list[str]:
    """'<cell>: <reason> (<first match>)' for each learner cell and each reason that matches."""
    found = []
    for label, source in student_code(nb):
        for reason, rx in PATTERNS.items():
            m = rx.search(source)
            if m:
                found.append(f"{label}: {reason} ({m.group(0).strip()[:40]!r})")
        copied = copied_from_mnlib(source)
        if copied and not any(f.startswith(f"{label}: mnlib's source") for f in found):
            found.append(f"{label}: mnlib's source ({copied[0]} consecutive lines as in mnlib/{copied[1]})")
    return found
