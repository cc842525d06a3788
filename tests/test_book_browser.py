"""The built book in a real browser (Debian's chromium driven by Playwright), page by page.

For every page of the table of contents: it loads with no console errors, no request leaves
localhost, math is typeset by the locally served MathJax (no raw TeX left), every image has
loaded, and every internal link resolves. A screenshot of each page is saved under
test-artifacts/screenshots/ for a person to look at.
"""
import functools
import http.server
import re
import shutil
import threading
import urllib.parse

import pytest

from helpers import HTML, ROOT, toc_pages

pytestmark = pytest.mark.browser

SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("the book is not built: run `make book` first (make test does)")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    if not shutil.which(CHROMIUM) and not (ROOT / CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _ids(path):
    """The element ids of a built page (targets of #fragment links)."""
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


# Characters drawn in the page's own font that come out as the font's missing-glyph box: drawn on a
# canvas and compared with a code point no font has (U+0378 is unassigned). The detector checks
# itself first: the unassigned point must match the box, and a Latin letter must not.
MISSING_GLYPHS = """() => {
  const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const article = document.querySelector('article') || document.body;
  ctx.font = '36px ' + getComputedStyle(article).fontFamily;
  const draw = (c) => { ctx.clearRect(0, 0, 48, 48); ctx.fillText(c, 4, 38);
                        return ctx.getImageData(0, 0, 48, 48).data.join(','); };
  const box = draw('\u0378');
  const chars = [...new Set([...article.innerText].filter(c => c.codePointAt(0) > 0x2000))];
  return {selfcheck: draw('\u0379') === box && draw('A') !== box,
          missing: chars.filter(c => draw(c) === box), checked: chars.length};
}"""
EDITION_PAGES = toc_pages() + [f"zh_CN/{p}" for p in toc_pages()]


@pytest.mark.parametrize("page_name", EDITION_PAGES)
def test_page(page_name, server, browser):
    """Does this page load cleanly, offline, with math typeset, images loaded and links resolving?
    (Both editions; on a Chinese page, is every character drawn by a font, none as a box?)"""
    url = f"{server}/{page_name}.html"
    errors, outside = [], []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_request(req):
        if not (req.url.startswith(server) or req.url.startswith("data:") or req.url.startswith("blob:")):
            outside.append(req.url)
    page.on("request", on_request)
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"{url} answered {response and response.status}"

    # MathJax 3 (served from _static/mathjax) finishes typesetting before we look
    page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                           "window.MathJax.startup.promise !== undefined", timeout=20000)
    page.evaluate("async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
                  " await MathJax.startup.promise; }")
    math = page.evaluate("""() => { const els = [...document.querySelectorAll('.math')];
        return {total: els.length, typeset: els.filter(e => e.querySelector('mjx-container')).length,
                raw: els.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60))}; }""")
    images = page.evaluate("""() => [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))""")
    links = page.evaluate("""() => [...document.querySelectorAll('a[href]')].map(a => a.href)""")
    glyphs = page.evaluate(MISSING_GLYPHS) if page_name.startswith("zh_CN/") else None
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (page_name.replace("/", "__") + ".png")), full_page=True)
    page.close()

    assert not outside, f"requests left localhost: {outside[:5]}"
    assert not errors, f"console errors: {errors[:5]}"
    assert math["typeset"] == math["total"], f"raw TeX left on the page: {math['raw'][:5]}"
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that did not load: {broken[:5]}"
    bad_links = []
    for href in links:
        if not href.startswith(server):
            continue   # external links are text for the reader; nothing loads them
        parsed = urllib.parse.urlparse(href)
        target = HTML / urllib.parse.unquote(parsed.path.lstrip("/"))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            bad_links.append(href)
        elif parsed.fragment and target.suffix == ".html" and parsed.fragment not in _ids(target):
            bad_links.append(href)
    assert not bad_links, f"internal links that do not resolve: {bad_links[:5]}"
    if glyphs is not None:
        assert glyphs["selfcheck"], "the missing-glyph detector does not tell a box from a letter here"
        assert glyphs["checked"] > 20, f"only {glyphs['checked']} non-Latin characters on a Chinese page"
        assert not glyphs["missing"], f"characters drawn as a missing-glyph box: {glyphs['missing'][:20]}"


def test_language_switch_leads_to_the_same_page_both_ways(server, browser):
    """From an English chapter the switch opens the same chapter in Chinese, and back."""
    page = browser.new_page()
    page.goto(f"{server}/book/part1/ch04_receptive_field.html", wait_until="load")
    assert page.evaluate("document.documentElement.lang").startswith("en")
    page.click("a.edition-link[hreflang='zh-CN']")
    page.wait_for_load_state("load")
    assert page.url == f"{server}/zh_CN/book/part1/ch04_receptive_field.html"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "感受野" in page.inner_text("article h1")
    page.click("a.edition-link[hreflang='en']")
    page.wait_for_load_state("load")
    assert page.url == f"{server}/book/part1/ch04_receptive_field.html"
    assert "Receptive field" in page.inner_text("article h1") or "receptive field" in page.inner_text("article h1").lower()
    page.close()


def test_chinese_search_finds_a_chinese_term(server, browser):
    """The Chinese edition's search box, offline: a glossary term finds Chinese pages that use it."""
    outside = []
    page = browser.new_page()
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
    page.goto(f"{server}/zh_CN/search.html", wait_until="networkidle")
    page.goto(f"{server}/zh_CN/search.html?q=感受野", wait_until="networkidle")
    page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0", timeout=20000)
    hits = page.evaluate("""() => [...document.querySelectorAll('#search-results li a')].map(a => a.href)""")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "zh_CN__search_感受野.png"), full_page=False)
    page.close()
    assert not outside, outside[:5]
    assert any(h.startswith(f"{server}/zh_CN/") and "ch04_receptive_field" in h for h in hits), hits[:10]
    assert all(h.startswith(f"{server}/zh_CN/") for h in hits), [h for h in hits if "/zh_CN/" not in h][:5]


def test_every_page_offers_its_notebook_for_download():
    """Each executed page has a download button for its source and the .ipynb in _sources."""
    missing = []
    for name in toc_pages():
        html = (HTML / f"{name}.html").read_text(encoding="utf-8")
        if "btn-download-source-button" not in html and "download" not in html:
            missing.append(name)
    assert not missing, missing
