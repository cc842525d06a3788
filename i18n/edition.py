"""Build the zh_CN edition into ``_build/html/zh_CN`` from the English build's executed pages.

The English build (``jupyter-book build .``) runs every page once and stores it in the
jupyter-cache; this build reads the same cache records. A page whose record is missing would be
executed again, so the build counts the cache's records before and after and fails when one was
added: the Chinese edition never shows a number of its own.
"""
from __future__ import annotations

import sqlite3
import sys

from pathlib import Path

from . import terms
from .sphinx import BUILD, CACHE, LANGUAGE, ROOT, build, under

TITLE = "MobileNet：从原理到设备"


def _records(root: Path) -> int:
    db = under(root, CACHE) / "global.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from nbcache").fetchone()[0]


def build_edition(root: Path = ROOT) -> int:
    build_dir = under(root, BUILD)
    before = _records(root)
    if before == 0:
        print("python -m i18n build: no executed pages in _build/.jupyter_cache; build the English book "
              "first (make book)", file=sys.stderr)
        return 2
    # The search index segments Chinese text with jieba; the glossary's terms are its user
    # dictionary, so that 深度可分离卷积 is one word to search for, not four.
    words = build_dir / "zh_CN-search-words.txt"
    words.write_text("".join(f"{term} 100000\n" for term in terms.chinese_terms() if " " not in term),
                     encoding="utf-8")
    status = build("html", build_dir / "html" / LANGUAGE, language=LANGUAGE, root=root, warningiserror=True, keep_going=True,
                   extra={"html_title": TITLE, "html_search_options": {"dict": str(words)}})
    added = _records(root) - before
    if added:
        print(f"python -m i18n build: the zh_CN build executed {added} page(s) that the English build "
              "had not cached; its numbers would not be the English edition's", file=sys.stderr)
        return 3
    return status
