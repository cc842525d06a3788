"""Does grading a class of hostile and broken submissions (autograder/scenarios/) give each the
outcome it must, finish the batch, and leave a consistent workspace?

One batch grades every scenario through the real pipeline (`python -m autograder collect/grade`
as subprocesses, sandbox on); the tests below read its results.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from autograder import sandbox
from autograder.check import check

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"
sys.path.insert(0, str(SCEN))
import make_hostile_scenarios as ms  # noqa: E402

PROBE = sandbox.probe()
pytestmark = [pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}"),
              pytest.mark.slow]  # one batch of 24 notebooks, about a minute on 2 cores
CELL_S, NOTEBOOK_S = 3, 30  # short limits so the loops are stopped quickly
# Until the executor caps outputs (sandbox.BoundedOutputs), a notebook printing gigabytes would
# hold them in the grader's memory: leave it out of the batch rather than risk the machine.
OUTPUT_CAPPED = "BoundedOutputs" in (REPO / "autograder" / "execute.py").read_text()
SKIPPED = set() if OUTPUT_CAPPED else {"prints-gigabytes"}
# scenario -> why it is expected to fail; empty since the hidden tests left the kernel
KNOWN_FAULTS: dict[str, str] = {}
# Code that patches IPython: harmless since the hidden tests run in the grader (autograder/remote.py),
# and still listed for review in the grade report (autograder/flags.py).
KERNEL_HOOKS = ("rewrites-test-cells", "swallows-errors", "answers-for-the-grader")


def sandboxed_processes() -> list[str]:
    """Command lines of live processes running as a sandbox uid (there must be none between runs)."""
    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["uids", "cmdline"])
            if p.info["uids"] and p.info["uids"].real >= sandbox.UID_BASE]


def _ag(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Collect and grade every scenario once; return (workspace, results by student, grade output)."""
    root = tmp_path_factory.mktemp("hostile")
    subs, ws = root / "submissions", root / "ws"
    for name in ms.EXPECTED:
        if name in SKIPPED:
            continue
        dest = subs / name
        dest.mkdir(parents=True)
        src = SCEN / ms.file_name(name)
        shutil.copy(src, dest / (src.name if name in ms.SUBMITTED_NAME else ms.NOTEBOOK))
    source = ["--source", str(SCEN / "source")]
    col = _ag("collect", str(subs), "--assignment", ms.ASSIGNMENT, "--workspace", str(ws), *source)
    assert col.returncode == 0, col.stderr
    g = _ag("grade", "--workspace", str(ws), "--assignment", ms.ASSIGNMENT, *source, "--workers", "2",
            "--timeout-cell", str(CELL_S), "--timeout-notebook", str(NOTEBOOK_S), "--memory-mb", "512")
    assert g.returncode == 0, g.stdout + g.stderr
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / ms.ASSIGNMENT).glob("*.json")}
    return ws, results, col.stdout + g.stdout + g.stderr


def _outputs(ws, student) -> str:
    nb = json.loads((ws / "autograded" / student / ms.ASSIGNMENT / ms.NOTEBOOK).read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


@pytest.mark.parametrize("name", sorted(ms.EXPECTED))
def test_scenario_outcome(batch, name):
    """Does each hostile or broken submission get exactly the status and score it must?"""
    if name in SKIPPED:
        pytest.skip("the executor does not cap outputs yet (sandbox.BoundedOutputs)")
    if name in KNOWN_FAULTS:
        pytest.xfail(KNOWN_FAULTS[name])
    ws, results, _ = batch
    status, score = ms.EXPECTED[name]
    if name == "memory-bomb" and "cgroup memory" not in PROBE.reason:
        status, score = "graded", ms.FULL  # RLIMIT_DATA: MemoryError in the cell, the tests still run
    res = results[name]
    assert (res["status"], res["score"]) == (status, score), res.get("message")
    assert res["status"] == "graded" or res["message"], "a non-graded student needs a recorded reason"


def test_every_student_has_a_grade_or_a_reason(batch):
    """Did the batch finish with a result for every submitted student, each graded or explained?"""
    ws, results, out = batch
    expected = set(ms.EXPECTED) - SKIPPED
    assert set(results) == expected
    for res in results.values():
        assert res["status"] in ("graded", "broken", "timeout", "missing"), res
        assert res["status"] == "graded" or res["message"]
    assert "wrong-file-name" in out and "MISNAMED" in out  # collect said which file it could not take


def test_workspace_is_consistent(batch):
    """Do gradebook, result files and autograded notebooks agree after the hostile batch?"""
    ws, _, _ = batch
    assert check(ws) == []


def test_hostile_code_found_and_changed_nothing(batch):
    """Did the answer-key reader and the gradebook writer find nothing, and the network stay shut?"""
    ws, results, _ = batch
    assert "found: []" in _outputs(ws, "reads-answer-key")
    assert "written: []" in _outputs(ws, "writes-gradebook")
    net = _outputs(ws, "network-access")
    assert "CONNECTED" not in net and net.count("blocked") == 3
    assert "fork refused" in _outputs(ws, "fork-bomb")
    con = sqlite3.connect(ws / "gradebook.db")
    assert con.execute("select max(auto_score) from grade").fetchone()[0] <= 2  # no 100s written


def test_no_process_survives_the_batch(batch):
    """Are the processes the background-process and fork-bomb scenarios left behind gone?"""
    time.sleep(3)  # the sh loop would have touched its file by now if it were alive anywhere
    assert sandboxed_processes() == []
    assert not pathlib.Path("/tmp/grades-were-here").exists()


def test_check_reports_tampering(batch, tmp_path):
    """Does `check` notice a changed gradebook score, a lost result file and a half-written file?"""
    ws = tmp_path / "ws"
    shutil.copytree(batch[0], ws)
    con = sqlite3.connect(ws / "gradebook.db")
    con.execute("update grade set auto_score = 0 where auto_score > 0 and id = "
                "(select min(id) from grade where auto_score > 0)")
    con.commit()
    con.close()
    (ws / "results" / ms.ASSIGNMENT / "complete.json").unlink()
    (ws / "results" / ms.ASSIGNMENT / ".x.json.1.tmp").write_text("{")
    found = "\n".join(check(ws))
    assert "in the gradebook" in found and "no result file" in found and "half-written" in found


def test_kernel_hooks_are_listed_for_review(batch):
    """Submissions that patch IPython are named in the grade report, for a person to read."""
    ws, results, out = batch
    for name in KERNEL_HOOKS:
        assert any("IPython internals" in f for f in results[name]["flags"]), results[name]["flags"]
        assert f"review   {name} " in out, out[-2000:]
    for honest in ("complete", "edited-test-cell", "deleted-test-cell", "unchanged-release"):
        assert results[honest]["flags"] == [], honest
