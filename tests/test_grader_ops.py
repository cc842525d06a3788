"""Operating the grader: one grader per workspace, a private workspace, messages a TA can act on,
feedback pages that do not contradict themselves.

Real nbgrader and real sandboxed kernels on the tiny hostile-scenario assignment ``sb_guard``
(numpy only, so kernels start fast) and, for a notebook of the wrong assignment, the course's own
ps1_dsc and ps8_quantization.
"""
from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import pathlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import zoneinfo

import nbformat
import pytest

from autograder import sandbox, wslock
from autograder.scenarios import make_hostile_scenarios as ms

REPO = pathlib.Path(__file__).resolve().parent.parent
SCEN = REPO / "autograder" / "scenarios"
A = ms.ASSIGNMENT
PROBE = sandbox.probe()
needs_sandbox = pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")


def cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def grade_args(ws, source=SCEN / "source", *extra):
    return ["grade", "--workspace", ws, "--assignment", A, "--source", source, "--workers", "2",
            "--timeout-cell", "10", "--timeout-notebook", "60", "--memory-mb", "512", *extra]


def scenario_class(root: pathlib.Path, students: dict[str, str]) -> pathlib.Path:
    """A folder of <student>/<notebook> from the scenarios: {student: scenario}."""
    for student, name in students.items():
        (root / student).mkdir(parents=True)
        shutil.copy(SCEN / ms.file_name(name), root / student / ms.SUBMITTED_NAME.get(name, ms.NOTEBOOK))
    return root


# ------------------------------------------------------------------ one grader per workspace

def _hold(ws: str, assignment: str, ready) -> None:
    wslock.acquire(ws, assignment)
    ready.set()
    time.sleep(600)


def test_lock_is_per_assignment_names_its_holder_and_stays_with_the_process_that_took_it(tmp_path):
    """A second lock of one workspace and assignment is refused with the holder's pid and host; another
    assignment is not; a forked child does not keep the lock once its parent lets go."""
    lock = wslock.acquire(tmp_path, A)
    other = wslock.acquire(tmp_path, "ps1_dsc")  # two assignments of one workspace may be graded side by side
    with pytest.raises(wslock.WorkspaceBusy) as busy:
        wslock.acquire(tmp_path, A)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in str(busy.value)
    child = mp.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()  # inherits the descriptor, and must close its copy
    try:
        path = str(wslock.lock_path(tmp_path, A))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(  # the fork handler runs in the child just after fork
                os.path.realpath(f"/proc/{child.pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{child.pid}/fd")):
            time.sleep(0.01)
        lock.release()
        again = wslock.acquire(tmp_path, A)  # the child is alive and holds nothing
        assert again is not None
        again.release()
    finally:
        child.kill()
        child.join()
        other.release()
    assert stat.S_IMODE(os.stat(wslock.lock_path(tmp_path, A)).st_mode) & 0o077 == 0


@pytest.mark.slow  # two `grade` commands (one refused at once), about 15 s
@needs_sandbox
def test_second_grade_is_refused_naming_the_holder_until_it_is_killed(tmp_path):
    """While a process holds the workspace, `grade` exits 1 at once naming its pid; after that holder is
    SIGKILLed (no chance to clean up), the next `grade` takes the lock and runs."""
    ws = tmp_path / "ws"
    (ws / "submitted").mkdir(parents=True)
    ready = mp.get_context("fork").Event()
    holder = mp.get_context("fork").Process(target=_hold, args=(str(ws), A, ready))
    holder.start()
    try:
        assert ready.wait(30)
        t0 = time.monotonic()
        refused = cli(*grade_args(ws))
        assert refused.returncode == 1, refused.stderr
        assert time.monotonic() - t0 < 30  # refused at once, not after waiting for the lock
        assert f"pid {holder.pid} on {socket.gethostname()}" in refused.stderr, refused.stderr
        assert "another grader is already grading sb_guard" in refused.stderr
        assert not (ws / "gradebook.db").exists()  # nothing was touched
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
    done = cli(*grade_args(ws))
    assert done.returncode == 0, done.stderr
    assert "another grader" not in done.stderr and (ws / "gradebook.db").is_file()


# ------------------------------------------------------------------ a private workspace, messages, feedback

COURSE = """
[late]
per_day = 0.25
cap = 0.5
missing_time = "late"

[assignments.sb_guard]
due = 2026-10-05T23:59:00
timezone = "Europe/Zurich"
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new workspace through collect, grade and feedback (the CLI, the sandbox on): a right answer,
    an empty upload, a notebook that prints gigabytes; the course file makes every submission late
    (no time known, missing_time = "late": the cap, 50%)."""
    if not PROBE.ok:
        pytest.skip(f"sandbox unavailable: {PROBE.reason}")
    tmp = tmp_path_factory.mktemp("fresh")
    subs = scenario_class(tmp / "in", {"right": "complete", "blank": "empty", "loud": "prints-gigabytes"})
    ws = tmp / "term" / "ws"  # neither folder exists yet
    col = cli("collect", subs, "--assignment", A, "--workspace", ws, "--source", SCEN / "source")
    assert col.returncode == 0, col.stdout + col.stderr
    (ws / "course.toml").write_text(COURSE)
    graded = cli(*grade_args(ws))
    assert graded.returncode == 0, graded.stdout + graded.stderr
    fb = cli("feedback", "--workspace", ws, "--assignment", A, "--source", SCEN / "source")
    assert fb.returncode == 0, fb.stdout + fb.stderr
    return ws, graded


def result(ws, student):
    return json.loads((ws / "results" / A / f"{student}.json").read_text())


@pytest.mark.slow
def test_a_new_workspace_is_private(fresh):
    """Nothing the grader wrote that holds submissions, grades or reference answers can be read by the
    group or others: the workspace itself, submitted/, .canary/, results/, autograded/, feedback/,
    gradebook.db, and everything under them."""
    ws, _ = fresh
    assert result(ws, "right")["score"] == 4.0  # graded for real, canary included, under the private umask
    paths = [ws, ws / "gradebook.db"]
    for name in ("submitted", ".canary", "results", "autograded", "feedback"):
        assert (ws / name).exists(), name
        paths += [ws / name, *(ws / name).rglob("*")]
    assert len(paths) > 20
    shared = [f"{p.relative_to(ws)}: {stat.filemode(p.stat().st_mode)}" for p in paths
              if stat.S_IMODE(p.lstat().st_mode) & 0o077]
    assert shared == []
    assert stat.S_IMODE(ws.parent.stat().st_mode) & 0o077 == 0  # made by the grader too


@pytest.mark.slow
def test_empty_upload_and_output_flood_say_what_happened(fresh):
    """An empty upload reads "empty file (0 bytes)"; a notebook stopped at the output cap names the cell
    that printed and the limit in MiB, not a byte count."""
    ws, graded = fresh
    blank, loud = result(ws, "blank"), result(ws, "loud")
    assert blank["status"] == "broken" and "empty file (0 bytes)" in blank["message"]
    assert "NotJSONError" not in blank["message"]
    assert loud["status"] == "broken"
    assert re.search(r"the cell `line = 'x' \* 1_000_000 \.\.\.` \(cell \d+\) printed more than 16 MiB",
                     loud["message"]), loud["message"]
    assert "bytes" not in loud["message"]
    assert "empty file (0 bytes)" in graded.stdout and "printed more than 16 MiB" in graded.stdout


@pytest.mark.slow
def test_feedback_header_dates_wrapping_and_nothing_submitted(fresh):
    """nbgrader's header does not claim the unpenalised score counts; times read as dates in the
    assignment's zone; long lines wrap; a student who handed in nothing reads so."""
    ws, _ = fresh
    res = result(ws, "right")
    assert (res["late"]["raw_score"], res["late"]["score"]) == (4.0, 2.0)
    page = (ws / "feedback" / "right" / A / f"{A}.html").read_text()
    assert not re.search(r"\(Score: 4\.0 / 4\.0\)", page)  # nbgrader's own header, unpenalised
    assert "tests: 4 / 4; after the 50% late penalty <b>2 / 4</b> counts" in page
    assert "<b>Due:</b> 5 Oct 2026, 23:59 CEST" in page and "2026-10-05T23:59" not in page
    assert "white-space: pre-wrap" in page and "overflow-wrap: anywhere" in page


@pytest.mark.slow  # no kernel runs (a roster student with nothing handed in, no canary), about 15 s
@needs_sandbox
def test_feedback_of_a_student_who_handed_in_nothing(tmp_path):
    subs = scenario_class(tmp_path / "in", {"right": "wrong-file-name"})
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\nright,R\nabsent,A\n")
    ws = tmp_path / "ws"
    col = cli("collect", subs, "--assignment", A, "--workspace", ws, "--source", SCEN / "source", "--roster", roster)
    assert col.returncode == 0, col.stdout + col.stderr
    assert cli(*grade_args(ws, SCEN / "source", "--no-canary")).returncode == 0
    assert cli("feedback", "--workspace", ws, "--assignment", A, "--source", SCEN / "source").returncode == 0
    absent = (ws / "feedback" / "absent" / A / "index.html").read_text()
    assert "Nothing was submitted" in absent and "0 / 4" in absent and "Status: <b>missing" not in absent


def test_times_read_as_dates_in_the_due_times_zone():
    from autograder.feedback import when
    zurich = zoneinfo.ZoneInfo("Europe/Zurich")
    assert when("2026-10-07T08:00:00+00:00", zurich) == "7 Oct 2026, 10:00 CEST"
    assert when("2026-12-01T08:00:00+00:00", zurich) == "1 Dec 2026, 09:00 CET"  # winter time
    assert when("2026-10-05T23:59:00+02:00") == "5 Oct 2026, 23:59 UTC+02"
    assert when(None) == "time unknown"
    assert when(dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc).isoformat()) == "2 Jan 2026, 03:04 UTC"


# ------------------------------------------------------------------ a notebook of another assignment

@pytest.mark.slow  # no kernel runs: the notebook is refused before
@needs_sandbox
def test_notebook_of_another_assignment_is_named(tmp_path):
    """ps8_quantization's notebook handed in as ps1_dsc.ipynb: the result names both assignments, not
    nbgrader's KeyError or metadata error."""
    from autograder.collect import collect
    from autograder.grade import Options, grade
    subs = tmp_path / "in"
    (subs / "mixup").mkdir(parents=True)
    shutil.copy(REPO / "exercises" / "ps8_quantization" / "ps8_quantization.ipynb", subs / "mixup" / "ps1_dsc.ipynb")
    ws = tmp_path / "ws"
    collect(subs, assignment="ps1_dsc", workspace=ws)
    grade(Options(workspace=str(ws), assignment="ps1_dsc", source=str(REPO / "solutions"), canary=False),
          workers=1, log=lambda line: None, progress_stream=open(os.devnull, "w"))
    res = json.loads((ws / "results" / "ps1_dsc" / "mixup.json").read_text())
    assert res["status"] == "broken" and res["score"] == 0
    assert "this is not ps1_dsc's notebook (it looks like ps8_quantization" in res["message"], res["message"]
    assert "KeyError" not in res["message"] and "grade_id" not in res["message"]


def test_foreign_notebook_compares_cell_ids_with_every_source(tmp_path):
    """Its own notebook, even edited, is never called foreign; an unknown one is, without a guess."""
    from autograder.job import foreign_notebook
    src = REPO / "solutions"
    own = nbformat.read(REPO / "exercises" / "ps1_dsc" / "ps1_dsc.ipynb", as_version=4)
    assert foreign_notebook(own, src, "ps1_dsc", "ps1_dsc.ipynb") is None
    own.cells = own.cells[:3]  # most cells deleted: still ps1_dsc's
    assert foreign_notebook(own, src, "ps1_dsc", "ps1_dsc.ipynb") is None
    ps2 = nbformat.read(REPO / "exercises" / "ps2_cost" / "ps2_cost.ipynb", as_version=4)
    assert "(it looks like ps2_cost" in foreign_notebook(ps2, src, "ps1_dsc", "ps1_dsc.ipynb")
    for cell in ps2.cells:
        if "grade_id" in cell.metadata.get("nbgrader", {}):
            cell.metadata.nbgrader["grade_id"] = "x_" + cell.metadata.nbgrader["grade_id"]
    said = foreign_notebook(ps2, src, "ps1_dsc", "ps1_dsc.ipynb")
    assert said.startswith("this is not ps1_dsc's notebook: none of its") and "looks like" not in said


# ------------------------------------------------------------------ a canary failure names the change

@pytest.mark.slow  # two grading runs of one notebook (and the canary), about 40 s
@needs_sandbox
def test_canary_failure_names_the_source_change_since_it_last_passed(tmp_path):
    """The canary passes, then a hidden test of the source is broken: the refused batch names that file."""
    source = tmp_path / "source"
    shutil.copytree(SCEN / "source", source)
    ws = tmp_path / "ws"
    subs = scenario_class(tmp_path / "in", {"right": "complete"})
    assert cli("collect", subs, "--assignment", A, "--workspace", ws, "--source", source).returncode == 0
    first = cli(*grade_args(ws, source))
    assert first.returncode == 0, first.stderr
    assert (ws / ".canary" / A / "passed.json").is_file()
    nb_path = source / A / ms.NOTEBOOK
    nb = nbformat.read(nb_path, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                and not c.metadata.nbgrader.get("solution") and "BEGIN HIDDEN TESTS" in c.source)
    test.source = test.source.replace("### END HIDDEN TESTS", "assert False, 'a slip in the reference'\n### END HIDDEN TESTS")
    nbformat.write(nb, nb_path)
    second = cli(*grade_args(ws, source))
    assert second.returncode == 3, second.stderr
    assert "Likely cause: the reference changed since the canary last passed here" in second.stderr
    assert "changed: " in second.stderr and str(nb_path) in second.stderr, second.stderr


def test_source_changes_falls_back_to_git_and_survives_without_it(tmp_path, monkeypatch):
    """No record of a passing canary: uncommitted changes git reports are named; no git: no sentence, no crash."""
    from autograder import canary as g
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "course"
    shutil.copytree(SCEN / "source", repo / "solutions")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "source"]):
        subprocess.run(["git", "-C", str(repo), *argv], check=True, env=env)
    opts = g.Options(workspace=str(tmp_path / "ws"), assignment=A, source=str(repo / "solutions"))
    assert g.source_changes(opts) == ""  # committed, unchanged, no earlier run: nothing to point at
    guard = repo / "solutions" / "grading_guard.py"
    guard.write_text("# a shared helper of the checks, new\n")
    said = g.source_changes(opts)
    assert said.startswith("Likely cause: uncommitted changes to the reference (git status):")
    assert str(guard) in said
    monkeypatch.setattr(g.shutil, "which", lambda name: None)  # a machine without git
    assert g.source_changes(opts) == ""


def test_canary_hashes_the_authored_checks_of_its_assignment_only(tmp_path):
    """The canary's inputs include assignments/ beside the source (the toolkit, the loader, this
    assignment's checks), not another assignment's; without an assignments/ folder, nothing of it."""
    from autograder import canary as g
    repo = tmp_path / "course"
    shutil.copytree(SCEN / "source", repo / "solutions")
    opts = g.Options(workspace=str(tmp_path / "ws"), assignment=A, source=str(repo / "solutions"))
    assert not [p for p in g.canary_inputs(opts) if "assignments" in p]
    for rel in ("toolkit.py", "loader.py", f"{A}/checks.py", "ps9_other/checks.py"):
        (repo / "assignments" / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / "assignments" / rel).write_text("# authored\n")
    hashed = [p.replace(os.sep, "/") for p in g.canary_inputs(opts)]
    for rel in ("toolkit.py", "loader.py", f"{A}/checks.py"):
        assert any(p.endswith("assignments/" + rel) for p in hashed), (rel, hashed)
    assert not any("ps9_other" in p for p in hashed)


# ------------------------------------------------------------------ --unsafe kernels die with their worker

WORKER = """
import os, subprocess, sys, time
from autograder import sandbox
from autograder.execute import Run, SandboxedKernelManager
km = SandboxedKernelManager(kernel_name="python3").bind(Run(limits=sandbox.Limits(), unsafe=True))
argv = km.format_kernel_cmd()
prefix = argv[:argv.index(str(os.getpid())) + 1]  # what comes before the kernel's own command
child = subprocess.Popen([*prefix, "/bin/sleep", "600"])  # a kernel that watches nothing itself
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_unsafe_kernel_command_dies_with_the_worker(tmp_path):
    """With --unsafe there is no launcher to watch the worker: the kernel command itself carries the
    parent-death signal, so a SIGKILLed worker takes its kernel along (ipykernel's own parent poller
    cannot run while student code holds the GIL, nor in a process that is not ipykernel)."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    kernel = int(worker.stdout.readline())
    try:
        assert pathlib.Path(f"/proc/{kernel}").exists()
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(kernel):
            time.sleep(0.05)
        assert not _running(kernel)
    finally:
        if _running(kernel):
            os.kill(kernel, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
