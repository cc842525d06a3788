"""Shared fixtures and markers of the course's test suite."""
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


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
        import sys

        sys.path.insert(0, str(ROOT / "autograder" / "scenarios"))
        import make_hostile_scenarios as ms

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
