"""Fetching weights from a local server laid out like the Hugging Face hub (no mocks of the hub
library or of the file system: real HTTP on loopback, real files, real disk-space numbers)."""
from __future__ import annotations

import hashlib
import shutil
import time

import pytest
from huggingface_hub import constants

from runtime import hub_fetch as hf
from runtime.downloads import FINISHED, HUB_PATHS, HUB_REPO, SETS, Downloads, resolve_request
from runtime.weights import OFFICIAL_FILES
from tests.hub_server import allow_local_hub, local_hub

FOLDER = {o.name: o.folder for o in OFFICIAL_FILES}


def official_bytes(name: str) -> bytes:
    # Distinct content per file, long enough to be cut mid-body and to span several 1 KiB chunks.
    return hashlib.sha256(name.encode()).digest() * 300


def repo_files(names=tuple(FOLDER)) -> dict[str, dict[str, bytes]]:
    return {HUB_REPO: {HUB_PATHS.get(n, n): official_bytes(n) for n in names}}


@pytest.fixture
def hub(monkeypatch):
    with local_hub(repo_files()) as h:
        allow_local_hub(monkeypatch, h)
        yield h


def run(dl: Downloads, tasks, timeout=20):
    assert dl.wait(tasks, timeout), [t.snapshot() for t in tasks]
    return tasks


def test_lite_set_lands_in_its_folders(hub, tmp_path):
    dl = Downloads(tmp_path)
    tasks = run(dl, dl.start_official(resolve_request(set_name="lite")))
    assert [t.state for t in tasks] == ["done"] * len(SETS["lite"]), [t.error for t in tasks]
    for name in SETS["lite"]:
        assert (tmp_path / FOLDER[name] / name).read_bytes() == official_bytes(name)
    # text_encoder/ comes from the repo's subfolder; nothing partial is left behind
    assert ("GET", f"/{HUB_REPO}/resolve/main/text_encoder/model.bf16.safetensors", None) in hub.requests
    assert list((tmp_path / hf.PART_FOLDER).iterdir()) == []
    snap = tasks[0].snapshot()
    assert snap["bytes_done"] == snap["bytes_total"] == len(official_bytes(SETS["lite"][0]))


# huggingface_hub writes what it received in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB): a resume can
# only start after whole chunks, so the files that are cut or cancelled here are a little larger.
CHUNK = constants.DOWNLOAD_CHUNK_SIZE
BIG = bytes(range(256)) * ((CHUNK + CHUNK // 2) // 256)


def test_dropped_connection_is_resumed_with_a_range_request(hub, tmp_path):
    name = "stage_a.safetensors"
    hub.repos[HUB_REPO][name] = BIG
    hub.drop_once[name] = CHUNK + 4096
    hub.chunk = 2**16
    dl = Downloads(tmp_path)
    (task,) = run(dl, dl.start_official(resolve_request([name])))
    assert task.state == "done", task.snapshot()
    assert (tmp_path / "stage_a" / name).read_bytes() == BIG
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith(name)]
    assert ranges == [None, f"bytes={CHUNK}-"]


def test_cancelled_download_keeps_its_part_and_the_next_one_resumes(hub, tmp_path):
    name = "previewer.safetensors"
    hub.repos[HUB_REPO][name] = BIG * 2
    hub.chunk, hub.delay_s = 2**18, 0.01
    dl = Downloads(tmp_path)
    (task,) = dl.start_official(resolve_request([name]))
    deadline = time.monotonic() + 20
    while task.done < CHUNK and task.state not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.01)
    dl.cancel(task.id)
    run(dl, [task])
    assert task.state == "cancelled", task.snapshot()
    assert not (tmp_path / "previewer" / name).exists()
    (part,) = (tmp_path / hf.PART_FOLDER).iterdir()
    assert part.stat().st_size == CHUNK  # whole chunks only: the one being received when cancelled is dropped
    hub.delay_s = 0
    (again,) = run(dl, dl.start_official(resolve_request([name])))
    assert again.state == "done" and again.id != task.id
    assert (tmp_path / "previewer" / name).read_bytes() == BIG * 2
    assert [r for m, p, r in hub.requests if m == "GET"][-1] == f"bytes={CHUNK}-"


def test_wrong_hash_is_refused_and_never_placed(hub, tmp_path):
    name = "effnet_encoder.safetensors"
    hub.etags[name] = "0" * 64
    dl = Downloads(tmp_path)
    (task,) = run(dl, dl.start_official(resolve_request([name])))
    assert task.state == "error" and "sha256" in task.error
    assert not (tmp_path / "effnet" / name).exists()
    assert list((tmp_path / hf.PART_FOLDER).iterdir()) == []


def test_out_of_space_is_refused_before_any_byte(hub, tmp_path):
    name = "stage_a.safetensors"
    free = shutil.disk_usage(tmp_path).free
    dl = Downloads(tmp_path, keep_free=free + 2**30)  # a threshold no real disk meets
    (task,) = run(dl, dl.start_official(resolve_request([name])))
    assert task.state == "error" and "not enough disk space" in task.error
    assert not [r for r in hub.requests if r[0] == "GET"]
    assert not (tmp_path / "stage_a" / name).exists()


def test_two_requests_for_one_file_share_one_task(hub, tmp_path):
    hub.delay_s = 0.005
    dl = Downloads(tmp_path)
    (first,) = dl.start_official(resolve_request(["stage_a.safetensors"]))
    (second,) = dl.start_official(resolve_request(["stage_a.safetensors"]))
    assert second is first
    run(dl, [first])
    assert first.state == "done"
    assert len([r for r in hub.requests if r[0] == "GET"]) == 1


def test_an_existing_file_is_kept_and_not_fetched(hub, tmp_path):
    (tmp_path / "stage_a").mkdir()
    (tmp_path / "stage_a" / "stage_a.safetensors").write_bytes(b"mine")
    dl = Downloads(tmp_path)
    (task,) = run(dl, dl.start_official(resolve_request(["stage_a.safetensors"])))
    assert task.state == "done" and (tmp_path / "stage_a" / "stage_a.safetensors").read_bytes() == b"mine"
    assert hub.requests == []


def test_the_token_goes_to_the_hub_only(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_tests")
    src = hf.url_source(f"{hub.url}/{HUB_REPO}/resolve/main/stage_a.safetensors")
    assert "hf_secret_for_tests" not in repr(src)
    with local_hub(repo_files()) as other:  # another host: same files, not the endpoint
        hf.url_source(f"{other.url.replace('127.0.0.1', 'localhost')}/plain/stage_a.safetensors")
        assert [a for _, a in other.auth] == [None]
    assert [a for _, a in hub.auth] == ["Bearer hf_secret_for_tests"]


@pytest.mark.parametrize("bad", ["file:///etc/passwd", "ftp://example.org/a.safetensors", "https://", "nonsense",
                                 "https://example.org/"])
def test_only_http_links_to_a_file_are_accepted(bad, tmp_path):
    with pytest.raises(hf.DownloadError):
        Downloads(tmp_path).start_url(bad)


def test_blob_links_become_resolve_links(hub):
    assert hf.normalise_url(f"{hub.url}/org/r/blob/main/sub/x.safetensors") == \
        f"{hub.url}/org/r/resolve/main/sub/x.safetensors"
    assert hf.normalise_url("https://huggingface.co/org/r/blob/v1/x.safetensors") == \
        "https://huggingface.co/org/r/resolve/v1/x.safetensors"
    # Only the hub's pages are rewritten: another site's /blob/ path is a file path like any other
    assert hf.normalise_url("https://example.org/a/b/blob/c/x.safetensors").endswith("/blob/c/x.safetensors")


def test_the_token_never_travels_in_the_clear_to_the_hubs_name(monkeypatch):
    """http://huggingface.co is the hub's name over plain http: no token (https and the configured endpoint only)."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_tests")
    monkeypatch.setenv("HF_ENDPOINT", "https://huggingface.co")
    assert hf.is_hub("https://huggingface.co/org/r/resolve/main/x.safetensors")
    assert not hf.is_hub("http://huggingface.co/org/r/resolve/main/x.safetensors")
    assert "authorization" not in {k.lower() for k in hf._headers("http://huggingface.co/org/r/resolve/main/x")}
    assert "authorization" in {k.lower() for k in hf._headers("https://huggingface.co/org/r/resolve/main/x")}
