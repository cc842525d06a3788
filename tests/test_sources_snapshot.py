"""The sanitizers reading the batch's snapshot of the gradebook (restore.sources_snapshot) against
nbgrader's own, which query the database for every notebook and cell: the same sanitized notebook, the
same restored cells, or the same error, for every sample submission, every hostile scenario, and each
one tampered with the ways a submission can be (cells deleted, retyped, unlocked, re-pointed, ids
unknown to the gradebook, a kernelspec changed)."""
from __future__ import annotations

import copy
import pathlib

import nbformat
import pytest
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteKernelspec

from autograder.grade import Options, ensure_assignment
from autograder.nbgrader_config import SOURCE
from autograder.options import config
from autograder.restore import CheckMetadata, OverwriteKernelspecFrom, RestoreCells, sources_snapshot
from autograder.scenarios import make_hostile_scenarios as ms

REPO = pathlib.Path(__file__).resolve().parent.parent
CORPORA = {  # assignment: (source folder, submitted notebooks)
    "ps1_dsc": (SOURCE, sorted((REPO / "autograder" / "samples" / "ps1_dsc").glob("*/ps1_dsc.ipynb"))),
    ms.ASSIGNMENT: (REPO / "autograder" / "scenarios" / "source", sorted((REPO / "autograder" / "scenarios").glob("*.ipynb"))),
}


def _graded(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _tampered(nb):
    """(name, notebook) variants of a readable submission."""
    yield "as submitted", nb
    graded = _graded(nb)
    for name, change in {
        "first test cell deleted": lambda x: x.cells.remove(_graded(x)[0]),
        "every test cell deleted": lambda x: [x.cells.remove(c) for c in _graded(x)],
        "test cell made markdown": lambda x: setattr(_graded(x)[-1], "cell_type", "markdown"),
        "test cell unlocked and edited": lambda x: (_graded(x)[-1].metadata.nbgrader.update(locked=False),
                                                    setattr(_graded(x)[-1], "source", "pass")),
        "points raised": lambda x: _graded(x)[-1].metadata.nbgrader.update(points=1000),
        "unknown grade id": lambda x: _graded(x)[-1].metadata.nbgrader.update(grade_id="not_in_the_gradebook"),
        "answer cell claims points": lambda x: next(c for c in x.cells if c.metadata.get("nbgrader", {}).get(
            "solution")).metadata.nbgrader.update(grade=True, points=5),
        "kernelspec changed": lambda x: x.metadata.update(kernelspec={"name": "evil", "display_name": "e",
                                                                      "language": "python"}),
        "cell order reversed": lambda x: x.cells.reverse(),
    }.items():
        if not graded and "test cell" in name:
            continue
        variant = copy.deepcopy(nb)
        try:
            change(variant)
        except (StopIteration, IndexError):  # no such cell to tamper with (stripped metadata)
            continue
        yield name, variant


def _sanitize(nb, cfg, resources, sources):
    nb, resources = copy.deepcopy(nb), copy.deepcopy(resources)
    restorer = RestoreCells(config=cfg)
    restorer.sources = sources
    if sources is None:
        kernelspec = OverwriteKernelspec(config=cfg)  # nbgrader's own
    else:
        kernelspec = OverwriteKernelspecFrom(config=cfg)
        kernelspec.sources = sources
    try:
        for pp in (ClearOutput(config=cfg), DeduplicateIds(config=cfg), kernelspec, restorer, CheckMetadata(config=cfg)):
            nb, resources = pp.preprocess(nb, resources)
    except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
        return ("error", type(exc).__name__, str(exc))
    for cell in nb.cells:  # a cell put back gets a new random id, either way
        if cell.metadata.get("nbgrader", {}).get("grade_id") in restorer.restored:
            cell.id = "restored-" + cell.metadata.nbgrader.grade_id.replace("_", "-")
    return ("ok", nbformat.writes(nb), tuple(restorer.restored))


@pytest.mark.parametrize("assignment", sorted(CORPORA))
def test_the_snapshot_sanitizes_like_the_database(assignment, tmp_path):
    source, corpus = CORPORA[assignment]
    opts = Options(workspace=str(tmp_path / "ws"), assignment=assignment, source=str(source))
    ensure_assignment(opts)
    notebooks = sorted(p.name for p in (source / assignment).glob("*.ipynb"))
    cfg = config(opts)
    db_url = cfg.CourseDirectory.db_url
    sources = sources_snapshot(db_url, assignment, notebooks)
    assert set(sources) == {n.removesuffix(".ipynb") for n in notebooks}
    stem = notebooks[0].removesuffix(".ipynb")
    compared, outcomes = 0, set()
    for path in corpus:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - unreadable submissions never reach the sanitizers
            continue
        resources = {"nbgrader": {"student": "s", "assignment": assignment, "notebook": stem, "db_url": db_url}}
        for how, variant in _tampered(nb):
            want = _sanitize(variant, cfg, resources, None)
            got = _sanitize(variant, cfg, resources, sources)
            assert got == want, f"{path.name}, {how}"
            compared += 1
            outcomes.add((want[0], bool(want[-1]) if want[0] == "ok" else want[1]))
    assert compared >= 40
    # the comparison covers clean passes, cells put back and nbgrader's refusals
    assert ("ok", False) in outcomes and ("ok", True) in outcomes and any(o[0] == "error" for o in outcomes), outcomes


def test_a_notebook_the_gradebook_lacks_gets_nbgraders_error(tmp_path):
    opts = Options(workspace=str(tmp_path / "ws"), assignment="ps1_dsc", source=str(SOURCE))
    ensure_assignment(opts)
    cfg = config(opts)
    db_url = cfg.CourseDirectory.db_url
    sources = sources_snapshot(db_url, "ps1_dsc", ["ps1_dsc.ipynb", "not_there.ipynb"])
    assert set(sources) == {"ps1_dsc"}
    nb = nbformat.read(SOURCE / "ps1_dsc" / "ps1_dsc.ipynb", as_version=4)
    resources = {"nbgrader": {"student": "s", "assignment": "ps1_dsc", "notebook": "not_there", "db_url": db_url}}
    want = _sanitize(nb, cfg, resources, None)
    assert want[0] == "error" and "No such notebook" in want[2]
    assert _sanitize(nb, cfg, resources, sources) == want
