"""The zh_CN message catalogues: extract the English messages, merge them into the ``.po`` files.

``update()`` runs Sphinx's gettext builder over the book (pages come from the jupyter-cache, so
nothing is executed) and merges each page's template into ``book/locale/zh_CN/LC_MESSAGES``:
a translation is kept while its English message is unchanged; a changed message becomes new and
untranslated (its page shows the English sentence until it is translated again; ``status()``
counts them), and the old translation is kept as obsolete, for the translator to reuse.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from . import markup
from .sphinx import BUILD, LANGUAGE, LOCALE_DIR, ROOT, build

POT_DIR = BUILD / "gettext"
PO_DIR = LOCALE_DIR / LANGUAGE / "LC_MESSAGES"


def read(path: Path) -> Catalog:
    with open(path, "rb") as f:
        return read_po(f, locale=LANGUAGE if path.suffix == ".po" else None)


def write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".po.tmp")
    with open(tmp, "wb") as f:
        write_po(f, catalog, width=0, omit_header=False, sort_output=False, include_previous=False)
    tmp.replace(path)


def extract() -> None:
    build("gettext", POT_DIR, quiet=True)


def merge(pot: Catalog, po: Catalog | None) -> Catalog:
    out = Catalog(locale=LANGUAGE, project="MobileNet: from principles to the device", fuzzy=False,
                  copyright_holder="The MobileNet course authors", msgid_bugs_address="")
    old = {m.id: m for m in po if m.id} if po is not None else {}
    for message in pot:
        if not message.id:
            continue
        kept = old.pop(message.id, None)
        out.add(message.id, kept.string if kept else "", locations=message.locations)
    for message in old.values():          # no longer in the page: kept for reuse, never shown
        if message.string:
            out.obsolete[message.id] = message
    return out


def update() -> list[Path]:
    extract()
    written = []
    for pot_path in sorted(POT_DIR.rglob("*.pot")):
        rel = pot_path.relative_to(POT_DIR).with_suffix(".po")
        po_path = PO_DIR / rel
        merged = merge(read(pot_path), read(po_path) if po_path.exists() else None)
        write(po_path, merged)
        written.append(po_path)
    return written


def catalogues() -> list[Path]:
    return sorted(PO_DIR.rglob("*.po"))


def status() -> dict[str, tuple[int, int]]:
    """Per page: (translated, all) messages."""
    out = {}
    for path in catalogues():
        cat = read(path)
        msgs = [m for m in cat if m.id]
        out[str(path.relative_to(PO_DIR).with_suffix(""))] = (sum(1 for m in msgs if m.string), len(msgs))
    return out


def markup_problems() -> list[str]:
    """Every translated message whose MyST markup differs from its English message's."""
    out = []
    for path in catalogues():
        for message in read(path):
            if not message.id or not message.string:
                continue
            for problem in markup.problems(message.id, message.string):
                line = message.lineno
                out.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    return out
