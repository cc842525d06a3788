"""A page's messages as numbered plain-text blocks, for translating in an ordinary editor.

``export`` writes::

    ## 3  book/part1/ch02_dsc.md:34
    A standard convolution couples space and channels

and ``apply`` reads the same layout back with the Chinese under each ``## N`` line (a block left
out or left empty stays untranslated). A block whose markup differs from its English message's
(``markup.problems``) is refused with its number, and nothing is written for that page.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import markup
from .catalog import read, write

_HEADER = re.compile(r"^## (\d+)(?:\s.*)?$")


def export(po_path: Path) -> str:
    out = []
    for n, message in enumerate((m for m in read(po_path) if m.id), start=1):
        where = " ".join(f"{f}:{line}" for f, line in message.locations[:1]).replace("../../", "")
        out.append(f"## {n}  {where}\n{message.id}\n")
    return "\n".join(out)


def parse(text: str) -> dict[int, str]:
    blocks: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = int(header.group(1))
            if current in blocks:
                raise ValueError(f"block {current} appears twice")
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {n: "\n".join(lines).strip("\n") for n, lines in blocks.items()}


def apply(po_path: Path, text: str) -> list[str]:
    """Set the translations; returns the problems (nothing is written when there are any)."""
    catalog = read(po_path)
    messages = [m for m in catalog if m.id]
    problems = []
    for n, string in sorted(parse(text).items()):
        if not 1 <= n <= len(messages):
            problems.append(f"block {n}: the page has {len(messages)} messages")
            continue
        message = messages[n - 1]
        if "\n" not in message.id:
            string = " ".join(part.strip() for part in string.splitlines() if part.strip())
        string = markup.escape_block_start(string)
        for problem in markup.problems(message.id, string):
            problems.append(f"block {n}: {problem}")
        message.string = string
    if not problems:
        write(po_path, catalog)
    return problems
