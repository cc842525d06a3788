"""Grades a class can trust (issue 11): a broken grading environment is the grader's error, never a
class of zeros; a learner's self-check and feedback say what to fix.

Real kernels, real nbgrader. Broken environments are made for real: a folder on PYTHONPATH (which
the kernel inherits, while the grader already imported its own mnlib) holds another ``mnlib``, or
an assignment's grader setup imports a module that does not exist.
"""
from __future__ import annotations

import io
import pathlib
import re
import shutil

import nbformat
import pytest

from autograder import cli
from autograder.check import class_wide_failures
from autograder.collect import collect
from autograder.canary import CANARY, CanaryFailed
from autograder.grade import Options, grade, load_results
from autograder.nbgrader_config import REPO, course_config

import nbgrader_harness as H

HERE = pathlib.Path(__file__).resolve().parent

FIXTURE = REPO / "tests" / "fixtures" / "autograder" / "solutions"
QUIET = {"log": lambda *a, **k: None, "progress_stream": io.StringIO()}


def _points(nb) -> dict[str, float]:
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


# ------------------------------------------------------------------ the learner's self-check

IDS = sorted(p.name for p in H.SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())
# One plausible mistake per assignment (tests/scenarios/<id>/) that a *visible* check catches.
MISTAKE = {"ps1_dsc": "kernel-transposed", "ps2_cost": "min-cout-floor", "ps3_receptive_field": "empirical-off-by-one",
           "ps4_inverted_residual": "expand-when-t-is-1", "ps5_v3_blocks": "se-params-without-bias",
           "ps6_roofline": "bound-inverted", "ps7_timing": "mean-not-median",
           "ps8_quantization": "dequantize-uint8-wraps",
           "ps9_latency_search": "mean-not-median"}


def _selfcheck(nb, folder: pathlib.Path, aid: str, capsys) -> tuple[int, str]:
    folder.mkdir(parents=True)
    for extra in (H.EXERCISES / aid).iterdir():  # data files next to the notebook, as a learner has them
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy(extra, folder / extra.name)
    path = folder / f"{aid}.ipynb"
    nbformat.write(nb, path)
    rc = cli.main(["selfcheck", str(path)])
    return rc, capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("aid", IDS)
def test_selfcheck_on_every_assignment(aid, tmp_path, capsys):
    """Reference answers: every visible check passes, exit 0 (the 0-point setup cell is no check).
    Blank release: every check fails and every answer cell is named. A plausible mistake: exit 1,
    and each failed check says what failed (its message, or the assert that failed), not a bare name."""
    released = H.EXERCISES / aid / f"{aid}.ipynb"
    checks = [g for g, p in _points(nbformat.read(released, as_version=4)).items() if p > 0]
    answers = H.answers(H.SOLUTIONS / aid / f"{aid}.ipynb")

    rc, out = _selfcheck(H.submission(released, answers), tmp_path / "reference", aid, capsys)
    assert rc == 0 and f"{len(checks)} of {len(checks)} visible checks pass" in out and "FAIL" not in out, out
    assert "BEGIN HIDDEN" not in out and "_ps_grader" not in out

    rc, out = _selfcheck(H.submission(released, {}), tmp_path / "blank", aid, capsys)
    assert rc == 1 and f"0 of {len(checks)} visible checks pass" in out, out
    todo = re.search(r"Still to write \(they raise NotImplementedError\): (.*)", out)
    assert todo and set(todo.group(1).split(", ")) == set(answers), out

    scenario = HERE / "scenarios" / aid / f"{MISTAKE[aid]}.ipynb"
    if not scenario.exists():
        pytest.skip(f"scenario {scenario.name} is gone: pick another mistake for {aid}")
    rc, out = _selfcheck(nbformat.read(scenario, as_version=4), tmp_path / "mistake", aid, capsys)
    assert rc == 1, out
    failed = re.findall(r"  FAIL  (\S+).*\n        (.*)", out)
    assert failed, out
    for gid, reason in failed:
        assert gid in checks
        name, _, message = reason.partition(":")
        assert name.endswith(("Error", "Exception")) and message.strip(), f"{gid}: a bare {reason!r}"


# ------------------------------------------------------------------ a broken grading environment

def _course(tmp: pathlib.Path, name: str, edit) -> pathlib.Path:
    """A copy of the fx_sum fixture assignment with ``edit(nb)`` applied to its source notebook."""
    src = tmp / "solutions"
    shutil.copytree(FIXTURE / "fx_sum", src / name)
    (src / name / "fx_sum.ipynb").rename(src / name / f"{name}.ipynb")
    nb = nbformat.read(src / name / f"{name}.ipynb", as_version=4)
    edit(nb)
    nbformat.write(nb, src / name / f"{name}.ipynb")
    return src


def _class(tmp: pathlib.Path, src: pathlib.Path, name: str, answers: dict[str, str | None]) -> pathlib.Path:
    from autograder.release import release
    release([name], source=src, release_dir=tmp / "release")
    released = nbformat.read(tmp / "release" / name / f"{name}.ipynb", as_version=4)
    for student, answer in answers.items():
        nb = nbformat.reads(nbformat.writes(released), as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and answer is not None:
                cell.source = answer
        (tmp / "in" / student).mkdir(parents=True)
        nbformat.write(nb, tmp / "in" / student / f"{name}.ipynb")
    ws = tmp / "ws"
    collect(tmp / "in", assignment=name, workspace=ws, source_dir=src)
    return ws


RIGHT = "import torch\n\ndef channel_sum(x):\n    return x.sum(dim=(2, 3))"
PARTIAL = "import torch\n\ndef channel_sum(x):\n    return x.mean(dim=(2, 3)) * 9"


def test_kernel_importing_another_mnlib_is_the_graders_error(tmp_path, monkeypatch):
    """The kernel imports mnlib from another checkout (PYTHONPATH; the grader imports its own): the
    canary refuses the batch and nothing is recorded; without the canary every student is status
    error with the reason, in no gradebook; once the environment is fixed, the next run grades them."""
    def needs_mnlib(nb):  # the reference uses mnlib, as every course assignment does
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = "import mnlib  # noqa: F401\n" + cell.source
    src = _course(tmp_path, "fx_env", needs_mnlib)
    ws = _class(tmp_path, src, "fx_env", {"right": "import mnlib\n" + RIGHT, "partial": PARTIAL, "blank": None})
    other = tmp_path / "other_checkout"
    (other / "mnlib").mkdir(parents=True)
    (other / "mnlib" / "__init__.py").write_text('"""Another checkout\'s mnlib."""\n')
    monkeypatch.setenv("PYTHONPATH", str(other))
    opts = Options(workspace=str(ws), assignment="fx_env", source=str(src), unsafe=True, timeout_cell=60,
                   timeout_notebook=120)

    with pytest.raises(CanaryFailed, match=r"kernel imports mnlib from .*other_checkout.*, the grader from"):
        grade(opts, workers=2, **QUIET)
    assert not list((ws / "results").glob("*/*.json")), "a refused batch records nothing"

    summary = grade(Options(**{**opts.__dict__, "canary": False}), workers=2, **QUIET)
    assert summary["statuses"] == {"error": 3}
    for res in summary["results"]:
        assert "kernel imports mnlib from" in res["message"] and not res["cells"]
    from nbgrader.api import Gradebook
    with Gradebook(course_config(ws).CourseDirectory.db_url) as gb:
        assert gb.find_assignment("fx_env").submissions == []
    assert cli.main(["check", "--workspace", str(ws)]) == 0  # errors are for a re-run, not mismatches

    monkeypatch.delenv("PYTHONPATH")
    fixed = grade(opts, workers=2, **QUIET)
    assert fixed["graded"] == 3 and fixed["statuses"] == {"graded": 3}
    assert fixed["canary_s"] is not None and fixed["canary_s"] > 0
    scores = {s: r["score"] for (_, s), r in load_results(ws, "fx_env").items()}
    assert scores == {"right": 3.0, "partial": 1.0, "blank": 0.0}
    assert (ws / CANARY / "fx_env" / "autograded" / "fx_env.ipynb").is_file()


def test_kernel_without_torch_and_failing_setup_are_errors(tmp_path, monkeypatch, capsys):
    """A kernel that cannot import torch, and a grader setup cell that fails in the kernel before
    any answer ran: status error naming the cause; the CLI's canary exits 3 with the reason."""
    def with_setup(nb):
        setup = nbformat.v4.new_code_cell(
            "# Grader setup (hidden, 0 points)\n### BEGIN HIDDEN TESTS\nimport grader_helpers_not_installed\n"
            "### END HIDDEN TESTS",
            metadata={"nbgrader": {"grade": True, "grade_id": "fx_setup_grader_setup", "locked": True, "points": 0,
                                   "schema_version": 3, "solution": False, "task": False}})
        nb.cells.insert(1, setup)
    src = _course(tmp_path, "fx_setup", with_setup)
    ws = _class(tmp_path, src, "fx_setup", {"right": RIGHT, "blank": None})
    argv = ["grade", "--workspace", str(ws), "--assignment", "fx_setup", "--source", str(src), "--unsafe",
            "--workers", "1", "--timeout-cell", "60"]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "canary" in err and "grader setup fx_setup_grader_setup failed in the kernel" in err
    assert "ModuleNotFoundError" in err and "--no-canary" in err
    assert cli.main(argv + ["--no-canary"]) == 4  # students the grader failed on: not graded, retried
    out = capsys.readouterr().out
    assert out.count("error    ") == 2 and "grader_helpers_not_installed" in out
    assert out.startswith("graded 0 (nothing), 0 already up to date") and "NOT graded 2" in out

    fake_torch = tmp_path / "no_torch" / "torch"
    fake_torch.mkdir(parents=True)
    (fake_torch / "__init__.py").write_text('raise ImportError("this torch install is broken")\n')
    monkeypatch.setenv("PYTHONPATH", str(fake_torch.parent))
    src2 = _course(tmp_path / "b", "fx_torch", lambda nb: None)
    ws2 = _class(tmp_path / "b", src2, "fx_torch", {"right": RIGHT})
    summary = grade(Options(workspace=str(ws2), assignment="fx_torch", source=str(src2), unsafe=True,
                            canary=False), workers=1, **QUIET)
    (res,) = summary["results"]
    assert res["status"] == "error" and "cannot import torch (ImportError: this torch install is broken)" \
        in res["message"]


def test_check_warns_when_a_whole_class_fails_one_cell_alike():
    """Does check flag a cell every graded student lost with one message, and only that?"""
    def res(student, reason, status="graded", score=0.0):
        return {"status": status, "cells": {"t1": {"score": score, "max_score": 2.0, "reason": reason},
                                            "t2": {"score": 1.0, "max_score": 1.0, "reason": ""}}}
    same = {("a1", s): res(s, "ModuleNotFoundError: No module named 'mnlib'") for s in "xyz"}
    (line,) = class_wide_failures(same)
    assert "a1" in line and "t1" in line and "all 3" in line and "mnlib" in line
    mixed = {**same, ("a1", "w"): res("w", "AssertionError: wrong")}
    assert class_wide_failures(mixed) == []
    passed = {**same, ("a1", "w"): res("w", "", score=2.0)}
    assert class_wide_failures(passed) == []
    two = {k: v for k, v in list(same.items())[:2]}
    assert class_wide_failures(two) == []  # two students failing alike say little
    errored = {**same, ("a1", "e"): {"status": "error", "cells": {}}}
    assert len(class_wide_failures(errored)) == 1  # a grader error is not a graded submission


# ------------------------------------------------------------------ feedback a learner can act on

CHECKS = '''
import torch

from assignments.toolkit import Cases, Tensor, allclose, need

RUNS_IN_GRADER = True


def check_scale(scale):
    """Four cases, a point each: scale(x, k) == k * x."""
    cases = Cases(points=4)
    for k in (1, 2, 3, 4):
        with cases.case(f"k = {k}"):
            x = torch.arange(6.0).reshape(2, 3)
            got = scale(x, k)
            need(type(got) is Tensor and allclose(got, x * k), f"scale(x, {k}) is not k * x")
    return cases.result()
'''

SCALE = {
    "right": "import torch\n\ndef scale(x, k):\n    return x * k",
    "half": "import torch\n\ndef scale(x, k):\n    return x * k if k < 3 else x * 2",
    "quarter": "import torch\n\ndef scale(x, k):\n    return x + k - 1",
    "loops": "import torch\n\ndef scale(x, k):\n    while k == 4:\n        pass\n    return x * k",
    # the channel of the hidden checks' requests (autograder/remote.py): answers graded the same way
    # when the notebook deletes the agent on every call, breaks the listener's socket before it starts,
    # or lets it start but never serve (the kernel's event loop ignores its handlers)
    "rebinds-exec": ("import torch\nexec = compile = None  # names a learner may well reuse\n\n"
                     "def scale(x, k):\n    return x * k if k < 3 else x * 2"),
    "deletes-agent": "import torch\n\ndef scale(x, k):\n    globals().pop('_ag_agent', None)\n    return x * k if k < 3 else x * 2",
    "breaks-listener": ("import socket\nimport torch\nsocket.socket.listen = None\n\n"
                        "def scale(x, k):\n    return x * k if k < 3 else x * 2"),
    "stalls-listener": ("import torch\nfrom tornado.ioloop import IOLoop\nheld = []  # handlers kept, never run\n"
                        "type(IOLoop.current()).add_handler = lambda self, *args: held.append(args)\n\n"
                        "def scale(x, k):\n    return x * k if k < 3 else x * 2"),
    "prints-in-check": "import torch\n\ndef scale(x, k):\n    if k == 4:\n        print('x' * (20 << 20))\n    return x * k",
    # a request that prints: its answer comes on IOPub, after the output (silent ones on the socket)
    "prints-once": "import torch\n\ndef scale(x, k):\n    if k == 2:\n        print('k is two')\n    return x * k",
    "forges": ("import torch\nip = get_ipython()\nip.events.register('post_run_cell', lambda result: "
               "ip.displayhook(4.0))\n\ndef scale(x, k):\n    return x * k if k < 3 else x * 2"),
}


CASES_NOTEBOOK = '''"""fx_cases: one answer, one tests cell whose hidden check scores four cases."""

# %% setup
from assignments.fx_cases import checks as _ps_grader  # the build writes the setup cell here

# %% answer answer_scale
import torch

def scale(x, k):
    ### BEGIN SOLUTION
    return x * k
    ### END SOLUTION

# %% tests test_scale points=4
"""Does scale(x, k) multiply by k?"""
assert torch.equal(scale(torch.ones(2), 1), torch.ones(2)), 'scale(x, 1) should be x'
### BEGIN HIDDEN TESTS
_ps_grader.check_scale(scale)
### END HIDDEN TESTS
'''


@pytest.fixture(scope="module")
def cases_course(tmp_path_factory):
    """An assignment whose hidden check scores four cases (assignments/toolkit.py's Cases), run in the grader."""
    from assignments import build as B
    from assignments import loader
    tmp = tmp_path_factory.mktemp("cases")
    texts = {loader.TOOLKIT: (REPO / loader.TOOLKIT).read_text(), "assignments/fx_cases/checks.py": CHECKS}
    cells, _ = B.parse("fx_cases", CASES_NOTEBOOK)  # the assignment as it would be authored
    cells = [B.setup("fx_cases", texts) if c is None else c for c in cells]
    src = tmp / "solutions"
    (src / "fx_cases").mkdir(parents=True)
    nbformat.write(B.notebook(cells), src / "fx_cases" / "fx_cases.ipynb")
    from autograder.release import release
    release(["fx_cases"], source=src, release_dir=tmp / "release")
    released = tmp / "release" / "fx_cases" / "fx_cases.ipynb"
    subs = {s: H.submission(released, {"answer_scale": a}) for s, a in SCALE.items()}
    edited = H.submission(released, {"answer_scale": SCALE["right"]})
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_scale":
            cell.source = "pass  # I made the test pass"
    subs["edits-test"] = edited
    for student, nb in subs.items():
        (tmp / "in" / student).mkdir(parents=True)
        nbformat.write(nb, tmp / "in" / student / "fx_cases.ipynb")
    ws = tmp / "ws"
    collect(tmp / "in", assignment="fx_cases", workspace=ws, source_dir=src)
    opts = Options(workspace=str(ws), assignment="fx_cases", source=str(src), unsafe=True, timeout_cell=5,
                   timeout_notebook=120)
    summary = grade(opts, workers=2, **QUIET)
    return tmp, src, ws, opts, summary, subs


def _cell(ws, student, gid="test_scale"):
    nb = nbformat.read(ws / "autograded" / student / "fx_cases" / "fx_cases.ipynb", as_version=4)
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid), nb


def test_partial_credit_per_case_in_the_grader_and_under_nbgrader(cases_course, tmp_path):
    """Cases scores each case: 4, 2 and 1 of 4 points in the course's grader (verdict in the grader),
    the same under plain nbgrader autograde (the check's number in the kernel), and the learner
    reads which cases failed, without expected values."""
    _, src, ws, _, summary, subs = cases_course
    scores = {s: r["cells"]["test_scale"]["score"] for (_, s), r in load_results(ws, "fx_cases").items()}
    assert {s: scores[s] for s in ("right", "half", "quarter")} == {"right": 4.0, "half": 2.0, "quarter": 1.0}
    reason = load_results(ws, "fx_cases")[("fx_cases", "half")]["cells"]["test_scale"]["reason"]
    assert "k = 3" in reason and "k = 4" in reason and "k = 1" not in reason
    assert cli.main(["check", "--workspace", str(ws)]) == 0  # the number in the notebook is the recorded score

    course = H.Course("fx_cases", tmp_path, source_root=src)  # nbgrader's own autograde, checks in the kernel
    plain = course.grade({s: subs[s] for s in ("right", "half", "quarter")})
    assert {s: plain[s]["test_scale"] for s in plain} == {"right": 4.0, "half": 2.0, "quarter": 1.0}

    cli.main(["feedback", "--workspace", str(ws), "--assignment", "fx_cases", "--source", str(src)])
    page = (ws / "feedback" / "half" / "fx_cases" / "fx_cases.html").read_text()
    assert "failed: k = 3: scale(x, 3) is not k * x" in page and "_ps_grader" not in page


def test_partial_credit_rule_errors_win_and_numbers_are_clamped(cases_course):
    """An error anywhere zeroes a test cell; a result number is clamped to [0, points]; a result
    that is no number is nbgrader's full marks."""
    from autograder.execute import cell_score
    cell, _ = _cell(cases_course[2], "right")

    def result(text):
        return nbformat.v4.new_output("execute_result", data={"text/plain": text}, execution_count=3)
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="no", traceback=[])
    for outputs, want in (([result("4"), error], 0.0), ([result("1e9")], 4.0), ([result("-1")], 0.0),
                          ([result("nan")], 0.0), ([result("1.5")], 1.5), ([result("'done'")], 4.0), ([], 4.0)):
        cell.outputs = outputs
        assert cell_score(cell)[0] == want, outputs


def test_a_number_forged_in_the_kernel_is_no_score(cases_course):
    """A kernel that shows a result of its own in every cell (here 4.0, full marks) gains nothing:
    in the grader only the check's verdict can be a cell's number."""
    ws = cases_course[2]
    assert load_results(ws, "fx_cases")[("fx_cases", "forges")]["cells"]["test_scale"]["score"] == 2.0
    cell, _ = _cell(ws, "forges")
    shown = [o for o in cell.outputs if o.get("data", {}).get("text/plain") == "4.0"]
    assert shown and all(o.output_type == "display_data" for o in shown)  # the forgery ran, demoted


def test_timeout_in_a_hidden_check_says_so(cases_course):
    """A learner's function that never returns for one input: the cell says it timed out, after how
    long, and which of the learner's objects the hidden check was running; not `KeyboardInterrupt`."""
    ws = cases_course[2]
    res = load_results(ws, "fx_cases")[("fx_cases", "loops")]
    assert res["status"] == "graded" and res["cells"]["test_scale"]["score"] == 0.0
    reason = res["cells"]["test_scale"]["reason"]
    assert reason.startswith("TimeoutError: stopped after 5 s") and "your scale" in reason, reason
    assert "KeyboardInterrupt" not in reason


def test_requests_travel_on_the_listeners_socket_and_fall_back_to_cells(cases_course):
    """After the first request (a cell that defines the agent and starts its listener) a hidden check's
    requests go on the listener's socket, and their answers come back on it, except the answer of a
    request that printed (on IOPub, after its output). A notebook that deletes the agent, breaks the
    listener before it starts, or lets it start but never serve, is graded on its answers all the same:
    its requests go as cells again (kernel_agent._ag_listen)."""
    results = load_results(cases_course[2], "fx_cases")

    def channel(student):
        res = results[("fx_cases", student)]
        return res["cells"]["test_scale"]["score"], res["hidden_tests"]["fx_cases"]

    score, right = channel("right")
    assert score == 4.0 and right["requests"] >= 5 and right["as_cells"] == 1, right
    # nothing printed: every answer after the first came back on the listener's socket, not on IOPub
    assert right["on_socket"] == right["requests"] - 1, right
    score, prints = channel("prints-once")  # the one request whose call printed: answered on IOPub
    assert score == 4.0 and prints["requests"] == right["requests"], prints
    assert prints["as_cells"] == 1 and prints["on_socket"] == prints["requests"] - 2, prints
    score, rebinds = channel("rebinds-exec")  # the agent's one-line definition fails: the plain source
    assert score == 2.0 and rebinds["as_cells"] == 2, rebinds
    score, deletes = channel("deletes-agent")
    assert score == 2.0 and deletes["as_cells"] == deletes["requests"] - 1, deletes  # each call deletes it
    for student in ("breaks-listener", "stalls-listener"):
        score, broken = channel(student)
        assert score == 2.0 and broken["as_cells"] == broken["requests"], (student, broken)


def test_output_of_a_hidden_check_request_is_capped(cases_course):
    """Printing past the outputs' limit while a hidden check runs the learner's function (its last
    case) stops the kernel there, as it would in a cell: that case fails, saying why; the cases
    before it keep their points."""
    cell = load_results(cases_course[2], "fx_cases")[("fx_cases", "prints-in-check")]["cells"]["test_scale"]
    assert cell["score"] == 3.0, cell
    assert "failed: k = 4: OutputTooLarge: the notebook's outputs passed" in cell["reason"], cell


def test_timeout_in_a_visible_line_names_the_line(tmp_path):
    """A test cell cut by the per-cell limit in the kernel names the limit and the line it stopped at;
    a hidden line is never quoted."""
    src = _course(tmp_path, "fx_loop", lambda nb: None)
    loops = "import torch\n\ndef channel_sum(x):\n    while x.shape[-1] in (5, 7):\n        pass\n    " \
            "return x.sum(dim=(2, 3))"
    hidden_loop = "import torch\n\ndef channel_sum(x):\n    while x.shape[-1] == 7:\n        pass\n    " \
                  "return x.sum(dim=(2, 3))"
    ws = _class(tmp_path, src, "fx_loop", {"visible": loops, "hidden": hidden_loop})
    grade(Options(workspace=str(ws), assignment="fx_loop", source=str(src), unsafe=True, timeout_cell=4,
                  canary=False), workers=2, **QUIET)
    res = load_results(ws, "fx_loop")
    shape = res[("fx_loop", "visible")]["cells"]["test_shape"]["reason"]
    assert shape == ("TimeoutError: stopped after 4 s, the time limit of one cell, at line 2: assert "
                     "channel_sum(torch.ones(2, 3, 4, 5)).shape == (2, 3), \"expected shape (N, C)\""), shape
    values = res[("fx_loop", "hidden")]["cells"]["test_values"]["reason"]
    assert values == "TimeoutError: stopped after 4 s, the time limit of one cell, in the hidden tests of this cell"
    assert res[("fx_loop", "hidden")]["cells"]["test_shape"]["score"] == 1.0


def test_discarded_edit_of_a_read_only_cell_is_said(cases_course):
    """An edited test cell is put back and run as released (full marks for a right answer), and the
    learner's feedback says the edit was discarded, right above that cell."""
    _, src, ws, _, _, _ = cases_course
    res = load_results(ws, "fx_cases")[("fx_cases", "edits-test")]
    assert res["score"] == 4.0 and res["discarded"] == ["fx_cases:test_scale"]
    assert "edits of read-only cells discarded: fx_cases:test_scale" in res["message"]
    cell, nb = _cell(ws, "edits-test")
    at = nb.cells.index(cell)
    assert nb.cells[at - 1].cell_type == "markdown" and "Your edit was discarded" in nb.cells[at - 1].source
    assert "I made the test pass" not in cell.source
    assert load_results(ws, "fx_cases")[("fx_cases", "right")].get("discarded") == []
    cli.main(["feedback", "--workspace", str(ws), "--assignment", "fx_cases", "--source", str(src)])
    page = (ws / "feedback" / "edits-test" / "fx_cases" / "fx_cases.html").read_text()
    assert "Your edit was discarded" in page


def test_wall_time_limit_names_the_cell_it_stopped(tmp_path):
    """A notebook stopped by its whole-notebook wall time: status timeout, and the cell that was
    running says so (the cells after it did not run)."""
    src = _course(tmp_path, "fx_wall", lambda nb: None)
    loops = "import torch\n\ndef channel_sum(x):\n    while True:\n        pass"
    ws = _class(tmp_path, src, "fx_wall", {"slow": loops})
    grade(Options(workspace=str(ws), assignment="fx_wall", source=str(src), unsafe=True, timeout_cell=600,
                  timeout_notebook=30, canary=False), workers=1, **QUIET)
    res = load_results(ws, "fx_wall")[("fx_wall", "slow")]
    assert res["status"] == "timeout" and "30 s wall-time limit" in res["message"]
    assert res["cells"]["test_shape"]["reason"].startswith(
        "TimeoutError: the notebook was stopped at its wall-time limit (30 s for the whole notebook) while this cell ran")
    assert res["cells"]["test_values"]["reason"] == "not run: the kernel stopped before this cell"
