"""Does ``grade --scheduler`` on a Dask cluster give the grades of ``--workers 2``, and survive its failures?

Each test starts its own Dask scheduler and two workers on localhost (``dask`` CLI processes of the
venv, autograder/cluster.py ``LocalCluster``: free ports, the test's own TMPDIR) and stops them.
  - a batch graded through the cluster, one worker SIGKILLed mid-batch, ends with the same result
    files, gradebook and CSV as ``--workers 2`` on one machine: the killed worker's student is
    graded again on the other, never lost or half-written;
  - a scheduler SIGKILLed mid-batch stops the run with a message and keeps what was committed;
    the same command on a new cluster grades exactly the rest.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from autograder import sandbox
from autograder.scenarios import make_hostile_scenarios as ms
from autograder.check import check
from autograder.cluster import LocalCluster

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"

PROBE = sandbox.probe()
CLASS = ["complete", "unchanged-release", "edited-test-cell", "os-exit", "corrupt", "deleted-test-cell",
         "fork-bomb", "infinite-loop-top-level"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")]


class Batch:
    def __init__(self, root: pathlib.Path):
        self.root, self.ws, self.tmp = root, root / "ws", root / "tmp"
        self.tmp.mkdir(parents=True)
        subs = root / "in"
        for name in CLASS:
            (subs / name).mkdir(parents=True)
            shutil.copy(SCEN / ms.file_name(name), subs / name / ms.NOTEBOOK)
        self.run("collect", str(subs), "--assignment", ms.ASSIGNMENT, "--source", str(SCEN / "source"))

    def env(self):
        return {**os.environ, "TMPDIR": str(self.tmp)}

    def argv(self, cmd, *args):
        return [sys.executable, "-m", "autograder", cmd, "--workspace", str(self.ws), *args]

    def grade_argv(self, *how):
        return self.argv("grade", "--assignment", ms.ASSIGNMENT, "--source", str(SCEN / "source"), "--timeout-cell",
                         "5", "--timeout-notebook", "60", "--memory-mb", "512", *how)

    def run(self, *args, ok=True):
        proc = subprocess.run(self.argv(*args), cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 or not ok, proc.stdout + proc.stderr
        return proc

    def grade(self, *how):
        proc = subprocess.run(self.grade_argv(*how), cwd=REPO, env=self.env(), capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def start_grading(self, *how):
        return subprocess.Popen(self.grade_argv(*how), cwd=REPO, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def wait_for_results(self, proc, n: int) -> int:
        results = self.ws / "results" / ms.ASSIGNMENT
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and len(list(results.glob("*.json"))) < n:
            time.sleep(0.05)
        return len(list(results.glob("*.json")))

    def results(self) -> dict:
        out = {}
        for p in (self.ws / "results" / ms.ASSIGNMENT).glob("*.json"):
            r = json.loads(p.read_text())
            out[p.stem] = (r["status"], r["score"], r.get("message"),
                           {g: c["score"] for g, c in r["cells"].items()})
        return out

    def export(self) -> str:
        self.run("export", "--output", str(self.root / "grades.csv"))
        return (self.root / "grades.csv").read_text()


def _gone(tmp):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sandbox.left_behind(tmp)[0]:
        time.sleep(0.2)
    return sandbox.left_behind(tmp)


def test_dask_with_a_killed_worker_grades_as_two_local_workers(tmp_path):
    """Two Dask workers, one SIGKILLed mid-batch: the same results, gradebook and CSV as --workers 2."""
    local = Batch(tmp_path / "local")
    local.grade("--workers", "2")
    want = local.results()
    assert {n: want[n][:2] for n in CLASS} == {n: ms.EXPECTED[n] for n in CLASS}

    remote = Batch(tmp_path / "dask")
    with LocalCluster(2, remote.env(), tmp_path) as cluster:
        proc = remote.start_grading("--scheduler", cluster.address)
        before = remote.wait_for_results(proc, 2)
        cluster.kill(cluster.workers[0])  # both workers are busy: one student (or the canary) is mid-notebook
        out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert 0 < before < len(CLASS), before
    assert remote.results() == want
    assert remote.export() == local.export().replace(str(local.ws), str(remote.ws))
    assert check(remote.ws) == []
    assert not list(remote.ws.rglob("*.tmp"))
    assert _gone(remote.tmp) == ([], [])


def test_scheduler_lost_mid_batch_stops_then_resumes(tmp_path):
    """The scheduler SIGKILLed mid-batch: a clear stop, nothing half-written; a re-run grades only the rest."""
    batch = Batch(tmp_path / "b")
    with LocalCluster(2, batch.env(), tmp_path / "b") as cluster:
        proc = batch.start_grading("--scheduler", cluster.address)
        batch.wait_for_results(proc, 2)
        cluster.kill(cluster.scheduler)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert f"the Dask cluster at {cluster.address} stopped answering mid-batch" in out
    assert "run the same command to grade the rest" in out and "Traceback" not in out
    kept = batch.results()
    assert 0 < len(kept) < len(CLASS)
    assert {n: r[:2] for n, r in kept.items()} == {n: ms.EXPECTED[n] for n in kept}
    assert [p for p in check(batch.ws) if "not graded yet" not in p] == []  # consistent, only the rest missing
    assert not list(batch.ws.rglob("*.tmp"))
    with LocalCluster(2, batch.env(), tmp_path / "b2") as cluster:
        again = batch.grade("--scheduler", cluster.address)
    assert f"{len(kept)} already up to date" in again.stdout
    assert "with 2 Dask worker(s)" in again.stdout, again.stdout  # the cluster's workers, not local processes
    assert {n: r[:2] for n, r in batch.results().items()} == {n: ms.EXPECTED[n] for n in CLASS}
    assert check(batch.ws) == []
    assert _gone(batch.tmp) == ([], [])
