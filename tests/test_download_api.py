"""POST /api/models/download, GET /api/tasks/{id}, cancel: against the real app and a local hub."""
from __future__ import annotations

import pytest

from models import demo
from runtime.downloads import HUB_PATHS, HUB_REPO, SETS
from tests.hub_server import allow_local_hub, local_hub
from tests.server_harness import http_json, stub_server, wait_for
from tests.test_downloads import FOLDER, official_bytes, repo_files


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    """Real tiny Stable Cascade files (keys as the official ones), plus a LoRA, by kind."""
    folder = tmp_path_factory.mktemp("demo")
    return {p.name: p.read_bytes() for p in demo.write_demo_weights(folder)}


@pytest.fixture
def setup(tmp_path, monkeypatch, demo_files):
    repos = repo_files()
    repos["someone/finetune"] = {"unet/my_stage_b.safetensors": demo_files["demo_stage_b.safetensors"],
                                 "my_lora.safetensors": demo_files["demo_stage_c_lora.safetensors"],
                                 "junk.safetensors": b"this is not a safetensors file" * 10,
                                 "notes.txt": b"hello"}
    with local_hub(repos) as hub, stub_server(tmp_path) as (base, _env, config):
        allow_local_hub(monkeypatch, hub)
        yield hub, base + "/api", config.weights_dir


def finished(api, task_id):
    def check():
        status, body = http_json("GET", f"{api}/tasks/{task_id}")
        assert status == 200, body
        return body if body["state"] in ("done", "error", "cancelled") else None
    return wait_for(check, timeout=20)


DEMO_OF = {"stage_c": "demo_stage_c.safetensors", "stage_b": "demo_stage_b.safetensors",
           "stage_a": "demo_stage_a.safetensors", "text_encoder": "demo_text_encoder.safetensors",
           "effnet": "demo_effnet_encoder.safetensors", "previewer": "demo_previewer.safetensors"}


@pytest.fixture
def setup_demo(demo_files):
    """The demo networks without their `demo` marker: what a real (tiny) official file looks like."""
    from safetensors.torch import load as load_bytes, save as save_bytes

    return {name: save_bytes(load_bytes(data)) for name, data in demo_files.items()}


def test_set_download_reports_progress_and_lands_in_place(setup, setup_demo):
    hub, api, weights = setup
    status, missing = http_json("GET", f"{api}/downloads/missing")
    assert status == 200 and {m["name"] for m in missing["missing"]} >= set(SETS["lite"])
    # Real (tiny) networks under the official names: the weights report counts only usable files.
    served = {n: DEMO_OF[FOLDER[n]] for n in SETS["lite"]}
    for name, demo_name in served.items():
        hub.repos[HUB_REPO][HUB_PATHS.get(name, name)] = setup_demo[demo_name]
    status, body = http_json("POST", f"{api}/models/download", {"set": "lite"})
    assert status == 200, body
    assert [t["name"] for t in body["tasks"]] == list(SETS["lite"]) and body["task_id"] == body["tasks"][0]["id"]
    for t in body["tasks"]:
        snap = finished(api, t["id"])
        assert snap["state"] == "done" and snap["bytes_done"] == snap["bytes_total"] > 0, snap
        assert (weights / snap["path"]).read_bytes() == setup_demo[served[t["name"]]]
        assert snap["path"] == f"{FOLDER[t['name']]}/{t['name']}"
    status, missing = http_json("GET", f"{api}/downloads/missing")
    assert not {m["name"] for m in missing["missing"]} & set(SETS["lite"])


def test_a_second_request_joins_the_first_and_cancel_stops_it(setup):
    hub, api, weights = setup
    hub.repos[HUB_REPO]["stage_a.safetensors"] = official_bytes("x") * 40
    hub.chunk, hub.delay_s = 2**16, 0.05  # running for ~0.3 s
    _, first = http_json("POST", f"{api}/models/download", {"files": ["stage_a.safetensors"]})
    _, second = http_json("POST", f"{api}/models/download", {"files": ["stage_a.safetensors"]})
    assert second["task_id"] == first["task_id"]
    status, snap = http_json("POST", f"{api}/tasks/{first['task_id']}/cancel")
    assert status == 200
    assert finished(api, first["task_id"])["state"] == "cancelled"
    assert not (weights / "stage_a" / "stage_a.safetensors").exists()
    assert len([r for r in hub.requests if r[0] == "GET"]) <= 1


@pytest.mark.parametrize("path, folder", [("blob/main/unet/my_stage_b.safetensors", "stage_b"),
                                          ("resolve/main/my_lora.safetensors", "loras")])
def test_a_pasted_link_goes_to_the_folder_its_keys_say(setup, path, folder):
    hub, api, weights = setup
    status, body = http_json("POST", f"{api}/models/download", {"url": f"{hub.url}/someone/finetune/{path}"})
    assert status == 200, body
    snap = finished(api, body["task_id"])
    name = path.rsplit("/", 1)[1]
    assert snap["state"] == "done" and snap["path"] == f"{folder}/{name}", snap
    assert (weights / folder / name).is_file()
    assert ("GET", f"/someone/finetune/{path.replace('blob/', 'resolve/')}", None) in hub.requests


@pytest.mark.parametrize("name", ["junk.safetensors", "notes.txt"])
def test_an_unrecognised_file_is_refused_and_removed(setup, name):
    hub, api, weights = setup
    _, body = http_json("POST", f"{api}/models/download", {"url": f"{hub.url}/plain/{name}"})
    snap = finished(api, body["task_id"])
    assert snap["state"] == "error" and ("refused" in snap["error"] or "not a readable" in snap["error"]), snap
    assert [p for p in weights.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("payload", [{}, {"files": []}, {"files": "stage_a.safetensors"}, {"files": [1]},
                                     {"files": ["nope.safetensors"]}, {"set": "huge"}, {"set": 3},
                                     {"url": "file:///etc/passwd"}, {"url": 5}, {"url": "x", "set": "lite"},
                                     {"files": ["a"] * 33}])
def test_bad_requests_are_400(setup, payload):
    _, api, _ = setup
    status, body = http_json("POST", f"{api}/models/download", payload)
    assert status == 400 and body["error"]["message"], (payload, body)


def test_unknown_task_is_404(setup):
    _, api, _ = setup
    assert http_json("GET", f"{api}/tasks/nope")[0] == 404
    assert http_json("POST", f"{api}/tasks/nope/cancel")[0] == 404


def test_the_token_is_never_returned(setup, monkeypatch):
    hub, api, _ = setup
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_tests")
    hub.etags["stage_a.safetensors"] = "0" * 64
    _, body = http_json("POST", f"{api}/models/download", {"files": ["stage_a.safetensors"]})
    snap = finished(api, body["task_id"])
    assert snap["state"] == "error" and "hf_secret" not in str(snap)
    assert ("/" + HUB_REPO + "/resolve/main/stage_a.safetensors", "Bearer hf_secret_for_tests") in hub.auth


def test_a_pasted_link_may_name_only_the_hub_or_an_allowed_host(tmp_path, monkeypatch, demo_files):
    """Whoever can reach the API must not make the server fetch its LAN or a cloud metadata address."""
    repos = {"someone/finetune": {"my_lora.safetensors": demo_files["demo_stage_c_lora.safetensors"]}}
    with local_hub(repos) as hub:
        link = f"{hub.url}/someone/finetune/resolve/main/my_lora.safetensors"
        allow_local_hub(monkeypatch, hub)
        monkeypatch.setenv("HF_ENDPOINT", "https://huggingface.co")  # the local server is just some host now
        with stub_server(tmp_path / "a") as (base, _env, config):
            for url in (link, "http://169.254.169.254/latest/x.safetensors", "http://10.1.2.3/x.safetensors"):
                status, body = http_json("POST", f"{base}/api/models/download", {"url": url})
                assert status == 400 and "--download-allow" in body["error"]["message"], url
            assert list(config.weights_dir.rglob("*.safetensors")) == []
        host = hub.url.split("//", 1)[1].split(":")[0]
        with stub_server(tmp_path / "b", download_allow=(host,)) as (base, _env, config):
            status, body = http_json("POST", f"{base}/api/models/download", {"url": link})
            assert status == 200, body
            snap = finished(base + "/api", body["task_id"])
            assert snap["state"] == "done" and snap["path"] == "loras/my_lora.safetensors", snap["error"]
