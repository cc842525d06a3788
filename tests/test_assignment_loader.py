"""assignments/loader.py: the grader's private namespace, built from the authored files' texts.

Does a hidden check's traceback name its real file and line? Do the checks' imports resolve without
the package ``assignments`` and without anything the learner's code can reach through sys.modules or
the builtins? Are a check's outcomes decided by their types, not their wording?
"""
import builtins
import sys
import traceback

import pytest
import torch

from assignments import build, loader
from helpers import ROOT

TOOLKIT = (ROOT / loader.TOOLKIT).read_text()

KERNEL = '''
class Probe:
    """A helper that runs where the learner's code runs."""
'''

CHECKS = '''
import math

import assignments.fx.kernel as kernel_too
from assignments import toolkit
from assignments.fx import kernel
from assignments.fx.kernel import Probe
from assignments.toolkit import Fail, kernel_define, need

RUNS_IN_GRADER = True
KERNEL_PROBE = kernel_define(kernel, "Probe")


def check_unit(value):
    need(abs(value) == 1 and math.isfinite(value), "expected 1 or -1")
'''


def _fixture():
    return loader.load_checks({loader.TOOLKIT: TOOLKIT, "assignments/fx/kernel.py": KERNEL,
                               "assignments/fx/checks.py": CHECKS})


def test_a_broken_check_names_its_real_file_and_line():
    """Does a check that raises show assignments/ps1_dsc/checks.py and the line that raised, both when
    loaded here and when the notebook's setup cell runs the pasted text?"""
    path = "assignments/ps1_dsc/checks.py"
    lines = (ROOT / path).read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("def check_param_counts")) + 1
    lines.insert(at + 1, "    1 / 0  # broken on purpose\n")  # the check's first line, after the def and its scan
    broken = "".join(lines)
    want = at + 2  # 1-based number of the inserted line

    checks = build.load("ps1_dsc", replace={path: broken})
    with pytest.raises(ZeroDivisionError) as raised:
        checks.check_param_counts(None, None)
    last = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert (last.filename, last.lineno, last.name) == (path, want, "check_param_counts")

    texts = build.texts("ps1_dsc")
    cell = build.setup("ps1_dsc", {**texts, path: broken})
    hidden = cell.source.split("### BEGIN HIDDEN TESTS\n", 1)[1].split("### END HIDDEN TESTS", 1)[0]
    ns = {"__name__": "__main__", "_AG_REMOTE": None}
    stderr = sys.stderr
    try:
        exec(compile(hidden, "setup", "exec"), ns)
    finally:
        sys.stderr = stderr  # the setup cell sends stderr to stdout, as under plain nbgrader
    with pytest.raises(ZeroDivisionError) as raised:
        ns["_ps_grader"].check_param_counts(None, None)
    last = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (path, want)


def test_the_checks_import_private_modules_that_sys_modules_never_sees():
    """Do ``import assignments.x``, ``from assignments.x import y`` and ``from assignments import x`` give
    the loader's own modules, none of them in sys.modules, the kernel helpers' text available to
    kernel_define, and an unknown assignments module a clear ImportError?"""
    checks = _fixture()
    toolkit = checks.toolkit
    assert checks.kernel is checks.kernel_too and checks.Probe is checks.kernel.Probe
    assert checks.Fail is toolkit.Fail and checks.need.__globals__ is vars(toolkit)
    assert checks.KERNEL_PROBE is not checks.Probe and checks.KERNEL_PROBE.__name__ == "Probe"  # defined anew
    loaded = {id(checks), id(toolkit), id(checks.kernel)}
    assert not any(id(m) in loaded for m in list(sys.modules.values()))
    assert toolkit.REMOTE is None and toolkit.GUARD_SOURCE == TOOLKIT
    assert checks.__file__ == "assignments/fx/checks.py" and checks.check_unit.__module__ == "assignments.fx.checks"
    with pytest.raises(ModuleNotFoundError, match="assignments.fx.other"):
        loader.load_checks({loader.TOOLKIT: TOOLKIT, "assignments/fx/checks.py": "import assignments.fx.other\n"})


def test_answers_that_patch_builtins_or_the_import_do_not_reach_the_checks(monkeypatch):
    """Replacing builtins.abs or builtins.__import__ after the setup ran changes nothing for the checks."""
    checks = _fixture()
    monkeypatch.setattr(builtins, "abs", lambda x: 1)
    monkeypatch.setattr(builtins, "__import__", lambda *a, **k: (_ for _ in ()).throw(ImportError("patched")))
    checks.check_unit(-1)
    with pytest.raises(checks.Fail, match="expected 1 or -1"):
        checks.check_unit(5)


def test_outcomes_are_decided_by_type_not_by_wording():
    """Does each_case (and Cases) stop at once on NotOwnWork or ProfilerTampered whatever their message,
    and take a plain Fail as one failed case even when its words sound like a cheat?"""
    tk = _fixture().toolkit
    plain = "the exercise is to write it yourself; leave sys.setprofile alone"

    def raising(exc):
        def check(case):
            if case == 2:
                raise exc
        return check

    for whole in (tk.NotOwnWork("used a library"), tk.ProfilerTampered("replaced the hook")):
        with pytest.raises(type(whole)):
            tk.each_case("what", [1, 2, 3], raising(whole))
        cases = tk.Cases(points=3)
        with pytest.raises(type(whole)):
            for case in (1, 2, 3):
                with cases.case(f"case {case}"):
                    raising(whole)(case)
    with pytest.raises(tk.Fail, match=r"what: 1 of 3 cases failed") as failed:
        tk.each_case("what", [1, 2, 3], raising(tk.Fail(plain)))
    assert type(failed.value) is tk.Fail
    cases = tk.Cases(points=3)
    for case in (1, 2, 3):
        with cases.case(f"case {case}"):
            raising(tk.Fail(plain))(case)
    assert cases.result() == 2.0


def test_a_guarded_call_into_mnlib_is_not_own_work():
    """In the kernel (REMOTE None), Guard and scan raise NotOwnWork for an answer that uses mnlib, and
    Guard raises ProfilerTampered for one that replaces the profile hook it watches with."""
    import mnlib.cost

    tk = _fixture().toolkit
    with pytest.raises(tk.NotOwnWork):
        tk.Guard(["cost.py"]).call("dsc_params", lambda: mnlib.cost.dsc_params(3, 8, 3))
    with pytest.raises(tk.NotOwnWork):
        tk.scan(mnlib.cost.dsc_params, "dsc_params")
    assert tk.Guard(["cost.py"]).call("own", lambda: torch.ones(1).sum().item()) == 1.0
    with pytest.raises(tk.ProfilerTampered, match="leave sys.setprofile alone"):
        tk.Guard(["cost.py"]).call("tampers", lambda: sys.setprofile(None))


def _long_string_lines(path, longest=5):
    """Lines of ``path``'s string literals longer than ``longest`` lines, docstrings excluded: source
    written as text, which no linter, editor or import graph sees."""
    import ast
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in ast.walk(node) if v is not node}
    total = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Constant, ast.JoinedStr)) and id(node) not in docstrings | parts:
            if isinstance(node, ast.Constant) and not isinstance(node.value, str):
                continue
            n = node.end_lineno - node.lineno + 1
            total += n if n > longest else 0
    return total


def test_no_cell_check_or_kernel_helper_is_authored_as_a_string():
    """Is every notebook cell, hidden check and kernel helper of the nine assignments authored as code
    (assignments/<id>/notebook.py, checks.py, kernel.py), not as text inside a string literal? The one
    long literal left is build.py's template of the setup cell (it writes the cell, it is no cell's
    source)."""
    found = {str(p.relative_to(ROOT)): _long_string_lines(p) for p in sorted((ROOT / "assignments").rglob("*.py"))}
    long = {p: n for p, n in found.items() if n}
    print(f"lines in string literals over 5 lines under assignments/: {sum(long.values())} {long}")
    assert set(long) <= {"assignments/build.py"} and sum(long.values()) <= 15, long
    assert sorted(p.parent.name for p in (ROOT / "assignments").glob("*/notebook.py")) == sorted(build.IDS)


def test_the_measure_sees_source_in_strings(tmp_path):
    """The measure above counts a multi-line literal and leaves docstrings out."""
    f = tmp_path / "x.py"
    f.write_text('"""doc\n\n\n\n\n\n"""\nCELL = """\na = 1\nb = 2\nc = 3\nd = 4\ne = 5\n"""\nshort = """\n1\n"""\n')
    assert _long_string_lines(f) == 7


NOTEBOOK = '''"""A notebook of two cells."""


# %% [markdown]
# # Title
#
#     indented $x \\\\times y$

# %% setup
from assignments.ps1_dsc import checks as _ps_grader  # the build writes the setup cell here

# %% answer fx_answer reference
def f(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% tests fx_f points=3
"""Does f double?"""
assert f(2) == 4
### BEGIN HIDDEN TESTS
_ps_grader.check_f(f)
### END HIDDEN TESTS
'''


def test_the_notebook_format_gives_cells_metadata_and_the_reference_module():
    """Do the ``# %%`` headers give the cells, their nbgrader metadata and the reference text?"""
    cells, reference = build.parse("ps1_dsc", NOTEBOOK)
    assert cells[0].cell_type == "markdown" and cells[0].source == "# Title\n\n    indented $x \\\\times y$"
    assert cells[1] is None and reference == ["fx_answer"]
    assert cells[2].metadata.nbgrader == {"grade": False, "grade_id": "fx_answer", "locked": False,
                                          "schema_version": 3, "solution": True, "task": False}
    assert cells[3].metadata.nbgrader["points"] == 3 and cells[3].metadata.nbgrader["locked"]
    assert cells[3].source.startswith('"""Does f double?"""\n') and cells[3].source.endswith("### END HIDDEN TESTS")
    assert build.reference_text(cells, reference) == "def f(x):\n    return 2 * x"


@pytest.mark.parametrize("edit, message", [
    (("# %% tests fx_f points=3", "# %% tests fx_f"), "says its points"),
    (("# %% answer fx_answer reference", "# %% answer"), "names its grade id"),
    (("# %% answer fx_answer reference", "# %% answr fx_answer"), "unknown cell header"),
    (("# %% answer fx_answer reference", "# %% answer fx_answer weight=2"), "unknown option"),
    (("# # Title", "Title"), "markdown cell is lines of"),
    (('"""Does f double?"""\n', ""), "one-line docstring"),
    (("### END HIDDEN TESTS\n", ""), "HIDDEN TESTS block"),
    (("assert f(2) == 4", "assert f(2) == 4 and _ps_grader"), "only inside the hidden block"),
    (("  # the build writes the setup cell here", ""), "the setup cell holds one line"),
    (("# %% setup\nfrom assignments.ps1_dsc import checks as _ps_grader  # the build writes the setup cell here\n", ""),
     "one '# %% setup' cell"),
])
def test_a_malformed_notebook_source_is_refused_with_its_line(edit, message):
    """Does each way of breaking the format give an error naming the file (and the line where there is one)?"""
    with pytest.raises(build.NotebookSourceError, match=message) as refused:
        build.parse("ps1_dsc", NOTEBOOK.replace(*edit, 1))
    assert str(refused.value).startswith("assignments/ps1_dsc/notebook.py")


def test_the_setup_cell_comes_before_every_code_cell():
    """A code cell above the setup cell would run before the grader's namespace exists: refused."""
    moved = NOTEBOOK.replace("# %% [markdown]", "# %% readonly fx_imports\nimport math\n\n# %% [markdown]", 1)
    with pytest.raises(build.NotebookSourceError, match="before the first code cell"):
        build.parse("ps1_dsc", moved)
