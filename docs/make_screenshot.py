"""Take docs/editor.png: the editor showing the default workflow, run once with tiny demo weights, organised
as users do: groups around its parts, a reroute point on a long link and a bypassed LoRA node.

    .venv/bin/python docs/make_screenshot.py [--no-run]

Starts the real server (real node registry) on an ephemeral port with a temporary weights folder
filled by `models.demo`, opens /workflows/default.json in headless Debian Chromium, points each
model picker at the demo file of its kind, organises it through the workflow document (the same `ui`
keys the editor's gestures write), queues it and screenshots the result.
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


# A bypassed LoRA between the Stage C loader and the sampler (passed over when run), and a reroute point on
# the Stage B loader's long link to its sampler.
ORGANISE = """() => {
  const ed = cascade.editor;
  const doc = ed.document();
  const lora = ed.graph.defs.LoRA ? "LoRA" : null;
  if (lora) {
    doc.nodes["12"] = { class_type: lora, inputs: { stage_c: ["2", 0], lora_name: "demo_stage_c_lora.safetensors",
      strength_model: 0.8 }, ui: { pos: [400, 560], mode: "bypass", title: "Style LoRA (bypassed)" } };
    doc.nodes["8"].inputs.stage_c = ["12", 0];
  }
  doc.ui.reroutes = [{ id: "r1", pos: [1040, 700] }];
  doc.nodes["9"].ui = { ...doc.nodes["9"].ui, link_reroutes: { stage_b: "r1" } };
  ed.load(doc, true);
}"""

# Groups drawn around the nodes as laid out (sizes come from the page), then the view fitted.
GROUP = """() => {
  const ed = cascade.editor;
  const box = (ids, title, color) => {
    const els = ids.map((id) => ed.view.nodeEls.get(id)).filter(Boolean);
    const x0 = Math.min(...els.map((e) => e.offsetLeft)) - 20, y0 = Math.min(...els.map((e) => e.offsetTop)) - 60;
    const x1 = Math.max(...els.map((e) => e.offsetLeft + e.offsetWidth)) + 20;
    const y1 = Math.max(...els.map((e) => e.offsetTop + e.offsetHeight)) + 20;
    return { title, bounding: [x0, y0, x1 - x0, y1 - y0], color, font_size: 24 };
  };
  const doc = ed.document();
  doc.ui.groups = [box(["1", "2", "3", "4", "5"], "Models", "#3f789e"), box(["6", "7"], "Prompts", "#8A8"),
    box(["8", "9", "10"], "Stage C → B → A", "#a1309b")];
  ed.load(doc, true);
  ed.fitView();
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
        page.evaluate(ORGANISE)
        page.wait_for_timeout(200)
        page.evaluate(GROUP)
        if run:
            page.locator("#queue-btn").click()
            page.wait_for_selector(".node-images img.result", timeout=300_000)
            page.wait_for_selector(".node.running", state="detached", timeout=60_000)
            page.wait_for_timeout(500)
        page.wait_for_function("() => !document.querySelector('#toasts .toast')", timeout=15_000)
        page.screenshot(path=str(ROOT / "docs" / "editor.png"))
        browser.close()


if __name__ == "__main__":
    main(run="--no-run" not in sys.argv)
