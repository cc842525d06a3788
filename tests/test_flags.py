"""autograder.flags: submissions that reach into the kernel are listed for review; course answers are not.

The hostile scenarios and the sample class are real notebooks (autograder/scenarios, samples);
the reference answers are the solution notebooks themselves.
"""
import pathlib

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.flags import flags, student_code

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"


def _nb(*sources, meta=None):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    if meta:
        nb.cells[0].metadata["nbgrader"] = meta
    return nb


@pytest.mark.parametrize("name,reason", [
    ("rewrites-test-cells", "IPython internals"), ("swallows-errors", "IPython internals"),
    ("patches-comparisons", "builtins or code objects"), ("segfault", "native code"),
    ("reads-answer-key", "dynamic code"),
])
def test_scenarios_that_reach_into_the_kernel_are_flagged(name, reason):
    found = flags(nbformat.read(SCEN / f"{name}.ipynb", as_version=4))
    assert any(reason in f for f in found), found


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO)) for p in
                                        list((REPO / "solutions").glob("ps*/*.ipynb"))
                                        + list((REPO / "autograder" / "samples").glob("*/*/*.ipynb"))
                                        + [SCEN / "complete.ipynb", SCEN / "edited-test-cell.ipynb",
                                           SCEN / "unchanged-release.ipynb"]))
def test_reference_answers_and_honest_submissions_are_not_flagged(path):
    try:
        nb = nbformat.read(REPO / path, as_version=4)
    except Exception:  # the sample class has one unreadable notebook on purpose; no other may fail
        assert "s09_unreadable" in path
        return
    assert student_code(nb), "the scan must see the learner's cells"
    assert flags(nb) == []


@pytest.mark.parametrize("source", [
    "y = torch.compile(model)", "pattern = re.compile('a+')", "m.eval()", "x = model.evaluate(3)",
    "# run_cells is a word in a comment only if spelled run_cell", "total = sum(p.numel() for p in m.parameters())",
])
def test_ordinary_code_is_not_flagged(source):
    expected = ["cell 1: IPython internals ('run_cell')"] if "run_cell " in source + " " else []
    assert flags(_nb(source)) == expected


@pytest.mark.parametrize("source,reason", [
    ("ip = get_ipython()", "IPython internals"),
    ("_ag_handles.clear()", "IPython internals"),
    ("from comm import create_comm", "IPython internals"),  # the channel of the grader's requests
    ("kernel.comm_manager.register_target('autograder-agent', answer)", "IPython internals"),
    ("from tornado.ioloop import IOLoop", "IPython internals"),  # the loop that serves them
    ("loop.remove_handler(fd)", "IPython internals"),
    ("import builtins\nbuiltins.abs = lambda x: 0", "builtins or code objects"),
    ("f.__code__ = g.__code__", "builtins or code objects"),
    ("import gc\nobjs = gc.get_objects()", "garbage-collector walk"),
    ("import sys\nsys.settrace(t)", "frames or tracing"),
    ("exec('x = 1')", "dynamic code"),
    ("getattr(sys.modules['IPython'], 'get_' + 'ipython')", "dynamic code"),
    ("!pip install something", "shell escapes or magics"),
    ("%load_ext autoreload", "shell escapes or magics"),
])
def test_hooks_and_hiding_tricks_are_flagged(source, reason):
    assert any(reason in f for f in flags(_nb(source)))


def test_test_and_read_only_cells_are_not_scanned_but_answer_cells_are():
    """Test and locked cells are replaced by the source's before running; answer cells are the learner's."""
    test = {"grade": True, "grade_id": "t", "locked": True, "points": 1, "schema_version": 3, "solution": False}
    assert flags(_nb("exec('1')", meta=test)) == []
    locked = {"grade": False, "grade_id": "r", "locked": True, "schema_version": 3, "solution": False}
    assert flags(_nb("exec('1')", meta=locked)) == []
    answer = {"grade": False, "grade_id": "a", "locked": False, "schema_version": 3, "solution": True}
    assert flags(_nb("exec('1')", meta=answer)) == ["a: dynamic code ('exec(')"]


def _mnlib_function(path, name):
    """The source text of one top-level function of an mnlib file, as a learner would paste it."""
    import ast
    text = (REPO / "mnlib" / path).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(text, node)


@pytest.mark.parametrize("source", [
    _mnlib_function("cost.py", "conv2d_params") + "\n\n" + _mnlib_function("cost.py", "_check_groups"),
    "import mnlib.receptive_field\n\n\n" + _mnlib_function("receptive_field.py", "empirical_receptive_field"),
    "import inspect, mnlib.layers\nexec(inspect.getsource(mnlib.layers))",
    "import inspect, pathlib, runpy, mnlib.layers\npathlib.Path('copy.py').write_text(inspect.getsource(mnlib.layers))\n"
    "DSC = runpy.run_path('copy.py')['DepthwiseSeparableConv']",
    "import mnlib.layers\nsrc = open(mnlib.layers.__file__).read()",
])
def test_copies_of_mnlib_source_are_flagged(source):
    """A copy of mnlib's code escapes the guard on mnlib's files; it is listed for a person to read."""
    assert any("mnlib's source" in f for f in flags(_nb(source))), flags(_nb(source))


def test_a_short_shared_idiom_is_not_a_copy():
    """Three lines that mnlib and an honest answer both write (the plain algorithm) are not flagged."""
    source = ("h, w = y.shape[-2:]\ny[0, :, h // 2, w // 2].sum().backward()\n"
              "rows = torch.nonzero(support.any(1)).flatten()\n")
    assert flags(_nb(source)) == []
