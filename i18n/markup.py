"""What a translation must carry over unchanged from its English message.

A message's MyST markup (roles such as ``{glue:text}`key```, inline maths, inline code, link
targets, footnote references, substitutions) is not prose: the translated message must contain the
same pieces, or a glued number, a formula or a cross-reference silently disappears from the
Chinese page. ``protected(text)`` lists them; ``problems(msgid, msgstr)`` says what differs.
"""
from __future__ import annotations

import re
from collections import Counter

# Order matters: a role's target may contain `$`, and inline code may contain anything.
_PATTERNS = [
    ("role", re.compile(r"\{[A-Za-z][\w:.-]*\}`[^`]*`")),
    ("code", re.compile(r"(?<![`}])``?[^`]+``?")),
    ("math", re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$|(?<![\\$])\$[^$]+?(?<!\\)\$")),
    ("link", re.compile(r"\]\(([^)\s]+)\)")),
    ("footnote", re.compile(r"\[\^[^\]]+\]")),
    ("substitution", re.compile(r"\{\{[^}]*\}\}")),
]


def protected(text: str) -> Counter:
    """The markup pieces of a message, as (kind, text) with their counts."""
    found: Counter = Counter()
    rest = text
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(rest):
            piece = match.group(1) if kind == "link" else match.group(0)
            found[(kind, piece)] += 1
        rest = pattern.sub(" ", rest)
    return found


def prose(text: str, fill: str = " ") -> str:
    """The text without its markup pieces (each replaced by ``fill``), link text kept: the words a
    reader reads (the glossary check and the test of English left on Chinese pages look at these)."""
    text = re.sub(r"(?<!\[)\[([^\]^][^\]]*)?\]\([^)]*\)", r"\1", text)     # [text](target) -> text
    for _, pattern in _PATTERNS:
        text = pattern.sub(fill, text)
    return text


# Sphinx parses each translation alone, as a document of its own: a translation that begins like a
# Markdown block (a numbered heading "6. MobileNetV2" reads as a list starting at 6) is no longer a
# title or a paragraph, and Sphinx silently keeps the English. Escaped ("6\\. ", "\\+ ") it stays text.
_BLOCK_START = re.compile(r"^(?:\d{1,9}[.)]|[-*+>]|#{1,6})(?:\s|$)")


def escape_block_start(msgstr: str) -> str:
    match = _BLOCK_START.match(msgstr)
    if not match:
        return msgstr
    marker = match.group(0).rstrip()
    escaped = (marker[:-1] + "\\" + marker[-1]) if marker[0].isdigit() else "\\" + marker
    return escaped + msgstr[len(marker):]


def problems(msgid: str, msgstr: str) -> list[str]:
    """What the translation lost or added; an empty list when it carries every piece over."""
    if not msgstr:
        return []
    want, got = protected(msgid), protected(msgstr)
    out = []
    if _BLOCK_START.match(msgstr):
        out.append(f"begins like a Markdown list, quote or heading, so Sphinx would keep the English: "
                   f"write {escape_block_start(msgstr)[:12]!r}")
    for (kind, piece), n in sorted((want - got).items()):
        out.append(f"missing {kind} {piece!r}" + (f" (x{n})" if n > 1 else ""))
    for (kind, piece), n in sorted((got - want).items()):
        out.append(f"added {kind} {piece!r}" + (f" (x{n})" if n > 1 else ""))
    return out
