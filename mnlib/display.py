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


def show_editions(en, zh) -> None:
    """Display ``en`` as the cell's output; the zh_CN edition shows ``zh`` in its place.

    For a table (``md_table``) or any displayable object whose words the page chooses: both forms come
    from the one execution, and book/_ext/editions.py picks the edition's form when it renders.
    """
    from IPython.core.formatters import format_display_data

    _publish_editions(format_display_data(en), format_display_data(zh))


def _publish_editions(en, zh) -> None:
    """Display the English form (data, metadata), carrying the Chinese one in its metadata."""
    from IPython.display import publish_display_data

    data, metadata = en
    if zh is not None:
        metadata = {**metadata, "editions": {ZH: {"data": zh[0], "metadata": zh[1]}}}
    publish_display_data(data, metadata=metadata)


# Fonts that draw Simplified Chinese (Debian's fonts-wqy-microhei, which .ci/run installs, comes first).
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC")


def cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def figure_editions(draw) -> None:
    """Draw a figure twice, with English and with Chinese labels, and display it for both editions.

    ``draw(t)`` makes and returns the figure, writing every label as ``t("English", "中文")``. The
    Chinese figure uses the page's usual font with a CJK font as fallback (so digits and symbols look
    the same in both); without a CJK font installed it is the English figure, and the cell says so.
    """
    import sys

    import matplotlib.pyplot as plt
    from IPython.core.formatters import format_display_data

    en = draw(lambda english, chinese: english)
    english = format_display_data(en)
    plt.close(en)
    font = cjk_font()
    if font is None:
        print("no CJK font installed (Debian: fonts-wqy-microhei): the Chinese edition shows this figure "
              "with English labels", file=sys.stderr)
        _publish_editions(english, None)
        return
    # matplotlib falls back glyph by glyph along font.family: Latin, digits and the minus sign from the
    # usual font, Chinese from the CJK one. Its maths renderer does not fall back: a label that mixes
    # Chinese with $...$ is drawn in the CJK font (which has Latin letters too). A glyph still missing
    # would be drawn as a box (matplotlib warns, or logs it for maths): refused.
    import logging
    import re
    import warnings

    from matplotlib.text import Text

    class _Caught(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    logged = _Caught()
    logger = logging.getLogger("matplotlib")
    base = plt.rcParams["font.sans-serif"][0]
    logger.addHandler(logged)
    try:
        with plt.rc_context({"font.family": [base, font]}), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            zh = draw(lambda english, chinese: chinese)
            for text in zh.findobj(Text):
                label = text.get_text()
                if "$" in label and re.search(r"[\u3000-\u9fff\uff00-\uffef]", label):
                    text.set_fontfamily(font)
            chinese = format_display_data(zh)
            plt.close(zh)
    finally:
        logger.removeHandler(logged)
    missing = sorted({str(w.message) for w in caught if "missing from font" in str(w.message)}
                     | {m for m in logged.messages if "does not have a glyph" in m})
    if missing:
        raise RuntimeError(f"the Chinese figure would draw boxes: {missing[:3]}")
    _publish_editions(english, chinese)
