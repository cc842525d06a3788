"""Run Jupyter Book 1's Sphinx build with the book's own configuration and some overrides.

``jupyter-book build`` always uses ``_build/.doctrees``; a second language (or the gettext
builder) needs its own doctree folder, which only the Python entry point lets us choose.
"""
from __future__ import annotations

from pathlib import Path

from jupyter_book.sphinx import build_sphinx

from mnlib.display import ZH

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
LOCALE_DIR = ROOT / "book" / "locale"
LANGUAGE = ZH   # the second edition (mnlib.display.ZH: the suffix of its glued forms too)
# One jupyter-cache for every edition: myst-nb would otherwise put it beside the output folder,
# and a build into _build/html/zh_CN would execute every page a second time.
CACHE = BUILD / ".jupyter_cache"


def under(root: Path, path: Path) -> Path:
    """The same place in another book (a test's small one): ``under(tmp, CACHE)``."""
    return root / path.relative_to(ROOT)


def build(builder: str, outdir: Path, *, language: str | None = None, warningiserror: bool = False,
          keep_going: bool = False, quiet: bool = False, extra: dict | None = None, root: Path = ROOT) -> int:
    """Build the book at ``root`` (the course's own, or a test's small one) with ``builder``."""
    overrides = {
        "external_toc_path": str(root / "_toc.yml"),
        "latex_individualpages": False,
        "nb_execution_cache_path": str(under(root, CACHE)),
        "gettext_compact": False,      # one catalogue per page: book/part1/ch02_dsc.po
        "gettext_uuid": False,
        "gettext_location": True,
        "gettext_additional_targets": [],
    }
    if language:
        overrides.update({"language": language, "locale_dirs": [str(under(root, LOCALE_DIR))]})
    overrides.update(extra or {})
    tag = language or builder
    result = build_sphinx(
        root, outdir, noconfig=True, path_config=str(root / "_config.yml"), confoverrides=overrides,
        doctreedir=str(under(root, BUILD) / f".doctrees-{tag}"), builder=builder,
        warningiserror=warningiserror, keep_going=keep_going, quiet=quiet)
    if isinstance(result, BaseException):
        raise result
    return int(result or 0)
