"""Does autograder.sandbox confine code? Each test runs a small Python program through sandbox.wrap."""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from autograder import sandbox

PROBE = sandbox.probe()
needs_sandbox = pytest.mark.skipif(not PROBE.ok, reason=f"sandbox unavailable: {PROBE.reason}")
SMALL = sandbox.Limits(wall_s=60, cpu_s=20, memory_bytes=512 * 1024**2, output_bytes=64 * 1024,
                       disk_bytes=8 * 1024**2, nproc=32)


def run_confined(code: str, scratch: pathlib.Path, limits: sandbox.Limits = SMALL, readable=(), timeout=90):
    argv = sandbox.wrap([sys.executable, "-c", textwrap.dedent(code)], scratch=scratch,
                        readable=list(readable), limits=limits)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=scratch)
    finally:
        sandbox.cleanup(scratch)


def _running(cmdline: str) -> bool:
    return any(" ".join(p.info["cmdline"] or []) == cmdline for p in psutil.process_iter(["cmdline"]))


@pytest.fixture
def scratch(tmp_path):
    d = tmp_path / "scratch"
    d.mkdir()
    return d


def test_probe_names_the_mechanism():
    """Does probe() say which mechanism it checked (and why not, when it fails)?"""
    assert PROBE.mechanism == sandbox.mechanism()
    assert PROBE.mechanism == (sandbox.MECHANISM if os.geteuid() == 0 else sandbox.ROOTLESS)
    assert PROBE.reason


def test_unsafe_mode_returns_argv_unchanged(scratch):
    """Is --unsafe the only way to run without confinement?"""
    assert sandbox.wrap(["python", "-c", "1"], scratch=scratch, readable=[], limits=SMALL, unsafe=True) == [
        "python", "-c", "1"]


@needs_sandbox
def test_runs_as_an_unprivileged_uid_with_python_and_mnlib(scratch, published):
    """Does confined code run, import torch and mnlib, and lack root?"""
    r = run_confined("""
        import os, torch, mnlib.models
        print(os.getuid(), os.geteuid(), sum(p.numel() for p in mnlib.models.mobilenet_v2().parameters()))
    """, scratch, limits=sandbox.Limits(wall_s=120, memory_bytes=2 * 1024**3))
    assert r.returncode == 0, r.stderr
    uid, euid, params = r.stdout.split()
    if PROBE.mechanism == sandbox.MECHANISM:  # root: a uid of its own; rootless: this account, no capability
        assert int(uid) >= sandbox.UID_BASE and int(euid) == int(uid)
    else:
        assert int(uid) == os.getuid() != 0 and int(euid) == int(uid)
    # V2 anchor, mnlib really is the repository's: the published parameter count (data/published.json,
    # torchvision's), not a snapshot of our code
    assert int(params) == published["params"]["mobilenet_v2"]["value"]


@needs_sandbox
def test_cannot_read_forbidden_files(tmp_path, scratch):
    """Are solutions, a gradebook and another student's work invisible, even when world-readable?"""
    secret = tmp_path / "solutions" / "answer.txt"
    secret.parent.mkdir()
    secret.write_text("42")
    secret.chmod(0o644)
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades")
    gradebook.chmod(0o666)  # even a world-writable gradebook must be out of reach
    r = run_confined(f"""
        import os
        for p in [{str(secret)!r}, {str(gradebook)!r}, "/work/main/solutions", "/etc/shadow"]:
            try:
                open(p).read() if os.path.isfile(p) else os.listdir(p)
                print("READ", p)
            except OSError as e:
                print("DENIED", p, type(e).__name__)
        try:
            open({str(gradebook)!r}, "w").write("hacked")
            print("WROTE")
        except OSError:
            print("NOWRITE")
    """, scratch)
    assert r.returncode == 0, r.stderr
    assert "READ" not in r.stdout and "WROTE" not in r.stdout, r.stdout
    assert gradebook.read_text() == "grades"


@needs_sandbox
def test_readable_paths_are_read_only(tmp_path, scratch):
    """Can the sandbox read what it is given, but not change it?"""
    given = tmp_path / "release"
    given.mkdir()
    (given / "data.txt").write_text("data")
    r = run_confined(f"""
        print(open({str(given / 'data.txt')!r}).read())
        try:
            open({str(given / 'data.txt')!r}, "w").write("x")
        except OSError as e:
            print("RO", e.errno)
    """, scratch, readable=[given])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "data" and "RO" in r.stdout
    assert (given / "data.txt").read_text() == "data"


@needs_sandbox
def test_no_network_to_the_host_loopback(scratch):
    """Can confined code reach a server listening on the host's 127.0.0.1? (It must not.)"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        r = run_confined(f"""
            import socket
            s = socket.socket()
            s.settimeout(3)
            print(s.connect_ex(("127.0.0.1", {port})))
        """, scratch)
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) != 0  # ENETUNREACH: only a down loopback exists inside


@needs_sandbox
def test_fork_bomb_is_held(scratch):
    """Does a fork bomb hit the process limit instead of the machine?"""
    r = run_confined("""
        import os
        n = 0
        try:
            for _ in range(10_000):
                if os.fork() == 0:
                    import time; time.sleep(30); os._exit(0)
                n += 1
        except OSError as e:
            print("HELD", n, e.errno)
    """, scratch, timeout=60)
    assert "HELD" in r.stdout, (r.stdout, r.stderr)
    assert int(r.stdout.split()[1]) < SMALL.nproc


@needs_sandbox
def test_memory_bomb_is_killed_or_refused(scratch):
    """Does allocating 4x the memory limit fail inside the sandbox, not on the host?"""
    r = run_confined("""
        chunks = []
        for _ in range(40):
            chunks.append(bytearray(50 * 1024**2))  # touched: bytearray zero-fills
        print("ALLOCATED", len(chunks))
    """, scratch)
    assert "ALLOCATED" not in r.stdout
    assert r.returncode != 0


@needs_sandbox
def test_cpu_loop_is_killed(scratch):
    """Is a busy loop stopped by the CPU-time limit (long before the wall-time backstop)?"""
    limits = sandbox.Limits(wall_s=600, cpu_s=2, memory_bytes=512 * 1024**2, output_bytes=1024,
                            disk_bytes=1024**2, nproc=16)
    # if only the 600 s wall limit stopped it, run_confined's 60 s timeout would fail the test
    r = run_confined("while True: pass", scratch, limits=limits, timeout=60)
    assert r.returncode == 128 + signal.SIGKILL, r.returncode  # PID 1 ignores SIGXCPU: the hard limit kills


@needs_sandbox
def test_wall_time_backstop_kills_a_sleeper(scratch):
    """Does the launcher's wall-time limit end a process that sleeps (no CPU used)?"""
    limits = sandbox.Limits(wall_s=2, cpu_s=10, memory_bytes=512 * 1024**2, output_bytes=1024,
                            disk_bytes=1024**2, nproc=16)
    r = run_confined("import time; time.sleep(120); print('WOKE')", scratch, limits=limits, timeout=60)
    assert "WOKE" not in r.stdout and r.returncode != 0


@needs_sandbox
def test_disk_writes_are_bounded(scratch):
    """Does writing a file past the disk limit fail (per file and in the private /tmp)?"""
    r = run_confined("""
        for path in ["big.bin", "/tmp/big.bin"]:
            try:
                with open(path, "wb") as f:
                    for _ in range(100):
                        f.write(b"x" * 1024**2)
                print("WROTE", path)
            except OSError as e:
                print("HELD", path, e.errno)
    """, scratch)
    assert r.stdout.count("HELD") == 2, (r.stdout, r.stderr)


@needs_sandbox
def test_raw_output_is_bounded(scratch):
    """Is what the process writes to its own stdout cut at the output limit?"""
    r = run_confined("""
        import os
        for _ in range(64):
            os.write(1, b"y" * 65536)
    """, scratch)
    assert len(r.stdout) < SMALL.output_bytes + 1024
    assert "discarded" in r.stdout


@needs_sandbox
def test_no_process_survives(tmp_path, scratch):
    """Is a background process the code starts gone once it exits, and its tmp files with it?"""
    marker = "sleep 300.%d" % os.getpid()  # a command line no other process has
    r = run_confined(f"""
        import subprocess
        subprocess.Popen("{marker}".split(), start_new_session=True)
        print("STARTED")
    """, scratch)
    assert "STARTED" in r.stdout, r.stderr
    time.sleep(0.5)
    assert not _running(marker)


@needs_sandbox
def test_environment_is_clean(scratch, monkeypatch):
    """Does a secret in the grader's environment stay out of the sandbox?"""
    monkeypatch.setenv("GRADER_TOKEN", "s3cret")
    r = run_confined("import os; print(os.environ.get('GRADER_TOKEN'), os.environ['HOME'])", scratch)
    assert r.stdout.split()[0] == "None"


@needs_sandbox
def test_output_flood_is_stopped_in_the_grader():
    """Does a notebook printing 1 MB lines forever stop at the output cap, the grader's memory bounded?"""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    from nbgrader.preprocessors import Execute

    from autograder.execute import Run, RunsInSandbox

    nb = new_notebook(cells=[new_code_cell("line = 'x' * 1_000_000\nwhile True:\n    print(line, flush=True)"),
                             new_code_cell("print('after')")])
    class Exec(RunsInSandbox, sandbox.BoundedOutputs, Execute):
        output_limit = 4 * 2**20

    run = Run(limits=SMALL, unsafe=False, wall_s=60)
    ex = Exec(run=run)
    ex.timeout = 30
    try:
        with pytest.raises(sandbox.OutputTooLarge):
            ex.preprocess(nb, {"metadata": {"path": str(run.scratch)}})
    finally:
        run.close()
    assert ex.output_overflow
    kept = sum(len(o.get("text", "")) for o in nb.cells[0].outputs)
    assert 0 < kept <= 4 * 2**20 and not nb.cells[1].outputs
    assert len(nbformat.writes(nb)) < 5 * 2**20


@needs_sandbox
def test_kernel_dies_with_the_grader(scratch):
    """If the process that started the sandbox is SIGKILLed, does the confined process die too?"""
    marker = "sleep 301.%d" % os.getpid()
    argv = sandbox.wrap(marker.split(), scratch=scratch, readable=[], limits=SMALL)
    # a short-lived parent that starts the sandbox and is killed at once, like a grader worker
    starter = subprocess.Popen([sys.executable, "-c", "import os, signal, subprocess, sys, time; "
                                "subprocess.Popen(sys.argv[1:]); time.sleep(2); os.kill(os.getpid(), signal.SIGKILL)",
                                *argv])
    starter.wait(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(marker):
        time.sleep(0.2)
    assert not _running(marker)
    sandbox.cleanup(scratch)


@needs_sandbox
def test_left_behind_sees_its_own_batch_only(tmp_path):
    """Does left_behind(folder) list a live sandbox of that folder, and not one whose scratch is elsewhere?"""
    mine, other = tmp_path / "mine", tmp_path / "other"
    procs = []
    for folder in (mine, other):
        (folder / "ag-x").mkdir(parents=True)
        argv = sandbox.wrap(["sleep", "300"], scratch=folder / "ag-x", readable=[], limits=SMALL)
        procs.append(subprocess.Popen(argv, start_new_session=True))

    def kernels(folder):  # the confined sleeps (a launcher passing through its cgroup may show up too)
        return [p for p in sandbox.left_behind(folder)[0] if p.split(": ", 1)[1].startswith("sleep 300")]

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (kernels(mine) and kernels(other)):
            time.sleep(0.1)
        assert len(kernels(mine)) == 1 and len(kernels(other)) == 1  # each batch sees only its own
        cgroups = sandbox.left_behind(mine)[1]
        if PROBE.memory_cgroup:  # a cgroup per v1 controller (one on v2), named for its scratch dir
            assert {c.name for c in cgroups} == {sandbox.cgroup_name(mine / "ag-x")}
    finally:
        for p in procs:
            sandbox.kill_tree(p.pid)
            p.wait()
        sandbox.cleanup(mine / "ag-x")
        sandbox.cleanup(other / "ag-x")
    assert sandbox.left_behind(mine) == ([], []) and sandbox.left_behind(other) == ([], [])
