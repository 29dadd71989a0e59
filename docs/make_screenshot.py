"""Take docs/editor.png: the editor showing the default workflow, run once with tiny demo weights.

    .venv/bin/python docs/make_screenshot.py [--no-run]

Starts the real server (real node registry) on an ephemeral port with a temporary weights folder
filled by `models.demo`, opens /workflows/default.json in headless Debian Chromium, points each
model picker at the demo file of its kind, queues it and screenshots the result.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server_harness import make_config, running_server  # noqa: E402
from tests.web_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

# Give every model picker its demo file (the default workflow names the real checkpoints).
PICK_DEMO = """() => {
  const ed = cascade.editor;
  for (const n of ed.graph.nodes.values()) {
    const def = ed.graph.defs[n.type];
    for (const inp of (def ? def.inputs : [])) {
      const demo = (inp.choices || []).find((c) => c.startsWith('demo_'));
      if (demo && !(inp.choices || []).includes(n.values[inp.name])) n.values[inp.name] = demo;
    }
  }
  ed.load(ed.document(), true);
}"""


def main(run: bool = True) -> None:
    from playwright.sync_api import sync_playwright
    from models.demo import write_demo_weights
    from runtime.env import Env
    from nodes.registry import NODES

    tmp = Path(tempfile.mkdtemp())
    config = make_config(tmp, web_dir=ROOT / "web")
    write_demo_weights(config.weights_dir)
    with running_server(config, NODES, Env(config)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900}, device_scale_factor=1.5)
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector(".node")
        page.evaluate(PICK_DEMO)
        if run:
            page.locator("#queue-btn").click()
            page.wait_for_selector(".node-images img.result", timeout=300_000)
            page.wait_for_selector(".node.running", state="detached", timeout=60_000)
            page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "editor.png"))
        browser.close()


if __name__ == "__main__":
    main(run="--no-run" not in sys.argv)
