"""Fixtures and helpers for the browser editor tests: the real server with SC-like stub nodes and a
headless Debian Chromium driven by Playwright (never `playwright install`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.server_harness import make_config, running_server
from tests.web_stub_nodes import WEB_STUB_NODES, WebStubEnv, pipeline_document

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 850}


def skip_without_chromium() -> None:
    """Skip (not fail) where Debian's Chromium or Playwright is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    """The real app serving our `web/` with the stub registry; yields base URL and output folder."""
    skip_without_chromium()
    tmp = tmp_path_factory.mktemp("web")
    config = make_config(tmp, web_dir=ROOT / "web")
    env = WebStubEnv(config.output_dir, config.input_dir)
    with running_server(config, WEB_STUB_NODES, env) as base:
        yield {"base": base, "output": config.output_dir, "input": config.input_dir}


@pytest.fixture(scope="module")
def browser(server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_editor(browser, base: str, doc: dict | None = None, **context_args):
    """A fresh context (empty localStorage) with the editor loaded and optionally `doc` in it."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, **context_args)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    if doc is not None:
        page.evaluate("d => cascade.editor.load(d, true)", doc)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def document(page) -> dict:
    """The editor's current workflow document."""
    return page.evaluate("() => cascade.editor.document()")


def socket_center(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """Press at `start`, move in steps, release at `end` (real pointer events)."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def out_socket(node: str, index: int = 0) -> str:
    return f'.node[data-node-id="{node}"] .socket.out[data-output="{index}"]'


def in_socket(node: str, name: str) -> str:
    return f'.node[data-node-id="{node}"] .socket.in[data-input="{name}"]'


def empty_spot(page) -> tuple[float, float]:
    """A canvas point with no node under it (bottom-left corner of the canvas)."""
    box = page.locator("#canvas").bounding_box()
    return box["x"] + 60, box["y"] + box["height"] - 60


def drop_file(page, name: str, data: bytes, mime: str) -> None:
    """Dispatch a real `drop` event carrying a File, as a user dragging a file onto the page would."""
    page.evaluate("""([name, bytes, mime]) => {
        const file = new File([new Uint8Array(bytes)], name, {type: mime});
        const dt = new DataTransfer();
        dt.items.add(file);
        const target = document.getElementById('canvas');
        const r = target.getBoundingClientRect();
        const at = {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2};
        target.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true, ...at}));
        target.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true, ...at}));
    }""", [name, list(data), mime])


def strip_view(doc: dict) -> dict:
    """A document without its view (pans and zooms are not part of what a test compares)."""
    doc = json.loads(json.dumps(doc))
    doc.get("ui", {}).pop("view", None)
    return doc


__all__ = ["server", "browser", "open_editor", "document", "socket_center", "drag", "out_socket",
           "in_socket", "empty_spot", "drop_file", "strip_view"]


def grouped_document(groups: list[dict]) -> dict:
    """The stub pipeline with nodes 1 and 2 and a note at the left (inside [0, 0, 420, 720], node 1 inside
    [20, 50, 340, 240]), the other nodes to the right, and `groups` as its groups."""
    doc = pipeline_document(delay=0.0)
    for nid, pos in {"1": [40, 110], "2": [40, 330], "3": [700, 600], "4": [700, 20], "5": [700, 300],
                     "6": [1000, 20], "7": [1300, 20], "8": [1600, 20]}.items():
        doc["nodes"][nid]["ui"]["pos"] = pos
    doc["ui"]["notes"] = [{"id": "note1", "pos": [40, 560], "size": [260, 100], "text": "inside"}]
    doc["ui"]["groups"] = groups
    return doc
