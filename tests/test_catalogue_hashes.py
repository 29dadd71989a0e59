"""sha256 of weights files: computed once, cached per path and file stamp, persisted, lazy in the API."""
from __future__ import annotations

import hashlib
import os
import time

from nodes.registry import NODES
from runtime.env import Env
from runtime.hashes import STORE_NAME, HashStore, store_for
from tests.catalogue_helpers import write, write_loras
from tests.nodes_helpers import tmp_config
from tests.server_harness import http_json, running_server


def test_hash_is_computed_once_and_survives_a_restart(tmp_path):
    path = write(tmp_path / "w" / "a.safetensors", "stage_a")
    want = hashlib.sha256(path.read_bytes()).hexdigest()
    store = HashStore(tmp_path / "user")
    assert store.get(path) is None  # get never reads the file
    assert store.compute(path) == want and store.files_read == 1
    assert store.compute(path) == want and store.get(path) == want and store.files_read == 1  # no second read
    assert (tmp_path / "user" / STORE_NAME).is_file()
    restarted = HashStore(tmp_path / "user")
    assert restarted.compute(path) == want and restarted.files_read == 0  # read from the saved store
    os.utime(path, ns=(1, 1))  # replaced in place (same size, other mtime): hashed again
    assert restarted.get(path) is None
    assert restarted.compute(path) == want and restarted.files_read == 1


def test_details_listing_hashes_in_the_background_and_only_once(tmp_path):
    weights = tmp_path / "weights"
    good = write(weights / "stage_c" / "c.safetensors", "stage_c")
    write(weights / "stage_c" / "misplaced.safetensors", "stage_b")
    (weights / "stage_c" / "junk.safetensors").write_text("hello")
    write_loras(weights / "loras")
    config = tmp_config(tmp_path, demo=False)
    env = Env(config)
    with running_server(config, NODES, env) as base:
        # ComfyUI clients get the plain list of names, as ComfyUI returns it.
        status, names = http_json("GET", base + "/models/stage_c")
        assert status == 200 and names == ["c.safetensors", "junk.safetensors", "misplaced.safetensors"]
        status, first = http_json("GET", base + "/models/stage_c?details=1")
        assert status == 200 and [d["name"] for d in first] == names
        by = {d["name"]: d for d in first}
        assert by["c.safetensors"]["kinds"] == ["stage_c"] and by["c.safetensors"]["size"] == good.stat().st_size
        assert by["c.safetensors"]["parts"][0]["preset"] == "tiny" and by["c.safetensors"]["problems"] == []
        assert by["junk.safetensors"]["format"] == "not safetensors"
        assert "wrong folder" in by["misplaced.safetensors"]["problems"][0]
        store = store_for(config.data_dir)  # the API's store (one per data folder and process)
        deadline = time.monotonic() + 20
        while store.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        read = store.files_read
        assert read == 3
        status, second = http_json("GET", base + "/api/models/stage_c?details=true")
        by = {d["name"]: d for d in second}
        assert by["c.safetensors"]["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
        assert store.files_read == read and store.pending() == 0  # the second listing read no file again
        status, loras = http_json("GET", base + "/models/loras?details=1")
        lora = {d["name"]: d for d in loras}["decoder_style.safetensors"]["lora"]
        assert lora["targets"] == ["stage_c"] and lora["rank"] == [4] and lora["tensors"] == 3



def test_a_file_replaced_with_the_same_size_and_mtime_is_hashed_again(tmp_path):
    """`cp -p` (or any tool restoring mtimes) swaps contents under the same size and mtime: the change time
    still moves, so the cached hash is not served for the new bytes."""
    import hashlib
    import os
    import time

    from runtime.hashes import HashStore

    f = tmp_path / "x.safetensors"
    f.write_bytes(b"a" * 64)
    store = HashStore(tmp_path / "data")
    assert store.compute(f) == hashlib.sha256(b"a" * 64).hexdigest()
    st = f.stat()
    time.sleep(0.01)
    f.write_bytes(b"b" * 64)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime, new bytes
    assert store.get(f) is None
    assert store.compute(f) == hashlib.sha256(b"b" * 64).hexdigest()
