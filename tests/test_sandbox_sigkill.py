"""Is nothing lost when the grader is SIGKILLed mid-batch with the sandbox on, twice, then re-run?

Kills land while kernels are running (two workers, one finishing a student while the other is
mid-notebook). After the final run: every student has one grade, equal to what an uninterrupted
run gives (the scenarios' EXPECTED), the gradebook holds one submission per student, `check`
finds no mismatch, no half-written file, no sandboxed process and no sandbox cgroup is left.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
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


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    parent_of = {}
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent_of[int(d.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it counts as gone)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow  # two workers stopped mid-notebook, then a re-run: about a minute
@pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")
@pytest.mark.parametrize("unsafe", [False, True], ids=["sandbox", "unsafe"])
def test_workers_and_kernels_die_with_a_sigkilled_grader(tmp_path, unsafe):
    """SIGKILL the grader process alone (not its process group), while both workers are in the middle
    of a notebook that would run for a minute: within seconds no worker, launcher or kernel is left
    (the workers' parent-death signal, then the launchers, which watch their parent; with --unsafe,
    the kernels' own parent-death signal), and the next `grade` takes the workspace lock at once and
    grades everyone."""
    subs, ws, tmp = tmp_path / "in", tmp_path / "ws", tmp_path / "tmp"
    tmp.mkdir()
    names = ["infinite-loop-top-level", "infinite-loop-in-graded-function"]
    for name in names:
        (subs / name).mkdir(parents=True)
        shutil.copy(SCEN / ms.file_name(name), subs / name / ms.NOTEBOOK)
    col = subprocess.run([sys.executable, "-m", "autograder", "collect", str(subs), "--assignment", ms.ASSIGNMENT,
                          "--workspace", str(ws), "--source", str(SCEN / "source")], cwd=REPO,
                         capture_output=True, text=True, env=_env(tmp))
    assert col.returncode == 0, col.stderr
    slow = [*_grade_argv(ws), "--no-canary", *(["--unsafe"] if unsafe else [])]
    slow[slow.index("--timeout-cell") + 1] = "90"  # each loop cell runs 90 s unless its worker dies
    slow[slow.index("--timeout-notebook") + 1] = "120"
    grader = subprocess.Popen(slow, cwd=REPO, env=_env(tmp), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(sandbox.left_behind(tmp)[0]) < 2:  # both kernels started
            time.sleep(0.2)
        time.sleep(3)  # into the loop cells
        below = _descendants(grader.pid)
        assert grader.poll() is None and len(below) >= 4, below  # two workers, their launchers and kernels
        os.kill(grader.pid, signal.SIGKILL)  # the grader only: its workers get no signal from us
        grader.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [p for p in below if _alive(p)]:
            time.sleep(0.1)
        assert [p for p in below if _alive(p)] == []
        assert sandbox.left_behind(tmp)[0] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(grader.pid, signal.SIGKILL)
    done = subprocess.run([*_grade_argv(ws), *(["--unsafe"] if unsafe else [])], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=_env(tmp))
    assert done.returncode == 0, done.stderr  # the lock went with the killed grader
    results = {p.stem: json.loads(p.read_text()) for p in (ws / "results" / ms.ASSIGNMENT).glob("*.json")}
    assert {n: (r["status"], r["score"]) for n, r in results.items()} == {n: ms.EXPECTED[n] for n in names}
