"""Test the tests: the graded assignments under real nbgrader autograde, with real kernels.

For every assignment: does the solution score full marks, does the blank release score 0 on every
autograded cell, and does each plausible-mistake submission (tests/scenarios/<id>/) lose exactly
the grade cells aimed at it and keep all the others? (That exercises/ is what a fresh release gives is
tests/test_autograder_pipeline.py's test_release_reproduces_committed_exercises.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

import make_scenarios
import nbgrader_harness as H

HERE = Path(__file__).resolve().parent

IDS = sorted(p.name for p in H.SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())


def _points(aid: str) -> dict[str, float]:
    nb = nbformat.read(H.SOLUTIONS / aid / f"{aid}.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def _comparable(nb) -> list:
    """What must not drift: cell types, sources and nbgrader metadata (checksums included), not ids."""
    return [(c.cell_type, c.source, dict(c.metadata.get("nbgrader", {}))) for c in nb.cells]


@pytest.mark.parametrize("aid", IDS)
def test_source_notebooks_are_what_the_generator_writes(aid):
    """Is solutions/<id>/<id>.ipynb exactly what assignments/build.py produces now?"""
    from assignments import build

    fresh = build.make(aid)
    committed = nbformat.read(H.SOLUTIONS / aid / f"{aid}.ipynb", as_version=4)
    assert _comparable(fresh) == _comparable(committed), f"{aid}: run .venv/bin/python -m assignments.build {aid}"


def test_scenarios_are_in_sync_with_the_release():
    """Is each scenario the released notebook with the solution's answers and exactly one cell replaced?"""
    for aid, scenarios in make_scenarios.SCENARIOS.items():
        released = H.EXERCISES / aid / f"{aid}.ipynb"
        solution = H.answers(H.SOLUTIONS / aid / f"{aid}.ipynb")
        points = _points(aid)
        for name, (cell, loses, _why, source) in scenarios.items():
            path = HERE / "scenarios" / aid / f"{name}.ipynb"
            assert path.exists(), f"missing {path}: run tests/scenarios/make_scenarios.py"
            stored = nbformat.read(path, as_version=4)
            fresh = H.submission(released, {**solution, cell: source.strip("\n")})
            assert _comparable(stored) == _comparable(fresh), f"{aid}/{name} is stale: run make_scenarios.py"
            assert set(loses) <= set(points), f"{aid}/{name} names an unknown grade cell"
            assert all(points[g] > 0 for g in loses), f"{aid}/{name} loses a 0-point cell"


@pytest.mark.slow
@pytest.mark.parametrize("aid", IDS)
def test_grading_solution_blank_and_mistakes(aid, tmp_path):
    """Full marks for the solution, 0 for the blank release, and each mistake loses exactly its cells."""
    points = _points(aid)
    course = H.Course(aid, tmp_path)
    subs = {"solution": H.submission(course.released, H.answers(H.SOLUTIONS / aid / f"{aid}.ipynb")),
            "blank": H.submission(course.released, {})}
    expected_loss = {}
    for path in sorted((HERE / "scenarios" / aid).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        subs[path.stem] = nb
        expected_loss[path.stem] = set(nb.metadata["scenario"]["loses"])
    scores = course.grade(subs)

    assert scores["solution"] == points, "the solution must score full marks on every grade cell"
    blank = {g: s for g, s in scores["blank"].items() if points[g] > 0}
    assert blank == {g: 0.0 for g in blank}, "the blank release must score 0 on every autograded cell"
    wrong = []  # every scenario that scores otherwise, not only the first
    for name, loses in expected_loss.items():
        want = {g: (0.0 if g in loses else p) for g, p in points.items()}
        if scores[name] != want:
            wrong.append(f"scenario {name}: expected to lose exactly {sorted(loses)}; differs in "
                         f"{sorted(g for g in want if scores[name].get(g) != want[g])}")
    assert not wrong, "\n".join(wrong)


def _grade_with_the_course_grader(aid: str, subs: dict, tmp_path: Path) -> dict[str, dict]:
    """Collect and grade ``subs`` with ``python -m autograder`` (sandbox on): result file per student."""
    import json
    import subprocess

    folder, ws = tmp_path / "submissions", tmp_path / "ws"
    for student, nb in subs.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / f"{aid}.ipynb")
    for args in (["collect", str(folder), "--assignment", aid, "--workspace", str(ws)],
                 ["grade", "--assignment", aid, "--workspace", str(ws), "--workers", "2"]):
        run = subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                             cwd=HERE.parent, timeout=1800)
        assert run.returncode == 0, run.stdout + run.stderr
    return {p.stem: json.loads(p.read_text()) for p in (ws / "results" / aid).glob("*.json")}


@pytest.mark.slow
@pytest.mark.parametrize("aid", IDS)
def test_grading_in_the_grader_process(aid, tmp_path):
    """The same verdicts when the course's grader runs the hidden checks in its own process.

    `python -m autograder grade` runs each hidden check in the grader (autograder/remote.py), the
    learner's objects reached through requests to the kernel; nbgrader above runs them in the
    kernel. Solution, blank release and every mistake must score the same cell by cell.
    """
    from autograder import remote, sandbox
    if not sandbox.probe().ok:
        pytest.skip("the course grader needs its sandbox")
    points = _points(aid)
    source = nbformat.read(H.SOLUTIONS / aid / f"{aid}.ipynb", as_version=4)
    assert remote.supports_remote(source), f"{aid}: its hidden checks are not written to run in the grader"
    released = H.EXERCISES / aid / f"{aid}.ipynb"
    subs = {"solution": H.submission(released, H.answers(H.SOLUTIONS / aid / f"{aid}.ipynb")),
            "blank": H.submission(released, {})}
    expected_loss = {"solution": set(), "blank": {g for g, p in points.items() if p > 0}}
    for path in sorted((HERE / "scenarios" / aid).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        subs[path.stem.replace("_", "-")] = nb
        expected_loss[path.stem.replace("_", "-")] = set(nb.metadata["scenario"]["loses"])
    results = _grade_with_the_course_grader(aid, subs, tmp_path)
    assert set(results) == set(subs)
    wrong = []  # every scenario that scores otherwise, not only the first
    for name, loses in expected_loss.items():
        res = results[name]
        if res["status"] != "graded":
            wrong.append(f"{aid}/{name}: status {res['status']}: {res.get('message')}")
            continue
        got = {g: c["score"] for g, c in res["cells"].items()}
        want = {g: (0.0 if g in loses else p) for g, p in points.items()}
        if got != want:
            wrong.append(f"{aid}/{name}: expected to lose exactly {sorted(loses)}; reasons: "
                         + str({g: c["reason"] for g, c in res["cells"].items() if c["score"] != want[g]}))
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_stderr_alone_costs_nothing_under_plain_nbgrader(tmp_path):
    """Does output on stderr (a library warning, a learner's debug print) leave a right answer its points?

    Plain nbgrader zeroes a test cell on any stderr output; the course's rule (autograder/execute.py,
    cell_score) is that only an error does, and the grader setup cell makes plain nbgrader follow it.
    Without that, a matplotlib font warning gave a right plot 0 on machines with other fonts.
    """
    aid = "ps2_cost"
    points = _points(aid)
    noisy = {gid: "import sys, warnings\n" + src + "\nprint('debug: defined', file=sys.stderr)\n"
             "_real_speedup = speedup\n" * (gid == "ps2_answer_ratios") +
             "def speedup(*a, **k):\n    warnings.warn('a warning on every call')\n    return _real_speedup(*a, **k)\n"
             * (gid == "ps2_answer_ratios")
             for gid, src in H.answers(H.SOLUTIONS / aid / f"{aid}.ipynb").items()}
    course = H.Course(aid, tmp_path)
    scores = course.grade({"noisy": H.submission(course.released, noisy)})
    assert scores["noisy"] == points
