"""``python -m autograder similarity`` on the sample class (autograder/samples/make_similarity_samples.py).

Every copy is flagged against its true source (a classmate renamed and reordered, the reference
reformatted, mnlib adapted, an earlier term's answer) and no other pair is: not the five independent
correct solutions written differently, not the two blank notebooks (the released stubs are
boilerplate). The report is private, the same under any PYTHONHASHSEED, and ``check`` lists the flags.
The browser test opens the report offline and counts the highlighted regions.
"""
from __future__ import annotations

import csv
import itertools
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest

from helpers import ROOT

ASSIGNMENT = "ps4_inverted_residual"


def _generator():
    from autograder.samples import make_similarity_samples  # the sample class's generator, by name
    return make_similarity_samples


def _run(ws: pathlib.Path, sample: pathlib.Path, seed: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    return subprocess.run([sys.executable, "-m", "autograder", "similarity", "--assignment", ASSIGNMENT,
                           "--workspace", str(ws), "--against", str(sample / "archive" / "fall2025")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The sample class written into a fresh workspace, and the command run on it once."""
    tmp = tmp_path_factory.mktemp("similarity")
    sample, ws = tmp / "sample", tmp / "ws"
    _generator().write(sample, ws)
    proc = _run(ws, sample)
    assert proc.returncode == 0, proc.stderr
    folder = ws / "similarity" / ASSIGNMENT
    with open(folder / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {"ws": ws, "sample": sample, "folder": folder, "rows": rows, "stdout": proc.stdout,
            "expected": json.loads((sample / "expected.json").read_text())}


def test_every_copy_is_flagged_against_its_source_and_nothing_else(report):
    flagged = {frozenset((r["a"], r["b"])) for r in report["rows"] if r["flagged"] == "yes"}
    expected = {frozenset(pair) for pair in report["expected"]["flagged"]}
    assert flagged - expected == set(), f"flagged though independent: {sorted(map(sorted, flagged - expected))}"
    assert expected - flagged == set(), f"copies not flagged: {sorted(map(sorted, expected - flagged))}"
    assert len(expected) == 4


def test_independent_and_blank_pairs_stay_clear_of_both_thresholds_with_a_margin(report):
    """The chosen thresholds sit between the two groups, not on the edge of one (see the docstring)."""
    from autograder.similarity import MIN_RUN
    expected = {frozenset(pair) for pair in report["expected"]["flagged"]}
    rows = {frozenset((r["a"], r["b"])): r for r in report["rows"]}
    copies = [rows[p] for p in expected]
    others = [r for p, r in rows.items() if p not in expected]
    assert min(int(r["longest_run"]) for r in copies) >= 1.25 * MIN_RUN
    assert max(int(r["longest_run"]) for r in others) <= 0.8 * MIN_RUN
    independent = report["expected"]["independent"]
    for a, b in itertools.combinations(independent, 2):  # written differently, yet they do share code
        assert rows.get(frozenset((a, b)), {}).get("flagged", "no") == "no"
    clear = independent + report["expected"]["archive_independent"] + [f"solutions/{ASSIGNMENT}"]
    assert sum(frozenset((a, b)) in rows for a, b in itertools.combinations(clear, 2)) >= 3, \
        "independent solutions share runs of code (listed, not flagged): the test must see some of them"
    blank = report["expected"]["blank"]
    assert frozenset(blank) not in rows, "two blank notebooks matched: the released stubs were not boilerplate"


def test_the_flags_depend_on_the_thresholds(report, tmp_path):
    """With no thresholds, independent pairs are flagged: the test above can fail."""
    from autograder.similarity import similarity
    ws = tmp_path / "ws"
    shutil.copytree(report["ws"] / "submitted", ws / "submitted")
    rep = similarity(ASSIGNMENT, ws, against=[report["sample"] / "archive" / "fall2025"], min_run=0, min_share=0)
    assert len(rep.flagged) > 10


def test_renaming_everything_changes_nothing(report):
    """The earlier term's copy only renames names: every token matches."""
    row = next(r for r in report["rows"] if {r["a"], r["b"]} == {"s11", "fall2025/old02"})
    assert float(row["share_a"]) == pytest.approx(1.0) and float(row["share_b"]) == pytest.approx(1.0)


def test_the_report_is_private_offline_and_names_students_by_id(report):
    folder = report["folder"]
    pages = sorted(folder.glob("pair-*.html"))
    assert len(pages) == len(report["expected"]["flagged"])
    for path in [folder / "pairs.csv", folder / "index.html", *pages]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "<script" not in text, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    students = set(os.listdir(report["ws"] / "submitted"))
    names = {r["a"] for r in report["rows"]}
    assert names <= students, "column a is always a student of the class, by course id"
    assert "review" in report["stdout"] and "index.html" in report["stdout"]


def test_code_is_escaped(tmp_path):
    from autograder.similarity import highlight
    out = highlight("x = '<script>alert(1)</script>' & y\nz = 1\n", ([4], [30]))
    assert "<script" not in out and "</script" not in out and "&lt;script&gt;" in out
    assert out.count('<mark class="match">') == 1 and "&amp; y" in out


def test_same_report_under_any_hash_seed(report, tmp_path):
    """copydetect hashes with Python's salted hash(); the report swaps in a stable one."""
    ws = tmp_path / "ws"
    shutil.copytree(report["ws"] / "submitted", ws / "submitted")
    proc = _run(ws, report["sample"], seed="12345")
    assert proc.returncode == 0, proc.stderr
    again = (ws / "similarity" / ASSIGNMENT / "pairs.csv").read_text()
    assert again == (report["folder"] / "pairs.csv").read_text()


def test_check_lists_the_flagged_pairs_for_review(report):
    from autograder.check import check
    lines = [line for line in check(report["ws"]) if line.startswith("review:")]
    assert len(lines) == len(report["expected"]["flagged"])
    assert any("s08" in line and "s03" in line and "pair-" in line for line in lines)
    assert all("not a penalty" in line for line in lines)


def test_fingerprints_over_several_processes_are_the_same(report):
    """A large class is fingerprinted in forked workers: same fingerprints as in one process."""
    from autograder import similarity as sim
    docs, boilerplate = sim.documents(ASSIGNMENT, report["ws"])
    many = [sim.Document(f"{d.name}-{n}", d.kind, d.text) for n in range(4) for d in docs]
    one = [sim.Document(d.name, d.kind, d.text) for d in many]
    sim.fingerprint(many, boilerplate, workers=2)
    sim.fingerprint(one, boilerplate, workers=1)
    assert len(many) >= 40
    for x, y in zip(many, one):
        assert x.fp.hashes == y.fp.hashes and x.fp.hash_idx == y.fp.hash_idx, x.name


def test_independent_solutions_are_correct():
    """The sample's independent solutions (and the archived ones) pass the notebook's visible checks
    and compute block MACs as mnlib does: 'correct solutions written differently', not strawmen."""
    gen = _generator()
    import mnlib.cost
    for name in gen.INDEPENDENT + ["old01", "old02"]:
        answers = gen.CLASS.get(name) or gen.ARCHIVE[name]
        ns: dict = {}
        for cell in gen.fill(answers).cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, f"{name}:{cell.metadata.get('nbgrader', {}).get('grade_id')}", "exec"), ns)
        for args in [(16, 24, 112, 112, 6, 3, 2), (32, 16, 7, 7, 1, 3, 1), (24, 24, 15, 9, 6, 5, 2)]:
            assert ns["block_macs"](*args) == mnlib.cost.inverted_residual_macs(*args[:5], kernel_size=args[5],
                                                                                stride=args[6]), (name, args)


@pytest.mark.browser
def test_report_in_the_browser(report):
    """Debian's chromium opens the index and every pair page: nothing leaves the machine, and both
    sides of every flagged pair show highlighted regions."""
    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not pathlib.Path(chromium).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
    folder = report["folder"]
    shots = ROOT / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    outside, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda req: None if req.url.startswith("file://") else outside.append(req.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto((folder / "index.html").as_uri(), wait_until="load")
        links = page.locator("a[href^='pair-']")
        assert links.count() == len(report["expected"]["flagged"])
        assert page.locator("tr.flagged").count() == links.count()
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        for n, href in enumerate(hrefs):
            page.goto((folder / href).as_uri(), wait_until="load")
            left, right = page.locator("#a mark.match").count(), page.locator("#b mark.match").count()
            assert left > 0 and right > 0, (href, left, right)
            shown = page.evaluate("() => [...document.querySelectorAll('mark.match')].filter("
                                  "m => m.getBoundingClientRect().width > 0).length")
            assert shown == left + right, f"{href}: highlighted regions not rendered"
            if n == 0:
                page.screenshot(path=str(shots / "similarity-pair.png"), full_page=False)
        browser.close()
    assert outside == [], f"requests left the machine: {outside}"
    assert errors == []
