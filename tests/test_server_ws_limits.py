"""A WebSocket client that never reads cannot grow the server: bounded outbox, ping, drop."""
import asyncio
import json
import threading
import uuid

import pytest

from api.common import SERVICES
from api.ws_outbox import TEXT_CAP, Outbox, OutboxOverflow
from tests.server_harness import collect_until_done, connect_ws, http_json, stub_server, wait_for


def test_outbox_keeps_newest_preview_per_node_and_overflows_closed():
    async def go():
        box = Outbox(max_messages=5, max_bytes=1000)
        box.put("a")
        for i in range(10):
            box.put(bytes([i]), key=("preview", "2"))
        box.put(b"z", key=("preview", "3"))
        box.put("b")
        assert len(box) == 4 and box.bytes == 4
        assert [await box.get() for _ in range(4)] == ["a", bytes([9]), b"z", "b"]
        for i in range(5):
            assert box.put(str(i))
        assert not box.put("one too many") and box.overflowed and len(box) == 0
        assert not box.put("later")
        with pytest.raises(OutboxOverflow):
            await box.get()
        big = Outbox(max_messages=100, max_bytes=10)
        assert not big.put("x" * 11)  # the byte cap holds too
    asyncio.run(go())


def test_never_reading_client_is_dropped_and_others_keep_receiving(tmp_path):
    expose = {}
    with stub_server(tmp_path, expose) as (base, _, config):
        hub = expose["app"][SERVICES].hub
        lazy_id, reader_id = uuid.uuid4().hex, uuid.uuid4().hex
        lazy = connect_ws(base, lazy_id)  # handshake done; it never reads again
        reader = connect_ws(base, reader_id)
        wait_for(lambda: {lazy_id, reader_id} <= set(hub.clients))
        lazy_client = hub.clients[lazy_id]
        got = {"n": 0}

        def read():
            while True:
                data = json.loads(reader.recv())
                if data["data"].get("pad", "").startswith("seq"):
                    got["n"] += 1
                if data["data"].get("last"):
                    return

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        high_water, sent = 0, 0
        for _ in range(60):  # 6,000 × 4 KB = 24 MB, more than any socket buffer holds
            for _ in range(100):
                hub.publish_threadsafe("status", {"pad": "seq" + "x" * 4000}, None)
                sent += 1
            wait_for(lambda: got["n"] >= sent - 100)  # the reading client keeps up
            high_water = max(high_water, len(lazy_client.outbox))
        hub.publish_threadsafe("status", {"last": True}, None)
        thread.join(10)
        assert not thread.is_alive() and got["n"] == sent  # nothing lost for the reader
        assert lazy_id not in hub.clients and hub.dropped == 1
        assert high_water <= config.ws_outbox_messages
        assert lazy_client.outbox.bytes == 0 and len(lazy_client.outbox) == 0
        assert reader_id in hub.clients
        lazy.close()
        reader.close()


def test_client_that_never_answers_pings_is_closed(tmp_path):
    expose = {}
    with stub_server(tmp_path, expose, ws_heartbeat_s=0.2) as (base, _, _):
        hub = expose["app"][SERVICES].hub
        sid = uuid.uuid4().hex
        silent = connect_ws(base, sid)
        wait_for(lambda: sid in hub.clients)
        wait_for(lambda: sid not in hub.clients, timeout=5)
        silent.close()


def test_error_text_is_capped_on_the_socket_but_whole_in_history(tmp_path):
    with stub_server(tmp_path) as (base, _, _):
        cid = uuid.uuid4().hex
        ws = connect_ws(base, cid)
        message = "why " * 50_000
        prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}},
                  "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": message}},
                  "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}
        pid = http_json("POST", base + "/prompt", {"prompt": prompt, "client_id": cid})[1]
        events = collect_until_done(ws, pid["prompt_id"])
        error = [e for e in events if e["type"] == "execution_error"][0]["data"]
        assert error["exception_message"].startswith("why why")
        assert TEXT_CAP < len(error["exception_message"]) < TEXT_CAP + 100
        assert "/history" in error["exception_message"]
        assert all(len(line) < TEXT_CAP + 100 for line in error["traceback"])
        entry = http_json("GET", f"{base}/history/{pid['prompt_id']}")[1][pid["prompt_id"]]
        assert entry["status"]["messages"][-1][1]["exception_message"] == message
        ws.close()
