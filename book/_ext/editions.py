"""The book's two editions (English, and Simplified Chinese built with ``python -m i18n build``).

What Sphinx's translation path does not do for an executed MyST-NB book:

* **Glue inside a translated message.** Sphinx's Locale transform parses each translated message
  as a new, small document; MyST-NB's glue roles look their key up in the document's notebook,
  which that small document lacks (and MyST-NB drops the page's own once it is parsed), so
  ``{glue:text}`key``` in a translation came out empty, with no warning. Here the page's notebook
  renderer is kept until the page has been read, and the glue lookup of a translated message
  falls back to it: the Chinese page shows the value the English page's execution glued
  (nothing runs twice).
* **Glued values that are words.** A verdict chosen in code (``glue("verdict", "... faster")``) is
  prose, not a number. A page may glue a second value under ``key@zh_CN`` (one execution computes
  both); the zh_CN edition shows it wherever the page pastes ``key``.
* **Outputs that are words.** A cell may display a table or a figure with an ``editions`` entry in
  its output metadata (``mnlib.display.show_editions``, ``figure_editions``): the zh_CN edition
  renders that entry's data in the output's place.
* **The parts' captions** of the table of contents, inserted after the page was translated.
* **The language switch**: every page links to the same page in the other edition.

Every pasted value also carries the class ``glue-key-<key>`` in both editions, so that a test can
check, key by key, that the two editions show the same value.

Loaded by both builds (``_config.yml``); it changes nothing in the English pages but the switch.
"""
from __future__ import annotations

# The editions, their link text and their folder under _build/html.
EDITIONS = {"en": ("English", ""), "zh_CN": ("中文", "zh_CN/")}
HREFLANG = {"en": "en", "zh_CN": "zh-CN"}

_RENDERERS: dict = {}   # docname -> the notebook renderer of the page now being read
_LANGUAGE = {"now": "en"}   # the language of this build (one build per process), set when configured


class _KeepRenderer(dict):
    """A document's attributes while MyST-NB parses it: its renderer is kept when the parser drops it."""

    def __init__(self, attributes, docname):
        super().__init__(attributes)
        self.docname = docname

    def pop(self, key, *default):
        if key == "nb_renderer" and key in self:
            _RENDERERS[self.docname] = self[key]
        return super().pop(key, *default)


def _keep_renderer(parse):
    """Wrap MyST-NB's parser: the page's renderer (its notebook's glue data) outlives the parse, for
    the translated messages Locale parses next; it is dropped when the page has been read."""
    def wrapped(self, inputstring, document):
        env = getattr(document.settings, "env", None)
        if env is None:
            return parse(self, inputstring, document)
        document.attributes = _KeepRenderer(document.attributes, env.docname)
        try:
            return parse(self, inputstring, document)
        finally:
            document.attributes = dict(document.attributes)

    wrapped.__wrapped__ = parse
    return wrapped


def _forget_page(app, doctree):
    _RENDERERS.pop(app.env.docname, None)


def _translate_captions():
    """The parts' captions of the table of contents (_toc.yml) in this edition's language.

    sphinx-external-toc inserts the toctrees (priority 100) after Sphinx's Locale transform (20)
    has translated the page, so their captions stayed English although the catalogue has them.
    """
    from sphinx import addnodes
    from sphinx.transforms import SphinxTransform

    class TranslateCaptions(SphinxTransform):
        default_priority = 101

        def apply(self, **kwargs):
            import os

            from sphinx.locale import init as init_locale
            from sphinx.util.i18n import docname_to_domain

            if (self.config.language or "en") == "en":
                return
            dirs = [os.path.join(self.env.srcdir, d) for d in self.config.locale_dirs]
            domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
            catalog, found = init_locale(dirs, self.config.language, domain)
            if not found:
                return
            for node in self.document.findall(addnodes.toctree):
                if node.get("caption"):
                    node["caption"] = node["rawcaption"] = catalog.gettext(node["caption"])

    return TranslateCaptions


def _edition_lookup(retrieve):
    """Wrap MyST-NB's glue lookup: the page's notebook for translated messages, key@lang first."""
    from myst_nb.core.variables import RetrievalError

    def lookup(document, key):
        page = document
        env = getattr(document.settings, "env", None)
        if "nb_renderer" not in document and env is not None and env.docname in _RENDERERS:
            page = {"nb_renderer": _RENDERERS[env.docname]}   # all retrieve_glue_data reads
        language = _LANGUAGE["now"]
        if language != "en" and "@" not in key:
            try:
                return retrieve(page, f"{key}@{language}")
            except RetrievalError:
                pass
        return retrieve(page, key)

    lookup.__wrapped__ = retrieve
    return lookup


def _glue_class(key: str) -> str:
    """The class a pasted value carries in both editions, so a test can pair them up by key."""
    import re

    return "glue-key-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def _tagging(run, key_of):
    from docutils import nodes

    def tagged(self):
        result = run(self)
        made = result[0] if isinstance(result, tuple) else result
        for node in made:
            if isinstance(node, nodes.Element):
                node["classes"].append(_glue_class(key_of(self)))
        return result

    tagged.__wrapped__ = run
    return tagged


def _role_key(role) -> str:
    key = role.text.split("::")[-1]
    return key.rsplit(":", 1)[0] if type(role).__name__ != "PasteRoleAny" else key


def _edition_outputs(outputs_of):
    """Wrap MyST-NB's access to a cell's outputs: an output carrying this edition's form shows it."""
    def outputs(self, cell_index):
        count, found = outputs_of(self, cell_index)
        language = _LANGUAGE["now"]
        if language == "en":
            return count, found
        swapped = []
        for output in found:
            form = output.get("metadata", {}).get("editions", {}).get(language)
            if form:
                output = type(output)({**output, "data": form["data"], "metadata": form.get("metadata", {})})
            swapped.append(output)
        return count, swapped

    outputs.__wrapped__ = outputs_of
    return outputs


def _patch_glue():
    from myst_nb import sphinx_
    from myst_nb.ext.glue import directives, roles

    from myst_nb.core.execute.base import NotebookClientBase

    if not hasattr(sphinx_.Parser.parse, "__wrapped__"):
        sphinx_.Parser.parse = _keep_renderer(sphinx_.Parser.parse)
    if not hasattr(NotebookClientBase.code_cell_outputs, "__wrapped__"):
        NotebookClientBase.code_cell_outputs = _edition_outputs(NotebookClientBase.code_cell_outputs)
    for module in (roles, directives):
        if not hasattr(module.retrieve_glue_data, "__wrapped__"):
            module.retrieve_glue_data = _edition_lookup(module.retrieve_glue_data)
    for role in (roles.PasteRoleAny, roles.PasteTextRole, roles.PasteMarkdownRole):
        if not hasattr(role.run, "__wrapped__"):
            role.run = _tagging(role.run, _role_key)
    for directive in (directives.PasteAnyDirective, directives.PasteMarkdownDirective,
                      directives.PasteFigureDirective, directives.PasteMathDirective):
        if not hasattr(directive.run, "__wrapped__"):
            directive.run = _tagging(directive.run, lambda d: d.arguments[0].split("::")[-1])


def _switch(app, pagename, templatename, context, doctree):
    here = _LANGUAGE["now"]
    if here not in EDITIONS:
        return
    up = "../" * (pagename.count("/") + (1 if EDITIONS[here][1] else 0))
    links, alternates = [], []
    for language, (label, folder) in EDITIONS.items():
        href = f"{up}{folder}{pagename}.html"
        alternates.append(f'<link rel="alternate" hreflang="{HREFLANG[language]}" href="{href}" />')
        if language != here:
            links.append(f'<a class="edition-link" href="{href}" hreflang="{HREFLANG[language]}" '
                         f'lang="{HREFLANG[language]}">{label}</a>')
    context["metatags"] = context.get("metatags", "") + "\n".join(alternates)
    context["body"] = (f'<p class="edition-switch" aria-label="language / 语言">{" ".join(links)}</p>\n'
                       + context.get("body", ""))


def _configured(app, config):
    from pathlib import Path

    _LANGUAGE["now"] = config.language or "en"
    folder = str(Path(__file__).resolve().parent.parent / "_static")
    if folder not in config.html_static_path:
        config.html_static_path.append(folder)


def setup(app):
    _patch_glue()
    app.connect("config-inited", _configured)
    app.add_transform(_translate_captions())
    app.connect("doctree-read", _forget_page)
    app.connect("html-page-context", _switch)
    app.add_css_file("editions.css")
    return {"parallel_read_safe": False, "parallel_write_safe": True}
