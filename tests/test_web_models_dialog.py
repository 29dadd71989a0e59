"""The editor's "missing models" dialog, driven in Chromium against a local hub."""
from __future__ import annotations

from runtime.downloads import HUB_REPO
from tests.hub_server import allow_local_hub, local_hub
from tests.test_downloads import official_bytes, repo_files
from tests.web_helpers import browser, open_editor, server  # noqa: F401  (fixtures)


def real_stage_a() -> bytes:
    """A real Stage A (the official size, random weights, bf16, no demo marker): ~37 MB, several of
    huggingface_hub's 10 MiB chunks, and a file the weights report counts as a usable Stage A."""
    import torch
    from safetensors.torch import save

    from models.demo import randomise
    from models.loading.networks import network_spec

    spec = network_spec("stage_a")
    model = spec.build(spec.presets["full"])
    randomise(model, torch.Generator().manual_seed(0))
    n = len(spec.key_prefix)
    return save({k[n:]: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()})


def test_models_dialog_downloads_a_missing_file_with_progress(server, browser, monkeypatch):  # noqa: F811
    weights = server["output"].parent / "weights"
    with local_hub(repo_files()) as hub:
        allow_local_hub(monkeypatch, hub)
        stage_a = real_stage_a()
        hub.repos[HUB_REPO]["stage_a.safetensors"] = stage_a
        hub.chunk, hub.delay_s = 2**18, 0.015
        page = open_editor(browser, server["base"])
        page.click("#models-btn")
        row = page.locator('.models-row[data-file="stage_a.safetensors"]')
        row.wait_for()
        # Every official file is listed as missing from the empty weights folder
        assert page.locator(".models-row").count() == 8
        row.locator('button[data-action="download"]').click()
        page.wait_for_function("""() => {
            const r = document.querySelector('.models-row[data-file="stage_a.safetensors"]');
            const bar = r.querySelector('progress');
            return r.dataset.state === 'running' && bar.value > 0 && bar.value < bar.max;
        }""", timeout=15000)
        assert "MB /" in row.locator(".models-state").inner_text()
        page.wait_for_selector('.models-row[data-file="stage_a.safetensors"][data-state="done"]', timeout=20000)
        value, maximum = page.evaluate("""() => {
            const bar = document.querySelector('.models-row[data-file="stage_a.safetensors"] progress');
            return [bar.value, bar.max]; }""")
        assert value == maximum == len(stage_a)
        assert (weights / "stage_a" / "stage_a.safetensors").read_bytes() == stage_a
        # Reopened, the list no longer names it; the lite set button fetches the rest of the lite set
        hub.delay_s = 0
        page.click('#models-dialog button[data-action="close"]')
        page.click("#models-btn")
        page.wait_for_function("() => !document.querySelector('.models-row[data-file=\"stage_a.safetensors\"]')")
        page.click('#models-dialog button[data-action="lite"]')
        page.wait_for_selector('.models-row[data-file="previewer.safetensors"][data-state="done"]', timeout=20000)
        assert (weights / "previewer" / "previewer.safetensors").read_bytes() == official_bytes("previewer.safetensors")
        assert page.errors == []


def test_models_dialog_says_when_the_server_cannot_be_reached(server, browser):  # noqa: F811
    """A request that gets no answer is reported (a toast naming it), not an unhandled rejection."""
    page = open_editor(browser, server["base"])
    page.route("**/downloads/missing", lambda route: route.abort())
    page.click("#models-btn")
    page.locator(".toast", has_text="cannot reach the server").wait_for(timeout=5000)
    assert page.errors == []
