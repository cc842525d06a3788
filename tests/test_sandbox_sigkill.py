"""Is nothing lost when the grader is SIGKILLed mid-batch with the sandbox on, twice, then re-run?

Kills land while kernels are running (two workers, one finishing a student while the other is
mid-notebook). After the final run: every student has one grade, equal to what an uninterrupted
run gives (the scenarios' EXPECTED), the gradebook holds one submission per student, `check`
finds no mismatch, no half-written file, no sandboxed process and no sandbox cgroup is left.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from autograder import sandbox
from autograder.scenarios import make_hostile_scenarios as ms
from autograder.check import check

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"

PROBE = sandbox.probe()
CLASS = ["complete", "unchanged-release", "edited-test-cell", "os-exit", "deleted-test-cell",
         "reads-answer-key", "corrupt", "fork-bomb", "network-access", "segfault"]


def _grade_argv(ws):
    return [sys.executable, "-m", "autograder", "grade", "--workspace", str(ws), "--assignment", ms.ASSIGNMENT,
            "--source", str(SCEN / "source"), "--workers", "2", "--timeout-cell", "10",
            "--timeout-notebook", "60", "--memory-mb", "512"]


def _env(tmp):
    return {**os.environ, "TMPDIR": str(tmp)}  # this test's sandboxes: scratch dirs in its own folder


@pytest.mark.slow  # three grading runs of 10 notebooks, about 2 minutes
@pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")
def test_sigkill_mid_batch_loses_nothing(tmp_path, kill_grade_after):
    """SIGKILL twice mid-batch, then re-run: are all grades there, once each, whole and right?"""
    subs, ws, tmp = tmp_path / "in", tmp_path / "ws", tmp_path / "tmp"
    tmp.mkdir()
    for name in CLASS:
        (subs / name).mkdir(parents=True)
        shutil.copy(SCEN / ms.file_name(name), subs / name / ms.NOTEBOOK)
    col = subprocess.run([sys.executable, "-m", "autograder", "collect", str(subs), "--assignment", ms.ASSIGNMENT,
                          "--workspace", str(ws), "--source", str(SCEN / "source")], cwd=REPO,
                         capture_output=True, text=True, env=_env(tmp))
    assert col.returncode == 0, col.stderr
    results = ws / "results" / ms.ASSIGNMENT
    first = kill_grade_after(_grade_argv(ws), _env(tmp), results, 2)
    second = kill_grade_after(_grade_argv(ws), _env(tmp), results, first + 3)
    assert 0 < first <= second < len(CLASS), (first, second)  # both kills really were mid-batch
    # the grader's process group is gone; its kernels must follow (launchers watch their parent)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sandbox.left_behind(tmp)[0]:
        time.sleep(0.2)
    assert sandbox.left_behind(tmp)[0] == []
    done = subprocess.run(_grade_argv(ws), cwd=REPO, capture_output=True, text=True, timeout=600, env=_env(tmp))
    assert done.returncode == 0, done.stderr
    assert f"{second} already up to date" in done.stdout  # nothing graded twice
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / ms.ASSIGNMENT).glob("*.json")}
    assert set(results) == set(CLASS)
    for name, res in results.items():
        assert (res["status"], res["score"]) == ms.EXPECTED[name], (name, res.get("message"))
    con = sqlite3.connect(ws / "gradebook.db")
    rows = con.execute("select student.id, count(*) from submitted_assignment join student "
                       "on student.id = submitted_assignment.student_id group by student.id").fetchall()
    assert dict(rows) == {name: 1 for name in CLASS}
    assert check(ws) == []
    assert not [p for p in ws.rglob("*.tmp")]
    assert sandbox.left_behind(tmp) == ([], [])  # no process, no cgroup of this test's sandboxes
