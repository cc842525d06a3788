"""Does the whole hostile batch grade the same as a normal account (no root anywhere) as it does as root?

Instructors grade on university servers as normal users. There the sandbox is an unprivileged user
namespace (autograder/sandbox.py, ROOTLESS) instead of root's per-kernel uid. Run as root (CI), this
test creates a system account and a venv it can read (from Debian's /usr/bin/python3.11: the
project's venv sits on an interpreter under /root), copies the grader into a folder the account
owns, and grades every hostile scenario as that account. Run as a normal user, it grades as you.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

from autograder import sandbox

ROOT = pathlib.Path(__file__).resolve().parents[1]
ACCOUNT = "mnl-grader"
DEBIAN_PYTHON = pathlib.Path("/usr/bin/python3.11")
# what grading needs in the account's venv, at the versions of requirements.lock
GRADING = ("torch", "nbgrader", "numpy", "psutil", "ipykernel", "nbclient", "nbformat", "jupyter_client",
           "SQLAlchemy")

pytestmark = [pytest.mark.slow,  # a venv (first time, ~2 min) and a batch of 24 notebooks (~1.5 min)
              pytest.mark.skipif(sys.platform != "linux", reason="Linux namespaces")]


def _pins() -> list[str]:
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    norm = {name.lower().replace("_", "-") for name in GRADING}
    return [line.strip() for line in lock if "==" in line and line.split("==")[0].lower().replace("_", "-") in norm]


def _account_python() -> tuple[dict, str]:
    """(subprocess user options, python) for grading as a normal account."""
    if os.geteuid() != 0:
        return {}, sys.executable
    if not DEBIAN_PYTHON.exists():
        pytest.skip(f"no {DEBIAN_PYTHON} for the test account's venv")
    try:
        pwd.getpwnam(ACCOUNT)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT],
                       check=True)
    pins = _pins()
    assert len(pins) == len(GRADING), pins
    key = hashlib.sha1("\n".join([str(DEBIAN_PYTHON), *pins]).encode()).hexdigest()[:12]
    venv = pathlib.Path(f"/var/tmp/mnlib-grader-venv-{key}")  # kept between runs: built once per machine
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(venv)], check=True)
        r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        (venv / ".complete").touch()
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    return {"user": ACCOUNT, "group": pwd.getpwnam(ACCOUNT).pw_gid, "extra_groups": []}, str(venv / "bin" / "python")


@pytest.fixture(scope="module")
def rootless_batch():
    from autograder.scenarios import make_hostile_scenarios as ms

    who, python = _account_python()
    work = pathlib.Path(tempfile.mkdtemp(prefix="mnl-rootless-", dir="/var/tmp"))
    try:
        for part in ("autograder", "mnlib"):
            shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ms.EXPECTED:
            dest = work / "subs" / name
            dest.mkdir(parents=True)
            src = ROOT / "autograder" / "scenarios" / ms.file_name(name)
            shutil.copy(src, dest / (src.name if name in ms.SUBMITTED_NAME else ms.NOTEBOOK))
        (work / "tmp").mkdir()
        if who:
            subprocess.run(["chown", "-R", who["user"], str(work)], check=True)
        env = {"PATH": f"{pathlib.Path(python).parent}:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work / "tmp"),
               "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}

        def run(*args):
            return subprocess.run([python, *args], cwd=work, env=env, capture_output=True, text=True, timeout=900, **who)

        probe = run("-c", "import json, dataclasses; from autograder import sandbox; "
                          "print(json.dumps(dataclasses.asdict(sandbox.probe())))")
        assert probe.returncode == 0, probe.stderr
        probe = json.loads(probe.stdout)
        source = ["--source", "autograder/scenarios/source"]
        col = run("-m", "autograder", "collect", "subs", "--assignment", ms.ASSIGNMENT, "--workspace", "ws", *source)
        assert col.returncode == 0, col.stderr
        g = run("-m", "autograder", "grade", "--workspace", "ws", "--assignment", ms.ASSIGNMENT, *source,
                "--workers", "2", "--timeout-cell", "10", "--timeout-notebook", "60", "--memory-mb", "512")
        results = {p.stem: json.loads(p.read_text()) for p in (work / "ws" / "results" / ms.ASSIGNMENT).glob("*.json")}
        yield {"ms": ms, "probe": probe, "grade": g, "results": results, "work": work,
               "left": sandbox.left_behind(work / "tmp")}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_sandbox_is_rootless_there(rootless_batch):
    """Does the account get the user-namespace sandbox (not --unsafe, not root's uid switch)?"""
    probe, g = rootless_batch["probe"], rootless_batch["grade"]
    assert probe["ok"] and probe["mechanism"] == sandbox.ROOTLESS, probe
    assert g.returncode == 0, g.stdout[-2000:] + g.stderr[-2000:]
    assert f"sandbox: {sandbox.ROOTLESS}" in g.stderr
    bound = "cgroup" if probe["memory_cgroup"] else "RLIMIT_DATA"
    assert f"memory: 512 MiB ({bound})" in g.stderr and "network: none" in g.stderr  # the limits in force, said


def test_every_scenario_gets_its_root_outcome(rootless_batch):
    """Each hostile or broken submission: exactly the status and score it gets when root grades it."""
    ms, results, probe = rootless_batch["ms"], rootless_batch["results"], rootless_batch["probe"]
    assert set(results) == set(ms.EXPECTED)
    for name, (status, score) in ms.EXPECTED.items():
        if name == "memory-bomb" and not probe["memory_cgroup"]:
            status, score = "graded", ms.FULL  # RLIMIT_DATA: MemoryError in the cell, the tests still run
        assert (results[name]["status"], results[name]["score"]) == (status, score), (name, results[name].get("message"))


def test_nothing_survives_and_nothing_was_reached(rootless_batch):
    """No process or cgroup left; the searchers found no gradebook; the network stayed shut."""
    assert rootless_batch["left"] == ([], [])
    ws = rootless_batch["work"] / "ws"

    def printed(student):
        nb = json.loads((ws / "autograded" / student / "sb_guard" / "sb_guard.ipynb").read_text())
        return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))

    assert "found: []" in printed("reads-answer-key")
    assert "written: []" in printed("writes-gradebook")
    net = printed("network-access")
    assert "CONNECTED" not in net and net.count("blocked") == 3
