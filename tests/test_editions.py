"""The Simplified Chinese edition (i18n/, book/_ext/editions.py, book/locale/zh_CN).

Without a build: every translation keeps its English message's markup and uses the glossary's
term for each concept it names, and both checks catch what they are for. With the built book:
every page exists in both editions and links to its twin, every glued value the English edition
shows is the value the Chinese edition shows (or the Chinese form the same execution glued beside
it), no glued English phrase lacks a Chinese form, and the Chinese search index holds Chinese words.
"""
import functools
import html
import html.parser
import json
import re
from collections import defaultdict

import pytest

from helpers import HTML, MYST_HEADER, ROOT, toc_pages
from i18n import catalog, glued, markup, terms

ZH = HTML / "zh_CN"


# --- the catalogues, no build needed ---------------------------------------------------------------

def test_every_translation_keeps_its_markup():
    assert catalog.markup_problems() == []


def test_markup_check_catches_what_a_translation_can_lose():
    english = "Within {glue:text}`max_err`, see $K^2$ and `groups=C` in [ch. 2](part1/ch02_dsc.md)."
    assert markup.problems(english, "在 {glue:text}`max_err` 以内，见 $K^2$ 与 `groups=C`（[第 2 章](part1/ch02_dsc.md)）。") == []
    lost = markup.problems(english, "在误差以内，见 $K^2$ 与 `groups=C`（[第 2 章](part1/ch02_dsc.md)）。")
    assert lost == ["missing role '{glue:text}`max_err`'"]
    assert markup.problems(english, "在 {glue:text}`max_err` 以内，见 $K^3$ 与 `groups=C`（[第 2 章](part1/ch02_dsc.md)）。") \
        == ["missing math '$K^2$'", "added math '$K^3$'"]
    assert markup.problems(english, "") == []          # untranslated: the English is shown
    # a numbered heading's translation re-parsed alone would be a list: Sphinx would keep the English
    assert markup.problems("6. MobileNetV2: inverted residuals", "6. MobileNetV2：倒残差")
    assert markup.problems("6. MobileNetV2: inverted residuals", markup.escape_block_start("6. MobileNetV2：倒残差")) == []


def test_translations_use_the_glossary_terms():
    known = terms.concepts()
    found = []
    for path in catalog.catalogues():
        for message in catalog.read(path):
            if message.id and message.string:
                found += [f"{path.name}:{message.lineno}: {p}" for p in terms.problems(message.id, message.string, known)]
    assert not found, "\n".join(found[:30])


def test_term_check_reads_the_glossary_and_catches_a_synonym():
    known = terms.concepts()
    table = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    by_english = {e: c for c in known for e in c.english}
    # every checked pair is a row of the glossary page as written there
    for english, concept in by_english.items():
        assert english in table and concept.chinese[0] in table
    assert by_english["inverted residual"].chinese[0] == "倒残差"
    assert "逐通道卷积" in by_english["depthwise convolution"].chinese      # an accepted alternative
    assert terms.problems("Each inverted residual block expands.", "每个倒置残差块先扩展。", known)
    assert terms.problems("Each inverted residual block expands.", "每个倒残差块先扩展。", known) == []
    assert terms.problems("Receptive fields grow.", "感受区域变大。", known)           # plural, synonym
    assert terms.problems("`receptive_field(layers)` returns it.", "`receptive_field(layers)` 返回它。", known) == []


def test_every_page_has_a_translated_catalogue():
    status = catalog.status()
    for page in toc_pages():
        assert page in status, f"{page}: no catalogue in book/locale/zh_CN (python -m i18n update)"
        done, total = status[page]
        assert done > 0, f"{page}: nothing translated"


def test_every_sentence_of_prose_is_translated():
    """A message of four English words or more is prose, unless it is display maths (\\text{} words)
    or a bibliographic entry (authors, year, title: names, kept as published), or a term of the
    glossary's English column (the glossary shows both columns as they are)."""
    glossary = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8").splitlines()
    english_column = {line.split("|")[1].strip() for line in glossary if line.startswith("| ")}
    untranslated = []
    for path in catalog.catalogues():
        for message in catalog.read(path):
            if not message.id or message.string or message.id.startswith("\n"):
                continue
            if re.match(r"\*\*[^*]+\.\*\* ", message.id) or message.id in english_column:
                continue
            if len(glued.english_words(message.id)) >= 4:
                untranslated.append(f"{path.relative_to(catalog.PO_DIR)}: {message.id[:80]}")
    assert not untranslated, "\n".join(untranslated[:30])


# --- the built editions ----------------------------------------------------------------------------

class _Pasted(html.parser.HTMLParser):
    """The text of every element carrying a glue-key-<key> class (book/_ext/editions.py)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values = defaultdict(list)
        self._open = []          # [key, depth, parts] of the pasted elements we are inside
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "meta", "link", "input", "hr", "col"):
            return
        self._depth += 1
        for cls in (dict(attrs).get("class") or "").split():
            if cls.startswith("glue-key-"):
                self._open.append([cls[len("glue-key-"):], self._depth, []])

    def handle_endtag(self, tag):
        if tag in ("br", "img", "meta", "link", "input", "hr", "col"):
            return
        while self._open and self._open[-1][1] == self._depth:
            key, _, parts = self._open.pop()
            self.values[key].append(" ".join("".join(parts).split()))
        self._depth -= 1

    def handle_data(self, data):
        for entry in self._open:
            entry[2].append(data)


def _pasted(path):
    parser = _Pasted()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.values


@functools.lru_cache(maxsize=1)
def _latest_notebooks():
    """The executed notebook of every page, from the build's jupyter-cache (read once per session)."""
    from jupyter_cache import get_cache
    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    latest = {}
    for record in cache.list_cache_records():
        if record.uri not in latest or record.created > latest[record.uri].created:
            latest[record.uri] = record
    return {uri: cache.get_cache_bundle(r.pk).nb for uri, r in latest.items()}


def _built():
    if not (ZH / "index.html").exists():
        pytest.fail("the Chinese edition is not built: run `make book` first (make test does)")


@pytest.mark.book
def test_every_page_exists_in_both_editions_and_links_to_its_twin():
    _built()
    for page in toc_pages():
        en, zh = HTML / f"{page}.html", ZH / f"{page}.html"
        assert zh.exists(), f"{page}: no Chinese page"
        en_text, zh_text = en.read_text(encoding="utf-8"), zh.read_text(encoding="utf-8")
        assert '<html lang="zh-CN"' in zh_text or "lang=\"zh_CN\"" in zh_text, f"{page}: Chinese page not marked zh-CN"
        to_zh = re.search(r'class="edition-link" href="([^"]+)" hreflang="zh-CN"', en_text)
        to_en = re.search(r'class="edition-link" href="([^"]+)" hreflang="en"', zh_text)
        assert to_zh and (en.parent / to_zh.group(1)).resolve() == zh.resolve(), f"{page}: English switch"
        assert to_en and (zh.parent / to_en.group(1)).resolve() == en.resolve(), f"{page}: Chinese switch"


@pytest.mark.book
def test_every_glued_value_is_the_same_in_both_editions():
    """The Chinese pages show the English execution's values: key by key, the same text, except where
    the page glued a Chinese form (key@zh_CN) beside it, which is then what the Chinese page shows."""
    _built()
    zh_forms = {}
    for uri, nb in _latest_notebooks().items():
        for key, text in glued.glued(nb).items():
            if key.endswith("@zh_CN"):
                zh_forms[(uri.split("/book/", 1)[-1][:-3], key[:-len("@zh_CN")])] = text
    compared = differ = 0
    problems = []
    for page in toc_pages():
        en, zh = _pasted(HTML / f"{page}.html"), _pasted(ZH / f"{page}.html")
        short = page.split("book/", 1)[-1]
        assert set(en) == set(zh), f"{page}: pasted keys differ: {sorted(set(en) ^ set(zh))[:10]}"
        for key, values in en.items():
            if (short, key) in zh_forms:
                differ += 1
                zh_form = zh_forms[(short, key)].strip("'\"")
                if zh[key] == values and zh_form not in values:
                    problems.append(f"{page}: {key} has a Chinese form but the Chinese page shows {values[0][:60]!r}")
                continue
            compared += len(values)
            if zh[key] != values:
                problems.append(f"{page}: {key}: English {values[:2]} but Chinese {zh[key][:2]}")
            if any(v == "" for v in zh[key]):
                problems.append(f"{page}: {key} pasted empty on the Chinese page")
    assert not problems, "\n".join(problems[:20])
    assert compared > 500, f"only {compared} glued values compared: is the glue-key class gone?"


@pytest.mark.book
def test_no_glued_english_phrase_lacks_a_chinese_form():
    missing = []
    for uri, nb in _latest_notebooks().items():
        if not (ROOT / uri).exists() and not uri.startswith(str(ROOT)):
            continue
        missing += [f"{uri.split('/book/', 1)[-1]}: {key} = {text[:80]!r}"
                    for key, text in glued.english_without_chinese(nb).items()]
    assert not missing, "\n".join(missing[:40])


@pytest.mark.book
def test_chinese_search_index_holds_chinese_words():
    _built()
    text = (ZH / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    for word in ("感受野", "卷积", "量化"):
        assert word in index["terms"], f"{word} is not in the Chinese search index"
    assert "深度可分离卷积" in index["terms"], "the glossary's terms are not whole words to the segmenter"


# --- a small book through both builds: the mechanisms themselves -------------------------------------

PAGE = MYST_HEADER + '''
# A measured page

```{code-cell} python
:tags: [remove-cell]
from myst_nb import glue
from mnlib.display import glue_editions, show_editions, figure_editions, md_table
glue("n_layers", f"{6 * 7}", display=False)
glue_editions("verdict", "the first network is faster", "第一个网络更快")
```

This run counts {glue:text}`n_layers` layers, and {glue:text}`verdict`.

```{code-cell} python
show_editions(md_table(["layer", "MACs"], [["pointwise", "9"]]), md_table(["层", "MACs"], [["逐点卷积", "9"]]))
```

```{code-cell} python
import matplotlib.pyplot as plt

def draw(t):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 2])
    ax.set_xlabel(t("time (ms)", "时间（ms）"))
    return fig

figure_editions(draw)
```
'''

CATALOGUE = '''msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: zh_CN\\n"

msgid "A measured page"
msgstr "一个测量页"

msgid "This run counts {glue:text}`n_layers` layers, and {glue:text}`verdict`."
msgstr "本次运行数出 {glue:text}`n_layers` 层，而且{glue:text}`verdict`。"
'''


@pytest.mark.slow
def test_a_small_book_shows_one_execution_in_both_editions(tmp_path):
    """Glue inside a translated sentence, a Chinese form glued beside an English verdict, a table and a
    figure displayed in both forms: the Chinese page shows the English execution's number, the Chinese
    verdict, table and figure, and building it executes nothing."""
    import shutil
    import subprocess

    from i18n.edition import build_edition

    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", tmp_path / "book" / "_ext")
    shutil.copytree(ROOT / "book" / "_static", tmp_path / "book" / "_static")
    shutil.copy(ROOT / "book" / "glossary.md", tmp_path / "book" / "glossary.md")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "book" / "page.md").write_text(PAGE, encoding="utf-8")
    po = tmp_path / "book" / "locale" / "zh_CN" / "LC_MESSAGES" / "book" / "page.po"
    po.parent.mkdir(parents=True)
    po.write_text(CATALOGUE, encoding="utf-8")

    assert build_edition(root=tmp_path) == 2          # no English build yet: refused, nothing executed
    english = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", str(tmp_path), "-W"],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert english.returncode == 0, english.stdout[-3000:] + english.stderr[-2000:]
    assert build_edition(root=tmp_path) == 0

    en = (tmp_path / "_build" / "html" / "book" / "page.html").read_text(encoding="utf-8")
    zh = (tmp_path / "_build" / "html" / "zh_CN" / "book" / "page.html").read_text(encoding="utf-8")
    assert ">42</span> layers, and <span" in en and "the first network is faster" in en
    assert re.search(r"本次运行数出 <span [^>]*glue-key-n_layers[^>]*>42</span> 层，而且<span [^>]*>第一个网络更快</span>", zh), zh[:3000]
    assert "the first network is faster" not in zh
    assert "<th" in en and ">layer<" in en and ">层<" in zh and ">逐点卷积<" in zh and ">layer<" not in zh
    en_images = re.findall(r'<img[^>]+src="([^"]+\.png)"', en)
    zh_images = re.findall(r'<img[^>]+src="([^"]+\.png)"', zh)
    assert len(en_images) == len(zh_images) == 1
    from mnlib.display import cjk_font
    if cjk_font() is not None:                        # the Chinese figure is another drawing
        en_png = (tmp_path / "_build" / "html" / "book" / en_images[0]).read_bytes()
        zh_png = (tmp_path / "_build" / "html" / "zh_CN" / "book" / zh_images[0]).read_bytes()
        assert en_png != zh_png


@pytest.mark.book
def test_every_figure_a_page_draws_has_chinese_labels():
    """Every figure a page displays carries its Chinese drawing (figure_editions), so the Chinese
    edition shows no English axis labels or legends."""
    missing = []
    for uri, nb in _latest_notebooks().items():
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}) and \
                        "image/png" not in output.get("metadata", {}).get("editions", {}).get("zh_CN", {}).get("data", {}):
                    missing.append(f"{uri.split('/book/', 1)[-1]}: cell {index}")
    assert not missing, ("figures without a Chinese drawing (draw them with mnlib.display.figure_editions; "
                         "a CJK font must be installed: fonts-wqy-microhei): " + ", ".join(missing[:20]))


def _figure_outputs(draw, **patches):
    """Run figure_editions outside a kernel (IPython's PNG formatter on), returning what it displays."""
    from unittest import mock

    import matplotlib
    matplotlib.use("agg")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    from mnlib import display
    select_figure_formats(InteractiveShell.instance(), {"png"})
    shown = []
    with mock.patch("IPython.display.publish_display_data", lambda data, metadata=None: shown.append((data, metadata))):
        display.figure_editions(draw)
    return shown


def _draw(t):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_ylabel(t("field $R$ (pixels)", "感受野 $R$（像素）"))     # maths: no glyph fallback there
    ax.set_xlabel(t("time (ms)", "时间（ms）"))
    return fig


def test_a_figure_is_drawn_twice_with_chinese_labels_even_beside_maths():
    from mnlib.display import cjk_font
    if cjk_font() is None:
        pytest.skip("no CJK font installed (fonts-wqy-microhei)")
    (data, metadata), = _figure_outputs(_draw)
    zh = metadata["editions"]["zh_CN"]["data"]["image/png"]
    assert data["image/png"] and zh and zh != data["image/png"]


def test_a_chinese_figure_with_boxes_is_refused():
    """Without the CJK family on a label that mixes Chinese and maths, matplotlib's maths renderer draws
    boxes (it only logs it): figure_editions must fail the page, not show boxes."""
    from unittest import mock

    from matplotlib.text import Text

    from mnlib.display import cjk_font
    if cjk_font() is None:
        pytest.skip("no CJK font installed (fonts-wqy-microhei)")
    with mock.patch.object(Text, "set_fontfamily", lambda self, family: None), \
            pytest.raises(RuntimeError, match="would draw boxes"):
        _figure_outputs(_draw)


def _page_text(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r'<div class="highlight[^"]*">.*?</div>', " ", text, flags=re.S)   # code cells
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html.unescape(text).split())


@pytest.mark.book
def test_no_translated_sentence_is_shown_in_english():
    """Sphinx keeps the English, silently, when it cannot use a translation (a title whose Chinese
    parses as a list, a table cell, a caption inserted after its Locale transform): the first six
    English words of every translated sentence must be absent from the Chinese page, unless the
    translation itself keeps them (a bibliographic part)."""
    _built()
    leaks, checked = [], 0
    for path in catalog.catalogues():
        page = str(path.relative_to(catalog.PO_DIR).with_suffix(""))
        shown = _page_text(ZH / f"{page}.html")
        for message in catalog.read(path):
            if not message.id or not message.string:
                continue
            prose = markup.prose(message.id, "\0").replace("*", "")
            runs = [r.strip() for r in prose.split("\0") if len(glued.english_words(r)) >= 5]
            if not runs:
                continue
            checked += 1
            fragment = " ".join(runs[0].split()[:6])
            if fragment in shown and fragment not in message.string.replace("*", ""):
                leaks.append(f"{page}: {fragment!r}")
    assert not leaks, "\n".join(leaks[:20])
    assert checked > 500, f"only {checked} translated sentences checked"
