"""The book build: a failing cell fails it, every page of the table of contents is built, and no
built page references anything on the internet."""
import re
import shutil
import subprocess

import pytest

from helpers import HTML, MYST_HEADER, ROOT, toc_pages

JB = str(ROOT / ".venv" / "bin" / "jupyter-book")
HEADER = MYST_HEADER


def _mini_book(tmp_path, cell):
    """A one-page book with the course's own _config.yml and the given code cell."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", tmp_path / "book" / "_ext")
    shutil.copytree(ROOT / "book" / "_static", tmp_path / "book" / "_static")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "book" / "page.md").write_text(HEADER + f"# Page\n\n```{{code-cell}} python\n{cell}\n```\n")
    return subprocess.run([JB, "build", str(tmp_path), "-W", "--keep-going"], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)


def test_failing_cell_fails_the_build(tmp_path):
    """Does a cell that raises make `jupyter-book build -W` (what make book runs) exit non-zero?"""
    bad = _mini_book(tmp_path, "raise RuntimeError('this cell is broken')")
    assert bad.returncode != 0, bad.stdout[-2000:]
    assert "this cell is broken" in bad.stdout + bad.stderr


def test_passing_cell_builds(tmp_path):
    """The same mini book with a working cell builds: the failure above is the cell's doing."""
    good = _mini_book(tmp_path, "print(1 + 1)")
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]


@pytest.mark.book
def test_every_toc_page_is_built():
    missing = [p for p in toc_pages() if not (HTML / f"{p}.html").exists()]
    assert not missing, f"pages not built (run make book): {missing}"


LOADS = re.compile(r'<(?:script|img|iframe|source|video|audio)[^>]*\ssrc="(https?:)?//[^"]*"'
                   r'|<link[^>]*rel="(?:stylesheet|preload|icon)"[^>]*href="(?:https?:)?//[^"]*"'
                   r'|@import\s+url\((?:https?:)?//', re.I)


@pytest.mark.book
def test_no_built_file_loads_from_the_internet():
    """No HTML or CSS file of the built book asks the browser to fetch anything from another host."""
    offenders = []
    for path in list(HTML.rglob("*.html")) + list(HTML.rglob("*.css")):
        if "_sources" in path.parts:
            continue
        m = LOADS.search(path.read_text(encoding="utf-8", errors="replace"))
        if m:
            offenders.append(f"{path.relative_to(HTML)}: {m.group(0)[:120]}")
    assert not offenders, offenders[:10]
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax is not served locally"
