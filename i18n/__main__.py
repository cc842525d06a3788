"""``python -m i18n update | status | check | build | export | apply | run-page``: the zh_CN edition's
catalogues, its build, and the tools for translating a page."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i18n", description=__doc__)
    parser.add_argument("command", choices=["update", "status", "check", "build", "export", "apply", "run-page"])
    parser.add_argument("path", nargs="?", help="export/apply: a page's catalogue (book/locale/zh_CN/LC_MESSAGES/...po); "
                        "run-page: a page (book/part1/ch03_cost.md)")
    parser.add_argument("blocks", nargs="?", help="apply: the file of translated blocks")
    args = parser.parse_args(argv)
    if args.command == "run-page":
        from . import glued
        if not args.path:
            parser.error("run-page needs a page (book/part1/ch03_cost.md)")
        nb = glued.run_page(Path(args.path))
        missing = glued.english_without_chinese(nb)
        for key, text in missing.items():
            print(f"{key}: glued English without {key}@{glued.ZH}: {text[:100]!r}")
        print(f"{args.path}: {len(glued.glued(nb))} glued values, {len(missing)} in English words without a "
              "Chinese form", file=sys.stderr)
        return 1 if missing else 0
    if args.command in ("export", "apply"):
        from . import blocks
        if not args.path or (args.command == "apply" and not args.blocks):
            parser.error(f"{args.command} needs a .po file" + (" and a blocks file" if args.command == "apply" else ""))
        if args.command == "export":
            print(blocks.export(Path(args.path)))
            return 0
        problems = blocks.apply(Path(args.path), Path(args.blocks).read_text(encoding="utf-8"))
        for line in problems:
            print(f"{args.blocks}: {line}")
        print(f"{args.path}: " + (f"NOT written, {len(problems)} problem(s)" if problems else "written"), file=sys.stderr)
        return 1 if problems else 0
    if args.command == "update":
        for path in catalog.update():
            print(path)
        return 0
    if args.command == "status":
        done = total = 0
        for page, (n, m) in catalog.status().items():
            done, total = done + n, total + m
            print(f"{n:5d} / {m:5d}  {page}")
        print(f"{done:5d} / {total:5d}  translated messages in all")
        return 0
    if args.command == "check":
        problems = catalog.markup_problems()
        for line in problems:
            print(line)
        print(f"{len(problems)} markup problem(s)", file=sys.stderr)
        return 1 if problems else 0
    from .edition import build_edition
    return build_edition()


if __name__ == "__main__":
    sys.exit(main())
