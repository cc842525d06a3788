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


def problems(msgid: str, msgstr: str) -> list[str]:
    """What the translation lost or added; an empty list when it carries every piece over."""
    if not msgstr:
        return []
    want, got = protected(msgid), protected(msgstr)
    out = []
    for (kind, piece), n in sorted((want - got).items()):
        out.append(f"missing {kind} {piece!r}" + (f" (x{n})" if n > 1 else ""))
    for (kind, piece), n in sorted((got - want).items()):
        out.append(f"added {kind} {piece!r}" + (f" (x{n})" if n > 1 else ""))
    return out
