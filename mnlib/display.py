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


def interface(obj) -> str:
    """``module.name(signature)`` and the docstring of a function or class: what a chapter shows of a
    graded function, whose code stays in a collapsed block (the course's rule for assignments)."""
    import inspect

    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    def show(p):
        text = p.name + (f": {p.annotation}" if p.annotation is not p.empty else "")
        if p.default is not p.empty:
            d = p.default
            if inspect.isclass(d):  # a class default (an activation): nn.ReLU, as the chapters write it
                text += " = " + ("nn." if d.__module__.startswith("torch.nn") else d.__module__ + ".") + d.__qualname__
            else:
                text += f" = {d!r}"
        return text

    head = f"{obj.__module__}.{obj.__qualname__}({', '.join(show(p) for p in params)})"
    doc = inspect.getdoc(obj) or ""
    return head + ("\n" + "\n".join("    " + line for line in doc.splitlines()) if doc else "")


# The book's second edition (book/_ext/editions.py shows ``key@zh_CN`` wherever a page pastes ``key``).
ZH = "zh_CN"


def glue_editions(key: str, en, zh) -> None:
    """Glue a value the page's code chose in words, in both editions, from one execution.

    ``en`` is pasted by ``{glue:text}`key``` / ``{glue:md}`key``` in the English edition and ``zh``
    in the Chinese one: a verdict, a phrase or a table whose words the code picks from what it
    measured. Numbers stay with ``glue`` (the same in both editions).
    """
    from myst_nb import glue

    glue(key, en, display=False)
    glue(f"{key}@{ZH}", zh, display=False)
