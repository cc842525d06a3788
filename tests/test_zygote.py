"""Is a kernel forked from the zygote (autograder/zygote.py) confined as a kernel started from scratch,
fresh per submission, and faster to start?

Each test runs a real notebook in a real kernel through the grader's executor (execute.RunsInSandbox),
with the assignment's imports preloaded as ``grade`` does (``Run.preflight``). The hostile corpus
(test_hostile.py), the SIGKILL tests and the rootless batch run through the zygote too: this file
checks what is particular to it.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import Execute

from autograder import sandbox
from autograder.execute import Run, RunsInSandbox

PROBE = sandbox.probe()
pytestmark = pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")
LIMITS = sandbox.Limits(wall_s=120, cpu_s=60, memory_bytes=1024**3, nproc=64)

REPORT = """
import sys
warm = "torch" in sys.modules  # before this cell imports anything: was the kernel forked with torch loaded?
np_random = "numpy.random" in sys.modules  # numpy imports it lazily: not before the learner uses it
import gc, json, os, random, socket
import numpy, torch
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    net = "reached"
except OSError as e:
    net = type(e).__name__
try:
    open(SECRET).read()
    secret = "read"
except OSError as e:
    secret = type(e).__name__
print(json.dumps({"warm": warm, "np_random": np_random, "pid": os.getpid(), "uid": os.getuid(), "nnp": status["NoNewPrivs"].strip(),
                  "capeff": status["CapEff"].strip(), "capbnd": status["CapBnd"].strip(), "net": net,
                  "secret": secret, "draws": [torch.rand(1).item(), float(numpy.random.rand()), random.random()],
                  "threads": torch.get_num_threads(), "cwd": os.getcwd(), "gc": [gc.isenabled(), gc.get_threshold()],
                  "env": {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "HOME", "IPYTHONDIR",
                          "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "XDG_CACHE_HOME", "USER_SCRATCH")},
                  "parent_pid_known": "JPY_PARENT_PID" in os.environ,
                  "parent_handle": bool(__import__("ipykernel.kernelapp").kernelapp.IPKernelApp.instance().parent_handle)}))
"""


class _Exec(RunsInSandbox, Execute):
    pass


def _report(secret: pathlib.Path, preflight=("torch",)) -> dict:
    nb = new_notebook(cells=[new_code_cell(f"SECRET = {str(secret)!r}"), new_code_cell(REPORT)])
    run = Run(limits=LIMITS, unsafe=False, wall_s=120)
    run.preflight = list(preflight)
    try:
        ex = _Exec(run=run)
        ex.timeout = 60
        ex.preprocess(nb, {"metadata": {"path": str(run.scratch)}})
        scratch = str(run.scratch)
    finally:
        run.close()
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("output_type") == "stream")
    assert text, nb.cells[1].outputs
    return {**json.loads(text), "scratch": scratch}


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    path = tmp_path_factory.mktemp("grader-only") / "answer_key.txt"
    path.write_text("the grader's")
    return path


def test_a_forked_kernel_is_confined_like_a_fresh_one(secret):
    r = _report(secret)
    assert r["warm"], "torch was not loaded before the first cell: the kernel did not come from the zygote"
    assert r["pid"] == 1  # PID 1 of its own PID namespace
    if os.geteuid() == 0:
        assert r["uid"] >= sandbox.UID_BASE  # a uid of its own, not root's
    assert r["nnp"] == "1" and int(r["capeff"], 16) == 0 and int(r["capbnd"], 16) == 0
    assert r["net"] != "reached"
    assert r["secret"] in ("FileNotFoundError", "PermissionError")  # the grader's files are not in its root
    assert r["threads"] == 1  # the thread settings of a kernel from scratch
    assert r["cwd"] == r["scratch"]


def test_two_forked_kernels_never_share_random_draws(secret):
    a, b = _report(secret), _report(secret)
    assert a["warm"] and b["warm"]
    for x, y in zip(a["draws"], b["draws"]):  # torch, numpy, random: each reseeded from the OS per kernel
        assert x != y
    if os.geteuid() == 0:
        assert a["uid"] != b["uid"]  # one uid per kernel, as from scratch


def test_a_notebook_that_imports_no_torch_gets_no_torch(secret):
    """The zygote preloads only what the assignment's notebook imports: a kernel carries no library its
    learner did not ask for (a fork-heavy notebook costs what it costs without a zygote)."""
    r = _report(secret, preflight=())
    assert not r["warm"]


def test_switched_off_every_kernel_starts_from_scratch(secret, monkeypatch):
    """From scratch: no torch before the first cell, the same confinement, and the same environment
    variables as a forked kernel (jupyter_client's, not the zygote's: a kernel cannot tell them apart)."""
    warm = _report(secret)
    monkeypatch.setenv(sandbox.ZYGOTE_ENV, "0")
    r = _report(secret)
    assert not r["warm"] and r["pid"] == 1 and r["nnp"] == "1"
    assert "from scratch" in sandbox.zygote_status()
    assert warm["env"] == r["env"]
    # the zygote imports with the collector off, then freezes what it imported; its kernels collect as usual
    assert warm["np_random"] == r["np_random"] is False  # reseeding a fork imports nothing the learner did not
    assert warm["gc"] == r["gc"] and r["gc"][0] is True
    assert warm["parent_pid_known"] == r["parent_pid_known"] and warm["parent_handle"] == r["parent_handle"]


def test_a_zygote_started_early_is_the_one_the_batch_waits_for():
    """`grade` starts the zygote before it imports nbgrader (cli._start_zygote); grade() then waits for
    that one, running its own imports meanwhile, and starts no second one."""
    preload = ("numpy",)
    sandbox.start_zygote(preload)
    z = sandbox._ZYGOTES[preload]
    proc, ran = z["proc"], []
    assert proc.poll() is None and "starting" in z
    sock = sandbox.share_zygote(preload, meanwhile=lambda: ran.append(os.path.exists(z["sock"])))
    try:
        assert ran == [False]  # it ran while the zygote was still importing
        assert sock == z["sock"] and os.path.exists(sock) and sandbox._ZYGOTES[preload]["proc"] is proc
        assert sandbox.zygote_socket(preload) == sock
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(z["folder"], ignore_errors=True)
        sandbox._ZYGOTES.pop(preload, None)


def _run_cells(sources, *, timeout=60, during=None):
    """Run ``sources`` as one notebook in a warm kernel through the grader's executor; ``during(run)`` runs
    in a thread while the cells run. Returns (notebook, run, the error preprocess raised or None); the run is
    not closed yet (the caller looks at what its kernel left, then closes it)."""
    import threading

    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    run = Run(limits=LIMITS, unsafe=False, wall_s=120)
    run.preflight = ["torch"]
    ex = _Exec(run=run)
    ex.timeout = timeout
    seen = threading.Thread(target=during, args=(run,), daemon=True) if during else None
    if seen:
        seen.start()
    error = None
    try:
        ex.preprocess(nb, {"metadata": {"path": str(run.scratch)}})
    except Exception as exc:  # noqa: BLE001 - returned for the test to look at
        error = exc
    if seen:
        seen.join(30)
    return nb, run, error


def _children_running(pattern: str) -> list[str]:
    out = []
    for d in pathlib.Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if pattern in cmd:
                    out.append(cmd)
        except (OSError, ValueError, IndexError):
            continue
    return out


def _gone(path: str, seconds: float = 10.0) -> bool:
    import time

    end = time.monotonic() + seconds
    while os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)
    return not os.path.exists(path)


def test_the_worker_asks_the_zygote_itself_and_a_kill_leaves_nothing():
    """No client process stands between the grader and a warm kernel (a new interpreter per kernel, ~25 ms
    of CPU): the kernel manager holds the zygote's answer (sandbox.WarmKernel), whose pid is the zygote's
    launcher. The end of the notebook kills the kernel through that connection; the launcher then empties
    and removes the kernel's cgroups and exits, before the grader's own cleanup looks."""
    looked = {}

    def during(run):
        import time

        end = time.monotonic() + 20
        while run.kernel_process is None and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.3)  # the first cell sleeps 2 s: the kernel is alive now
        looked["process"] = run.kernel_process
        looked["clients"] = _children_running("via-zygote")
        looked["launcher_parent"] = pathlib.Path(f"/proc/{run.kernel_process.pid}/stat").read_text() \
            .rsplit(")", 1)[1].split()[1]

    nb, run, error = _run_cells(["import time; time.sleep(2)", "import os; print(open('/proc/self/cgroup').read())"],
                                during=during)
    try:
        assert error is None, error
        process = looked["process"]
        assert isinstance(process, sandbox.WarmKernel), type(process)
        assert looked["clients"] == []  # no `launcher.py via-zygote` process of ours
        zygote = sandbox._ZYGOTES[tuple(sandbox.preload_for(["torch"]))]["proc"]
        assert int(looked["launcher_parent"]) == zygote.pid  # the zygote's launcher, not a child of ours
        assert process.returncode is not None  # killed at the end of the notebook
        assert _gone(f"/proc/{process.pid}"), "the kernel's launcher outlived the kill"
        cgroups = sandbox._cgroup_paths(run.scratch).values()
        assert cgroups and all(_gone(str(p)) for p in cgroups), "the kernel's cgroups outlived the kill"
        text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
        assert sandbox.cgroup_name(run.scratch) in text  # the kernel ran in those cgroups
    finally:
        run.close()


def test_a_warm_kernel_that_ends_by_itself_reports_its_status():
    nb, run, error = _run_cells(["import os; os._exit(3)", "print('never')"])
    try:
        assert error is not None  # the kernel died under the executor
        assert isinstance(run.kernel_process, sandbox.WarmKernel)
        assert run.kernel_process.wait(timeout=10) == 3  # its exit status, from its launcher
        assert not nb.cells[1].get("outputs")
    finally:
        run.close()


def test_a_cell_timeout_interrupts_a_warm_kernel_and_the_next_cell_runs():
    """The per-cell limit interrupts (SIGINT through the zygote's launcher), it does not kill: the cell
    ends with KeyboardInterrupt and the next cell runs in the same kernel."""
    nb, run, error = _run_cells(["import time\nx = 41\ntime.sleep(60)", "print(x + 1)"], timeout=3)
    try:
        assert isinstance(run.kernel_process, sandbox.WarmKernel)
        names = [o.get("ename") for o in nb.cells[0].outputs if o.get("output_type") == "error"]
        assert "KeyboardInterrupt" in names, nb.cells[0].outputs
        assert "42" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    finally:
        run.close()


def test_without_an_answer_from_the_zygote_the_kernel_starts_from_scratch(secret, monkeypatch, capfd):
    """A zygote that is gone (its socket no longer answers): the kernel starts from scratch, as confined,
    and the grader's log says why."""
    missing = str(pathlib.Path(str(secret)).parent / "no-zygote.sock")
    monkeypatch.setattr(sandbox, "zygote_socket", lambda preload=(): missing)
    r = _report(secret)
    assert not r["warm"] and r["pid"] == 1 and r["nnp"] == "1" and r["net"] != "reached"
    assert r["secret"] in ("FileNotFoundError", "PermissionError")
    assert f"the zygote at {missing} did not answer" in capfd.readouterr().err


def test_a_kill_alone_ends_a_warm_kernel(tmp_path):
    """``WarmKernel.kill`` (what the wall-time watchdog and the outputs' cap call, from another thread, while
    the executor may still wait on a cell) ends the kernel by itself, with nobody waiting for it after."""
    import sys

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cmd = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher", "-f", str(scratch / "kernel.json")],
                       scratch=scratch, readable=[], limits=LIMITS, warm=True, preload=("torch",))
    process = sandbox.start_warm(cmd, dict(os.environ))
    assert isinstance(process, sandbox.WarmKernel)
    try:
        assert process.poll() is None and os.path.exists(f"/proc/{process.pid}")
        process.kill()
        assert process.poll() == 128 + 9
        assert _gone(f"/proc/{process.pid}"), "the kernel's launcher outlived the kill"
        assert all(_gone(str(p)) for p in sandbox._cgroup_paths(scratch).values())
    finally:
        process.wait(timeout=10)
        sandbox.cleanup(scratch)


def test_an_asker_that_dies_before_reading_its_answer_leaves_nothing(tmp_path):
    """The grader's worker killed between the zygote's answer (its launcher's pid) and reading it: the
    launcher then reads a reset connection, not an end. It must still kill the kernel and remove its
    cgroups and root (the worker that would have cleaned up is gone); it used to fail there and leave
    them (seen in the SIGKILL test: an empty cgroup left behind)."""
    import json
    import select
    import socket
    import sys
    import time

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cmd = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher", "-f", str(scratch / "kernel.json")],
                       scratch=scratch, readable=[], limits=LIMITS, warm=True, preload=("torch",))
    assert cmd[4] == "via-zygote"
    sock_path, spec, argv = cmd[5], json.loads(cmd[6]), cmd[8:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    with open(os.devnull, "r+b") as null:
        socket.send_fds(conn, [json.dumps({"spec": spec, "argv": argv, "env": {}}).encode() + b"\n"],
                        [null.fileno()] * 3)
    try:
        assert select.select([conn], [], [], 30)[0], "the zygote did not answer"
        pid = json.loads(conn.recv(4096, socket.MSG_PEEK).split(b"\n")[0])["pid"]  # left unread
        cgroups = list(sandbox._cgroup_paths(scratch).values())
        deadline = time.monotonic() + 30
        while not all(p.is_dir() for p in cgroups) and time.monotonic() < deadline:
            time.sleep(0.01)  # the launcher has made the kernel's cgroups
        assert cgroups and all(p.is_dir() for p in cgroups)
    finally:
        conn.close()  # with the answer unread: the launcher's next read is a reset
    try:
        assert _gone(f"/proc/{pid}"), "the launcher outlived its asker"
        assert all(_gone(str(p)) for p in cgroups), "the kernel's cgroups outlived its asker"
    finally:
        sandbox.cleanup(scratch)
