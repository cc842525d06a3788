"""One Chinese term per concept, from the glossary page (book/glossary.md), the single source.

The glossary's table pairs each English term with its Chinese (``English | 中文 | ...``): a cell
``depthwise convolution`` with ``深度卷积（逐通道卷积）`` says that 深度卷积 is the term and
逐通道卷积 an accepted alternative; ``kernel / filter`` with ``卷积核 / 滤波器`` pairs term by term.
``problems()`` reads every translated message: when its English names a glossary concept (a
term of two words or more, outside code, maths and roles: single words such as "channel" or
"kernel" have other meanings in the book), its Chinese must use one of that concept's Chinese
forms. A page that writes 倒置残差 where the glossary says 倒残差 fails.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .markup import prose

GLOSSARY = Path(__file__).resolve().parent.parent / "book" / "glossary.md"


@dataclass(frozen=True)
class Concept:
    english: tuple[str, ...]   # the English forms a message may use
    chinese: tuple[str, ...]   # the Chinese forms a translation may use (the first is preferred)


def _forms(cell: str, opening: str, closing: str) -> list[list[str]]:
    """``a / b`` -> [[a], [b]]; ``a (x)`` -> [[a, x]]: the alternatives of each paired term."""
    cell = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell).strip()
    out = []
    for part in [p.strip() for p in cell.split(" / ")]:
        inner = re.findall(re.escape(opening) + r"([^" + re.escape(closing) + r"]*)" + re.escape(closing), part)
        head = re.sub(re.escape(opening) + r"[^" + re.escape(closing) + r"]*" + re.escape(closing), "", part).strip()
        alternatives = [head] + [x.strip() for i in inner for x in i.split(" / ") if x.strip()]
        out.append([a.strip().strip('"') for a in alternatives if a.strip()])
    return out


def pairs(path: Path = GLOSSARY) -> list[tuple[list[str], list[str]]]:
    """Every row of the glossary's table as (English forms, Chinese forms), term by term."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.search(r"[\u4e00-\u9fff]", cells[1]) or cells[0] == "English":
            continue
        english, chinese = _forms(cells[0], "(", ")"), _forms(cells[1], "（", "）")
        if len(english) != len(chinese):       # one concept written with several parts
            english, chinese = [sum(english, [])], [sum(chinese, [])]
        out += list(zip(english, chinese))
    return out


def concepts(path: Path = GLOSSARY) -> list[Concept]:
    """The concepts the check looks for: those with an English form of two words or more."""
    out = []
    for en, zh in pairs(path):
        checked = tuple(e for e in en if len(e.split()) >= 2 or "-" in e.strip("-"))
        if checked:
            out.append(Concept(checked, tuple(zh)))
    return out


def chinese_terms(path: Path = GLOSSARY) -> list[str]:
    """Every Chinese form in the glossary: the search's segmenter keeps each one a word."""
    return sorted({z for _, zh in pairs(path) for z in zh if re.search(r"[\u4e00-\u9fff]", z)})


def _names(english: str, text: str) -> bool:
    words = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", english))
    return re.search(r"(?<![\w-])" + words + r"(?:s|es)?(?![\w-])", text, re.IGNORECASE) is not None


def problems(msgid: str, msgstr: str, known: list[Concept]) -> list[str]:
    if not msgstr:
        return []
    words = prose(msgid)
    out = []
    for concept in known:
        named = next((e for e in concept.english if _names(e, words)), None)
        if named and not any(zh in msgstr for zh in concept.chinese):
            out.append(f"'{named}' is {' or '.join(concept.chinese)} in the glossary")
    return out
