"""Helpers shared by test modules (imported as ``helpers``: pytest puts tests/ on the path), so that no
test module imports another."""
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"  # the built book (make book)
# The front matter that makes a Markdown file a MyST notebook (every page of the book opens with it).
MYST_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def toc_pages() -> list[str]:
    """Every page of the book's table of contents (_toc.yml), root first, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for e in entries:
            pages.append(e["file"])
            walk(e.get("sections", []))
    for part in toc["parts"]:
        walk(part["chapters"])
    return pages
