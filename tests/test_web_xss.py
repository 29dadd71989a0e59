"""In Chromium: files planted in output/ and input/ that would run script if rendered as a page
(HTML, SVG, XML, XHTML, a page named .png) cannot run it on our origin through /view, and the
editor itself runs under its Content-Security-Policy without a single violation."""
from __future__ import annotations

import pytest

from tests.server_harness import http, http_json
from tests.upload_helpers import PAGES
from tests.web_helpers import VIEWPORT, browser, open_editor, server  # noqa: F401 (fixtures)
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def _visit(page, url: str) -> None:
    """Navigate as a victim clicking a link would; a download aborts the navigation (fine)."""
    try:
        page.goto(url, wait_until="load", timeout=5000)
    except Exception as exc:  # "Download is starting" / net::ERR_ABORTED for attachments
        assert "Download" in str(exc) or "ERR_ABORTED" in str(exc), exc
    page.wait_for_timeout(150)  # give a script that did load the time to act


@pytest.mark.slow
def test_planted_pages_cannot_run_script_via_view(server, browser):  # noqa: F811
    base = server["base"]
    urls = []
    for kind in ("output", "input"):
        for ext, page_text in PAGES.items():
            name = f"evil_{kind}{ext}"
            (server[kind] / name).write_text(page_text)
            urls.append(f"{base}/view?filename={name}&type={kind}")
    assert http_json("POST", base + "/queue", {"pause": True})[1]["paused"] is True
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    for url in urls:
        _visit(page, url)
        assert page.title() != "pwned", url
    # Also embedded from our own editor page: an <iframe> and an <img> of each.
    editor = open_editor(browser, base)
    editor.evaluate("""urls => { for (const u of urls) {
        const f = document.createElement('iframe'); f.src = u; document.body.appendChild(f);
        const i = document.createElement('img'); i.src = u; document.body.appendChild(i); } }""",
                    [u.replace(base, "") for u in urls])
    editor.wait_for_timeout(1000)
    assert editor.evaluate("() => localStorage.getItem('pwned')") is None
    assert http_json("GET", base + "/queue")[1]["paused"] is True  # no script unpaused it
    http_json("POST", base + "/queue", {"pause": False})
    context.close()
    editor.context.close()


def test_editor_runs_under_its_csp_without_violations(server, browser):  # noqa: F811
    base = server["base"]
    _, headers, _ = http("GET", base + "/")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.add_init_script("""window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));""")
    page = context.new_page()
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    page.evaluate("d => cascade.editor.load(d, true)", pipeline_document(delay=0.2, steps=4))
    page.keyboard.press("Control+Enter")
    page.wait_for_selector('.node[data-node-id="6"] .node-images img.preview', timeout=10000)
    page.locator('.node[data-node-id="8"] .node-images img.result').wait_for(timeout=15000)
    page.wait_for_function("() => document.querySelector('.gallery-grid .thumb img')?.naturalWidth > 0")
    with page.expect_download():
        page.locator("#save-btn").click()  # a blob: download
    assert page.evaluate("() => window.__csp") == []
    context.close()
