"""What a kernel must import before any cell runs (job.kernel_modules), read from the assignment's own
notebooks: once per worker while they stay as they are, again as soon as one changes."""
from __future__ import annotations

import shutil

import nbformat

from autograder import job
from autograder.kernel_probe import assignment_modules
from autograder.nbgrader_config import SOURCE
from autograder.options import Options


def test_the_modules_follow_the_source_notebook_when_it_changes(tmp_path):
    shutil.copytree(SOURCE / "ps1_dsc", tmp_path / "ps1_dsc")
    opts = Options(workspace=str(tmp_path / "ws"), assignment="ps1_dsc", source=str(tmp_path))
    path = tmp_path / "ps1_dsc" / "ps1_dsc.ipynb"
    first = job.kernel_modules(opts, ["ps1_dsc.ipynb"])
    assert first == assignment_modules(tmp_path, "ps1_dsc", ["ps1_dsc.ipynb"])  # the uncached reading
    assert "torch" in first and "sqlite3" not in first
    assert job.kernel_modules(opts, ["ps1_dsc.ipynb"]) == first
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sqlite3"))
    nbformat.write(nb, path)  # the instructor edits the source between two arrivals (watch)
    assert job.kernel_modules(opts, ["ps1_dsc.ipynb"]) == sorted([*first, "sqlite3"])
    path.unlink()
    assert job.kernel_modules(opts, ["ps1_dsc.ipynb"]) == []
