"""Does any book page print the reference code of a graded function openly, next to its exercise?

The list of graded functions is derived from the assignments' sources (assignments/<id>/checks.py and
notebook.py), not typed here: (a) every mnlib function
or class that a hidden check compares against (``mnlib.<module>.<name>`` or an alias of an imported mnlib
module in the checks' text), and (b) every function or class that a
learner writes in an answer cell and that mnlib also defines under that name. Model builders and
configuration tables the checks only feed to a learner's function (``mnlib.models``, ``mnlib.configs``)
are inputs, not answers, unless learners write them too (ps4's ``mobilenet_v2``).

A page may show such code only inside a collapsed block titled "Reference implementation — open
after the assignment" (DESIGN.md; STYLE.md rule 13).
"""
import ast
import importlib
import re
from pathlib import Path

import pytest

from assignments import build

ROOT = Path(__file__).resolve().parents[1]
AUTHORED = sorted(p.parent for p in (ROOT / "assignments").glob("ps*/checks.py"))
PAGES = sorted((ROOT / "book").rglob("*.md"))
TITLE = "Reference implementation — open after the assignment"
INPUT_MODULES = {"models", "configs"}


def _mnlib_modules():
    return {p.stem: importlib.import_module(f"mnlib.{p.stem}") for p in (ROOT / "mnlib").glob("*.py")
            if not p.stem.startswith("_")}


def _text(node) -> str:
    """The text of a string literal; an f-string's literal parts (its {fields} left out)."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):   # "..." + f"..." + ...
        return _text(node.left) + _text(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""                                                           # a name or a call: not text we can see


def _answer_names(assignment: str) -> set[str]:
    """Top-level defs and classes of the answer cells of assignments/<assignment>/notebook.py."""
    cells, _ = build.parse(assignment)
    return {name for c in cells if c is not None and c.metadata.get("nbgrader", {}).get("solution")
            for name in re.findall(r"^(?:def|class) (\w+)", c.source, re.M)}


def _sources():
    """(assignment, text of its hidden checks and kernel helpers) for every assignment."""
    for folder in AUTHORED:
        kernel = folder / "kernel.py"
        checks = (folder / "checks.py").read_text() + (kernel.read_text() if kernel.is_file() else "")
        yield folder.name, checks


def graded_functions() -> dict[str, set[str]]:
    """{mnlib object name: assignments that grade it}."""
    mods = _mnlib_modules()
    out: dict[str, set[str]] = {}
    for ps, checks in _sources():
        alias = {a: m for m, a in re.findall(r"import mnlib\.(\w+) as (\w+)", checks)}
        refs = set(re.findall(r"\bmnlib\.(\w+)\.(\w+)", checks))
        refs |= {(alias[a], n) for a, n in re.findall(r"\b(\w+)\.(\w+)", checks) if a in alias}
        for m, names in re.findall(r"from mnlib\.(\w+) import ([\w, ]+)", checks):
            refs |= {(m, n.strip()) for n in names.split(",")}
        for mod, name in refs:
            if mod in mods and mod not in INPUT_MODULES and callable(getattr(mods[mod], name, None)):
                out.setdefault(name, set()).add(ps)
        for name in _answer_names(ps):
            if any(callable(getattr(m, name, None)) for m in mods.values()):
                out.setdefault(name, set()).add(ps)
    return out


def test_the_derived_list_covers_every_assignment_with_an_mnlib_reference():
    """The derivation must find something: the known cases of issue 22 are among what it derives."""
    graded = graded_functions()
    for name in ("DepthwiseSeparableConv", "dsc_macs", "InvertedResidual", "SqueezeExcitation", "HardSwish",
                 "quantize_multiplier", "requantize", "inverted_residual_macs", "conv_intensity", "compare"):
        assert name in graded, f"{name} not derived from the assignment sources: {sorted(graded)}"
    assert "mobilenet_v1" not in graded          # an input of ps2/ps3's checks, not an answer
    assert {ps for v in graded.values() for ps in v} >= {"ps1_dsc", "ps2_cost", "ps4_inverted_residual",
                                                          "ps5_v3_blocks", "ps6_roofline", "ps7_timing",
                                                          "ps8_quantization"}


def open_reference_code(text: str, graded: dict) -> list[str]:
    """Every literalinclude of a graded object outside a collapsed reference block, as 'line: name'."""
    found, stack = [], []              # stack of open colon fences: (fence length, is a reference dropdown)
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^(:{3,})\{(\w[\w-]*)\}\s*(.*)$", line)
        if m:
            stack.append((len(m.group(1)), m.group(2) == "dropdown" and m.group(3).startswith(TITLE)))
            continue
        if stack and re.fullmatch(r":{3,}\s*", line) and len(line.strip()) == stack[-1][0]:
            stack.pop()
            continue
        m = re.match(r"^:pyobject:\s*([\w.]+)", line)
        if m and m.group(1).split(".")[0] in graded and not any(ref for _, ref in stack):
            found.append(f"{i}: {m.group(1)}")
    return found


def test_the_scanner_finds_open_code_and_accepts_the_collapsed_block():
    graded = {"dsc_macs": {"ps2_cost"}}
    shown = "```{literalinclude} ../../mnlib/cost.py\n:pyobject: dsc_macs\n```\n"
    assert open_reference_code(shown, graded) == ["2: dsc_macs"]
    folded = f":::{{dropdown}} {TITLE} (problem set 2)\n{shown}:::\n"
    assert open_reference_code(folded, graded) == []
    other = f":::{{note}} {TITLE}\n{shown}:::\n"                   # not collapsed
    assert open_reference_code(other, graded) == ["3: dsc_macs"]
    after = folded + shown                                        # the block is closed again
    assert open_reference_code(after, graded) == ["7: dsc_macs"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "book")))
def test_no_page_shows_a_graded_function_openly(page):
    found = open_reference_code(page.read_text(), graded_functions())
    assert not found, (f"{page.name} shows graded reference code openly (lines {found}); put it in a "
                       f":::{{dropdown}} {TITLE} (...) block")
