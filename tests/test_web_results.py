"""Browser tests of issue 13 §3: text outputs on nodes, error summaries, lightbox, history rows,
model-list refresh and batch queueing (real server, stub nodes, headless Chromium)."""
from __future__ import annotations

import pytest

from tests.web_helpers import browser, document, open_editor  # noqa: F401
from tests.web_results_helpers import server  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def report_document(lines: int) -> dict:
    """A ShowReport node with a second node placed right below it."""
    return {"version": 1, "nodes": {
        "1": {"class_type": "ShowReport", "inputs": {"text": "48 of 48 tensors applied", "lines": lines},
              "ui": {"pos": [40, 40]}},
        "2": {"class_type": "SeedValue", "inputs": {"value": 1}, "ui": {"pos": [40, 400]}},
    }, "ui": {"view": {"offset": [0, 0], "scale": 1}, "notes": []}}


def box(page, selector: str) -> dict:
    b = page.locator(selector).bounding_box()
    assert b is not None, selector
    return b


def test_text_outputs_show_on_the_node_bounded_and_scrolling(server, browser):
    page = open_editor(browser, server["base"], report_document(1))
    page.locator("#queue-btn").click()
    text = page.locator('.node[data-node-id="1"] .node-text')
    text.wait_for()
    page.wait_for_function("() => document.querySelector('.node[data-node-id=\"1\"] .node-text').textContent !== ''")
    assert text.text_content() == "48 of 48 tensors applied"
    # A long report scrolls inside its box: the node stays above the node below it.
    page.evaluate("() => cascade.editor.graph.setValue('1', 'lines', 200)")
    page.locator("#queue-btn").click()
    page.wait_for_function("() => document.querySelector('.node[data-node-id=\"1\"] .node-text').textContent.includes('(200)')")
    assert text.evaluate("e => e.scrollHeight > e.clientHeight + 100")
    node, below = box(page, '.node[data-node-id="1"]'), box(page, '.node[data-node-id="2"]')
    inner = box(page, '.node[data-node-id="1"] .node-text')
    assert node["y"] + node["height"] < below["y"]
    assert node["y"] <= inner["y"] and inner["y"] + inner["height"] <= node["y"] + node["height"]
    # The wheel over the report scrolls it and leaves the zoom alone.
    scale = page.evaluate("() => cascade.editor.graph.view.scale")
    page.mouse.move(inner["x"] + inner["width"] / 2, inner["y"] + inner["height"] / 2)
    page.mouse.wheel(0, 200)
    page.wait_for_function("() => document.querySelector('.node[data-node-id=\"1\"] .node-text').scrollTop > 0")
    assert page.evaluate("() => cascade.editor.graph.view.scale") == scale
    # Loading another workflow clears the old run's text (node ids repeat across workflows).
    page.evaluate("d => cascade.editor.load(d, true)", report_document(1))
    assert page.locator('.node[data-node-id="1"] .node-text').text_content() == ""
    assert page.errors == []


def test_refused_prompt_gives_one_short_toast_and_details_on_the_nodes(server, browser):
    doc = pipeline_document()
    for nid in ("1", "2", "3"):  # three loaders naming a weights file that is not there
        doc["nodes"][nid]["inputs"]["file"] = "missing_folder/stage_weights_that_are_not_there.safetensors"
    page = open_editor(browser, server["base"], doc)
    for _ in range(2):  # queueing twice still leaves one toast
        page.evaluate("() => cascade.runner.queue()")
    toasts = page.locator(".toast.error")
    assert toasts.count() == 1
    summary = toasts.first.text_content()
    assert "3 nodes have errors" in summary and "#1 #2 #3" in summary
    assert len(summary) <= 220 and summary.count("not_there") == 0
    # Each node carries its own reason once, inside its own box, above the node below it.
    for nid, below in (("1", "2"), ("2", "3")):
        node = page.locator(f'.node[data-node-id="{nid}"]')
        assert "error" in node.get_attribute("class")
        text = node.locator(".node-error-text").text_content()
        assert text.count("Value not in list") == 1 and "not_there" in text
        outer, inner = box(page, f'.node[data-node-id="{nid}"]'), box(page, f'.node[data-node-id="{nid}"] .node-error-text')
        assert outer["y"] <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
        assert outer["y"] + outer["height"] < box(page, f'.node[data-node-id="{below}"]')["y"]
    assert page.errors == []


def run_pipeline_twice(page, seeds=(5, 6)) -> None:
    """Queue the stub pipeline once per seed and wait until each result is in the gallery."""
    for i, seed in enumerate(seeds):
        page.evaluate("s => cascade.editor.graph.setValue('6', 'seed', s)", seed)
        page.evaluate("() => cascade.runner.queue()")
        page.wait_for_function(f"() => document.querySelectorAll('.gallery-grid figure.thumb').length >= {i + 1}")


def test_lightbox_steps_downloads_shows_parameters_and_closes_on_escape(server, browser):
    page = open_editor(browser, server["base"], pipeline_document(delay=0.0))
    start = page.locator(".gallery-grid figure.thumb").count()
    run_pipeline_twice(page)
    page.locator(".gallery-grid figure.thumb").first.click()
    box_ = page.locator(".lightbox")
    page.wait_for_selector(".lightbox-params[data-loaded='1']")
    params = lambda: dict(zip(box_.locator("dt").all_inner_texts(), box_.locator("dd").all_inner_texts()))  # noqa: E731
    first = params()
    assert first["Positive #4 · text"] == "a glass bottle"
    assert first["Stage C Sampler #6 · seed"] == "6" and first["Stage C Sampler #6 · steps"] == "4"
    assert first["image"] == "64×64"
    total = start + 2
    assert box_.locator(".lightbox-name").text_content().endswith(f"(1 of {total})")
    # Next (→) shows the older image and its own parameters; Previous (←) comes back.
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.lightbox-name').textContent.includes('(2 of')")
    page.wait_for_selector(".lightbox-params[data-loaded='1']")
    assert params()["Stage C Sampler #6 · seed"] == "5"
    page.locator(".lightbox-prev").click()
    page.wait_for_selector(".lightbox-params[data-loaded='1']")
    assert params()["Stage C Sampler #6 · seed"] == "6"
    # Download saves the shown file under its own name.
    with page.expect_download() as dl:
        page.locator(".lightbox-download").click()
    shown = page.locator(".gallery-grid figure.thumb").first.get_attribute("data-filename")
    assert dl.value.suggested_filename == shown
    assert dl.value.path().read_bytes() == (server["output"] / shown).read_bytes()
    # Escape closes it and leaves the graph alone (no canvas shortcut fired under it).
    before = document(page)
    page.keyboard.press("Escape")
    assert page.locator(".lightbox").count() == 0
    assert document(page) == before
    assert page.errors == []


def explode_document(message: str) -> dict:
    doc = pipeline_document(delay=0.0)
    doc["nodes"]["9"] = {"class_type": "Explode", "inputs": {"images": ["7", 0], "message": message},
                         "ui": {"pos": [1220, 300]}}
    del doc["nodes"]["8"]
    return doc


def test_history_rows_show_thumbnail_time_duration_reason_and_delete_and_clear(server, browser):
    from tests.server_harness import http_json
    page = open_editor(browser, server["base"], pipeline_document(delay=0.0))
    page.evaluate("() => cascade.runner.queue()")
    page.evaluate("d => cascade.editor.load(d, true)", explode_document("stage weights folder is missing"))
    page.evaluate("() => cascade.runner.queue()")
    failed = page.locator(".history-list li.job.failed").first
    failed.wait_for()
    assert failed.locator(".job-reason").text_content() == "Explode #9: stage weights folder is missing"
    done = page.locator(".history-list li.job.done").first
    # The done row shows its picture, the time it started and how long it took.
    src = done.locator(".job-thumb img").get_attribute("src")
    assert "/view?" in src and "filename=web_" in src
    label = done.locator(".job-label").text_content()
    import re
    assert re.search(r"✓ done · 1 image · \d\d:\d\d:\d\d\b.* · \d+(\.\d)? (ms|s)$", label), label
    assert done.locator(".job-reason").count() == 0
    # Delete one: gone from the page and from the server's history.
    done_id = done.get_attribute("data-prompt-id")
    rows = page.locator(".history-list li.job").count()
    done.locator(".job-delete").click()
    page.wait_for_function(f"() => !document.querySelector('.history-list li[data-prompt-id=\"{done_id}\"]')")
    assert page.locator(".history-list li.job").count() == rows - 1
    assert done_id not in http_json("GET", server["base"] + "/history")[1]
    # Clear all asks first; declining keeps everything, accepting empties the history.
    page.once("dialog", lambda d: d.dismiss())
    page.locator(".history-clear").click()
    assert page.locator(".history-list li.job").count() == rows - 1
    page.once("dialog", lambda d: d.accept())
    page.locator(".history-clear").click()
    page.locator(".history-list li.empty").wait_for()
    assert http_json("GET", server["base"] + "/history")[1] == {}
    assert page.errors == []


def test_model_lists_refresh_in_place_by_button_and_on_focus(server, browser):
    doc = {"version": 1, "nodes": {"1": {"class_type": "LoadPicture", "inputs": {"file": "later.png"}, "ui": {"pos": [40, 40]}}},
           "ui": {"view": {"offset": [0, 0], "scale": 1}, "notes": []}}
    for f in server["input"].iterdir():
        f.unlink()
    page = open_editor(browser, server["base"], doc)
    select = page.locator('.node[data-node-id="1"] select.widget')
    assert "missing-value" in select.get_attribute("class")
    steps = page.evaluate("() => [cascade.editor.history.stack.length, cascade.editor.history.index]")
    before = document(page)
    # A file appears: the button re-reads the lists without a reload, keeping the chosen value.
    (server["input"] / "first.png").write_bytes(b"x")
    page.locator("#refresh-btn").click()
    page.locator(".toast.ok", has_text="Node and model lists updated").wait_for()
    assert select.locator("option").evaluate_all("os => os.map(o => o.value)") == ["later.png", "first.png"]
    assert select.input_value() == "later.png" and "missing-value" in select.get_attribute("class")
    # The chosen file arrives while the window is away: focus brings it in and clears the flag.
    (server["input"] / "later.png").write_bytes(b"y")
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")
    page.wait_for_function("() => !document.querySelector('.node[data-node-id=\"1\"] select.widget').classList.contains('missing-value')")
    assert select.locator("option").evaluate_all("os => os.map(o => o.value)") == ["first.png", "later.png"]
    assert select.input_value() == "later.png"
    # Same document, same undo history: a list refresh is not an edit.
    assert document(page) == before
    assert page.evaluate("() => [cascade.editor.history.stack.length, cascade.editor.history.index]") == steps
    assert page.errors == []


def sent_seeds(page) -> list:
    """Collects the Stage C seed of every POST /prompt the page sends."""
    seeds: list = []
    page.on("request", lambda r: seeds.append(r.post_data_json["prompt"]["nodes"]["6"]["inputs"]["seed"])
            if r.method == "POST" and r.url.endswith("/prompt") else None)
    return seeds


@pytest.mark.parametrize("mode,expected,after", [("increment", [5, 6, 7], 8), ("decrement", [5, 4, 3], 2),
                                                 ("fixed", [5, 5, 5], 5)])
def test_batch_count_queues_n_runs_with_seeds_advancing_by_mode(server, browser, mode, expected, after):
    doc = pipeline_document(delay=0.0)
    doc["nodes"]["6"]["ui"]["seed_control"] = mode
    page = open_editor(browser, server["base"], doc)
    seeds = sent_seeds(page)
    assert page.locator('.node[data-node-id="6"] .seed-control').input_value() == mode
    page.locator("#batch-count").fill("3")
    page.locator("#batch-count").dispatch_event("change")
    page.locator("#queue-btn").click()
    page.locator(".toast.ok", has_text="Queued 3 runs").wait_for()
    assert seeds == expected
    assert document(page)["nodes"]["6"]["inputs"]["seed"] == after
    # The count sticks across a reload; a typo beyond the limit is clamped.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#batch-count").input_value() == "3"
    page.locator("#batch-count").fill("100000")
    page.locator("#batch-count").dispatch_event("change")
    assert page.locator("#batch-count").input_value() == "100"
    assert page.errors == []


def test_auto_queue_requeues_when_the_queue_empties_until_unticked(server, browser):
    doc = pipeline_document(delay=0.0)
    doc["nodes"]["6"]["ui"]["seed_control"] = "increment"
    page = open_editor(browser, server["base"], doc)
    seeds = sent_seeds(page)
    page.locator("#auto-queue").check()
    page.locator("#queue-btn").click()
    try:
        page.wait_for_function("() => cascade.editor.document().nodes['6'].inputs.seed >= 8", timeout=8000)
    except Exception:
        raise AssertionError((seeds, page.locator(".toast").all_inner_texts()))
    page.locator("#auto-queue").uncheck()
    page.wait_for_timeout(600)
    count = len(seeds)
    page.wait_for_timeout(600)
    assert len(seeds) == count >= 3  # stopped once unticked
    assert seeds == list(range(5, 5 + count))
    assert page.errors == []
