"""Can two grading batches run at once on one machine (two assignments, two courses) without harm?

Two `python -m autograder grade` runs, each with its own workspace, gradebook and TMPDIR, grade the
hostile scenarios that reach for other processes and files (search the disk for gradebooks and
results, write to what they find, fork until refused, leave a process behind, die, exhaust memory)
at the same time. Each batch must end exactly as it would alone: neither kills, reads or corrupts
the other's kernels, cgroups, results or gradebook, and neither leaves anything alive.
"""
from __future__ import annotations

import sqlite3

import pytest

from autograder import sandbox
from autograder.check import check

PROBE = sandbox.probe()
NAMES = ["complete", "reads-answer-key", "writes-gradebook", "fork-bomb", "background-process", "os-exit",
         "memory-bomb", "edited-test-cell", "infinite-loop-in-graded-function"]


@pytest.mark.slow  # two batches of 9 notebooks side by side, about two minutes on 2 cores
@pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")
def test_two_batches_at_once_leave_each_other_alone(tmp_path, grading_batch):
    """Two batches at once: each gets exactly its expected grades, a consistent workspace, nothing left."""
    a = grading_batch(tmp_path / "course-a", NAMES, cell_s=10, notebook_s=60)
    b = grading_batch(tmp_path / "course-b", NAMES, cell_s=10, notebook_s=60)
    a.start()
    b.start()  # both grade now, four kernels on the machine at once
    results = {"a": a.finish(), "b": b.finish()}
    ms = a.ms
    for which, batch in (("a", a), ("b", b)):
        assert set(results[which]) == set(NAMES), which
        for name in NAMES:
            want = ms.EXPECTED[name]
            if name == "memory-bomb" and not PROBE.memory_cgroup:
                want = ("graded", ms.FULL)  # RLIMIT_DATA only: MemoryError in the cell, the tests still run
            res = results[which][name]
            assert (res["status"], res["score"]) == want, (which, name, res.get("message"))
        assert check(batch.ws) == [], which
        # the searchers ran to the end and found neither batch's gradebook or results
        assert "found: []" in batch.outputs("reads-answer-key"), which
        assert "written: []" in batch.outputs("writes-gradebook"), which
        con = sqlite3.connect(batch.ws / "gradebook.db")
        students = {r[0] for r in con.execute("select id from student")}
        top = con.execute("select max(auto_score) from grade").fetchone()[0]
        con.close()
        assert students == set(NAMES) and top <= 2, which  # only its own students, no forged 100s
        assert sandbox.left_behind(batch.tmp) == ([], []), which
