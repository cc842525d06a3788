"""Small display helpers for the book's executed pages (tables rendered by MyST)."""
from __future__ import annotations


def md_table(header, rows, align=None):
    """A Markdown table from a header and rows of already formatted cells.

    Columns after the first are right-aligned (numbers) unless ``align`` gives one of
    ``"---"``, ``":---:"``, ``"---:"`` per column.
    """
    from IPython.display import Markdown

    header = [str(h) for h in header]
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} entries for {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        row = [str(c).replace("|", "\\|") for c in row]
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells for {len(header)} columns: {row}")
        lines.append("| " + " | ".join(row) + " |")
    return Markdown("\n".join(lines))
