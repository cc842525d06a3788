"""Keep the built book offline and free of console errors.

Jupyter Book 1.x always loads sphinx-thebe, whose page snippet points at a CDN (unpkg) and is
inserted twice, which redeclares a constant in the browser. The course has no live kernels in
the page, so the thebe scripts and stylesheet are dropped from every page.
The theme's script also logs an error when no colour mode is set, so the default is set here.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    def keep(asset):
        if isinstance(asset, str):
            return "thebe" not in asset.lower()
        attrs = getattr(asset, "attributes", {}) or {}
        text = " ".join(str(v) for v in [getattr(asset, "filename", None), *attrs.values()] if v)
        return "thebe" not in text.lower()
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if keep(a)]
    context["default_mode"] = "light"


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
