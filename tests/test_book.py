"""The book in a real browser: `scripts/book.py` builds the site from the notebooks (at the test size), a static server serves it on
127.0.0.1, and Debian's Chromium opens every page with every request off 127.0.0.1 refused. Each page must load with no console
error, no failed request and no request elsewhere; every plotly figure on it must draw and every formula typeset; every internal link
must reach a page (and its anchor) that exists; search must find a chapter. A screenshot of one chapter is saved to
tests/artifacts/book.png."""

import functools, http.server, os, re, shutil, subprocess, sys, threading, time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed: apt-get install -y chromium "
    "fonts-liberation (bash scripts/run.sh test installs it)",
)
SCREENSHOT_PAGE = "05_padnet.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The whole book, built once for this module (or the one PADNOTES_SITE names, already built)."
    if os.environ.get("PADNOTES_SITE"):
        site = Path(os.environ["PADNOTES_SITE"])
        if not (site / "index.html").exists():
            pytest.fail(
                f"PADNOTES_SITE={site} holds no built book (its build failed, or it was not run)"
            )
        return site
    out = tmp_path_factory.mktemp("book") / "site"
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "book.py"), "--site", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, (
        f"the book did not build:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    )
    print(f"book built in {time.time() - t0:.0f} s")
    return out


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def pages(site: Path) -> list[str]:
    return sorted(p.name for p in site.glob("*.html") if p.name != "404.html")


def test_every_chapter_has_a_page(site):
    names = {
        p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_")
    }
    assert names | {"api_reference"} <= {Path(p).stem for p in pages(site)}
    ref = (site / "api_reference.html").read_text()
    for name in (
        "get_adapter_model",
        "DiffPruningConfig",
        "DynamicConv2d",
        "Explorer",
    ):  # one name from each corner of the library
        assert name in ref, name


def test_every_page_loads_offline_draws_and_links(site, server):
    from playwright.sync_api import sync_playwright

    ids = {
        p: set(re.findall(r'\sid="([^"]+)"', (site / p).read_text()))
        for p in pages(site)
    }
    problems, drawn = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        ctx = browser.new_context(viewport=dict(width=1400, height=1000))
        outside = []
        ctx.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(server)
                or route.request.url.startswith(("data:", "blob:"))
                else (outside.append(route.request.url), route.abort())
            ),
        )
        page = ctx.new_page()
        errors = []
        page.on(
            "console",
            lambda m: (
                errors.append(f"console {m.type}: {m.text}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: errors.append(f"failed request: {r.url} ({r.failure})"),
        )
        page.on(
            "response",
            lambda r: (
                errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )
        for name in pages(site):
            errors.clear()
            outside.clear()
            page.goto(server + name, wait_until="load")
            page.wait_for_function(
                "() => !window.MathJax || !window.MathJax.startup || window.MathJax.startup.promise",
                timeout=60_000,
            )
            page.evaluate(
                "() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null"
            )
            page.wait_for_load_state(
                "networkidle"
            )  # nothing still loading when the next page replaces this one
            got = page.evaluate("""() => ({
                divs: document.querySelectorAll('.plotly-graph-div').length,
                drawn: [...document.querySelectorAll('.plotly-graph-div')].filter(d => d._fullLayout && d.data && d.querySelector('.main-svg')).length,   // diagrams have no traces
                math_left: [...document.querySelectorAll('.jp-RenderedMarkdown, .jp-MarkdownOutput')].filter(e => /(^|[^\\\\$])\\$[^$\\s][^$]*\\$/.test(e.innerText)).length,
                links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))})""")
            drawn[name] = got["drawn"]
            if got["drawn"] != got["divs"]:
                problems.append(f"{name}: {got['drawn']} of {got['divs']} figures drew")
            if got["math_left"]:
                problems.append(
                    f"{name}: {got['math_left']} blocks still show raw $...$"
                )
            problems += [f"{name}: {e}" for e in errors] + [
                f"{name}: asked for {u} (off this site)" for u in outside
            ]
            for href in got["links"]:
                u = urlparse(href)
                if u.scheme or href.startswith(("mailto:", "//")):
                    continue
                target = urlparse(urljoin(server + name, href))
                path = target.path.lstrip("/") or "index.html"
                if not (site / path).exists():
                    problems.append(f"{name}: link {href} -> missing {path}")
                    continue
                if target.fragment and path in ids and target.fragment not in ids[path]:
                    problems.append(
                        f"{name}: link {href} -> no anchor #{target.fragment} in {path}"
                    )
        # search works offline: the index is built in the browser from the site's own search_index.json
        page.goto(server + "index.html", wait_until="load")
        page.locator("label.md-search__icon, .md-search__input").first.click()
        page.keyboard.type("partially dynamic")
        page.wait_for_selector(".md-search-result__item", timeout=30_000)
        hits = page.locator(".md-search-result__item").count()
        # the screenshot: one chapter, as a reader sees it
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.goto(server + SCREENSHOT_PAGE, wait_until="load")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "book.png"))
        browser.close()
    assert not problems, "\n".join(problems[:60])
    assert hits > 0
    assert (
        drawn["02_dynamic_conv.html"] > 0
        and drawn["05_padnet.html"] > 0
        and drawn["12a_sparse_adapter_lab.html"] > 0
    )


def test_api_entries_are_clean_signatures(site):
    "show_doc entries keep their signature and docstring, and lose the source-link attribute text and the Out[n] prompt."
    for name in pages(site):
        html = (site / name).read_text()
        assert '{target="_blank"' not in html, name
    moe = (site / "03_moe.html").read_text()
    assert "What the router decided for T tokens and E experts." in moe  # still there


def test_cross_references_stay_in_the_book(site):
    "nbdev's links to API entries point at this book's pages, which exist, not at a documentation host."
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from book import doc_prefix

    for name in pages(site):
        html = (site / name).read_text()
        assert f'href="{doc_prefix()}' not in html, name
        for target in set(re.findall(r'href="(\d\w*)\.html#', html)):
            assert (site / f"{target}.html").exists(), (name, target)
