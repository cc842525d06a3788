"""Shared fixtures and markers of the course's test suite."""
import json
import pathlib

import pytest

from helpers import ROOT


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a minute (still part of make test)")
    config.addinivalue_line("markers", "browser: drives Debian's chromium over the built book")
    config.addinivalue_line("markers", "book: reads the built book in _build/html (run make book first)")


@pytest.fixture(scope="session")
def published():
    """Published numbers kept as data with their sources (data/published.json)."""
    return json.loads((ROOT / "data" / "published.json").read_text())


class GradingBatch:
    """One ``python -m autograder`` grading batch of the hostile scenarios, with everything in its own folder.

    Submissions, workspace and TMPDIR (where the sandboxes' scratch dirs go, and so what
    ``sandbox.left_behind`` looks at) all live under ``root``: a test looks only at what its batch made,
    whatever other batch grades on the same machine.
    """

    def __init__(self, root: pathlib.Path, names, *, cell_s: int, notebook_s: int, memory_mb: int = 512):
        import shutil

        from autograder.scenarios import make_hostile_scenarios as ms

        self.ms, self.names = ms, list(names)
        self.root, self.subs, self.ws, self.tmp = root, root / "submissions", root / "ws", root / "tmp"
        self.tmp.mkdir(parents=True)
        for name in self.names:
            dest = self.subs / name
            dest.mkdir(parents=True)
            src = ROOT / "autograder" / "scenarios" / ms.file_name(name)
            shutil.copy(src, dest / (src.name if name in ms.SUBMITTED_NAME else ms.NOTEBOOK))
        self.source = ["--source", str(ROOT / "autograder" / "scenarios" / "source")]
        self.limits = ["--timeout-cell", str(cell_s), "--timeout-notebook", str(notebook_s), "--memory-mb", str(memory_mb)]
        self.proc = None
        self.out = ""

    def _argv(self, *args):
        import sys

        return [sys.executable, "-m", "autograder", *args]

    def _env(self):
        import os

        return {**os.environ, "TMPDIR": str(self.tmp)}

    def start(self) -> "GradingBatch":
        """Collect (at once) and start grading (in the background) with two workers."""
        import subprocess

        col = subprocess.run(self._argv("collect", str(self.subs), "--assignment", self.ms.ASSIGNMENT,
                                        "--workspace", str(self.ws), *self.source),
                             capture_output=True, text=True, cwd=ROOT, env=self._env(), timeout=300)
        assert col.returncode == 0, col.stderr
        self.out = col.stdout
        self.proc = subprocess.Popen(self._argv("grade", "--workspace", str(self.ws), "--assignment", self.ms.ASSIGNMENT,
                                                *self.source, "--workers", "2", *self.limits),
                                     cwd=ROOT, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        return self

    def finish(self, timeout: float = 900) -> dict:
        """Wait for the grade run; return the result files by student."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.out += out
        assert self.proc.returncode == 0, self.out[-3000:]
        return self.results()

    def results(self) -> dict:
        return {p.stem: json.loads(p.read_text()) for p in (self.ws / "results" / self.ms.ASSIGNMENT).glob("*.json")}

    def outputs(self, student: str) -> str:
        """All text a student's autograded notebook printed."""
        nb = json.loads((self.ws / "autograded" / student / self.ms.ASSIGNMENT / self.ms.NOTEBOOK).read_text())
        return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


@pytest.fixture(scope="session")
def grading_batch():
    """The GradingBatch class (a fixture, so test modules need no imports from each other)."""
    return GradingBatch


PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql (.ci/run installs it)


class PostgresServer:
    """A private PostgreSQL server for the tests: its own data folder, a unix socket in it, no TCP.

    As root it runs as the ``postgres`` system account (the server refuses root), in a temp folder
    that account owns. ``database()`` makes a new empty database and returns its SQLAlchemy URL.
    """

    def __init__(self, bindir: pathlib.Path):
        import os
        import pwd
        import subprocess
        import tempfile

        self.bin = bindir
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp"))
        self.as_user = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.root.chmod(0o755)
        self.data, self.log = self.root / "data", self.root / "server.log"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-c listen_addresses='' -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", opts)
        self.count = 0
        self.subprocess = subprocess

    def _run(self, tool, *args):
        import subprocess

        proc = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, cwd=self.root,
                              timeout=120, **self.as_user)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.is_file() else ""
            raise RuntimeError(f"{tool} failed: {proc.stdout}{proc.stderr}{log[-2000:]}")
        return proc

    def url(self, name: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{name}?host={self.root}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.root), user="postgres", dbname="postgres", autocommit=True) as con:
            con.execute(sql)

    def database(self) -> tuple[str, str]:
        """(name, URL) of a new empty database with a unique name."""
        import os

        self.count += 1
        name = f"t{os.getpid()}_{self.count}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name, self.url(name)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        import shutil

        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server for the session (skipped, saying why, without Debian's binaries)."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (Debian's postgresql package; .ci/run installs it)")
    server = PostgresServer(PG_BIN)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_server):
    """The URL of a fresh database of the private server, dropped after the test."""
    name, url = postgres_server.database()
    try:
        yield url
    finally:
        postgres_server.drop(name)


def _kill_grade_after(argv, env, results, n_results: int, cwd=ROOT) -> int:
    """Start ``argv`` (a grade run), SIGKILL its whole process group once ``n_results`` result files exist
    in ``results``; return how many there were."""
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(list(results.glob("*.json"))) < n_results:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(results.glob("*.json")))


@pytest.fixture(scope="session")
def kill_grade_after():
    """_kill_grade_after: SIGKILL a grade run mid-batch (a fixture, so test modules share one copy)."""
    return _kill_grade_after
