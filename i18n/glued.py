"""Glued values that are English words, and whether the page glued a Chinese form beside them.

A page computes a verdict or a phrase in code and pastes it into its prose with
``{glue:text}`key```. The Chinese edition shows ``key@zh_CN`` instead when the page glued one
(``mnlib.display.glue_editions``); a glued English phrase without it would put English words into a
Chinese sentence. ``english_without_chinese(nb)`` lists those keys of an executed notebook.
``python -m i18n run-page book/part1/ch03_cost.md`` executes one page as the book does (its own
folder as working directory) and prints them.
"""
from __future__ import annotations

import re
from pathlib import Path

from mnlib.display import ZH

from .markup import prose

_WORD = re.compile(r"(?<![\w./-])[a-z]{2,}(?![\w./-])")
# Words a number may carry in both editions: units and names, not prose.
_NOT_PROSE = {"ms", "mb", "kib", "mib", "gib", "macs", "flops", "int", "fp", "bf", "cpu", "gpu", "avx",
              "torch", "onnx", "qnnpack", "onednn", "fbgemm", "x86", "relu", "hswish", "nan", "none"}


def glued(nb) -> dict[str, str]:
    """Every glued key of an executed notebook, with its text (markdown if any, else plain)."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            data = output.get("data", {})
            text = (data.get("application/papermill.record/text/markdown")
                    or data.get("application/papermill.record/text/plain") or "")
            out[record["name"]] = text
    return out


def english_words(text: str) -> list[str]:
    words = re.sub(r"https?://\S+", " ", prose(text))
    return [w for w in _WORD.findall(words) if w not in _NOT_PROSE]


def english_without_chinese(nb) -> dict[str, str]:
    values = glued(nb)
    return {key: text for key, text in values.items()
            if "@" not in key and english_words(text) and f"{key}@{ZH}" not in values}


def run_page(path: Path):
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook
    from nbclient import NotebookClient

    nb = read_myst_markdown_notebook(path.read_text(encoding="utf-8"))
    nb = nbformat.from_dict(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    return nb
