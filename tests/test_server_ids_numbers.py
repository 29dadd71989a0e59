"""Prompt ids every route can reach, queue numbers that never restart, storage faults as 503."""
import sqlite3
import urllib.parse

import pytest

from api.common import SERVICES

from tests.server_harness import http_json, stub_server
from tests.stub_nodes import chain_prompt


@pytest.fixture
def server(tmp_path):
    exposed: dict = {}
    with stub_server(tmp_path, expose=exposed) as (base, _, _):
        yield base, exposed


@pytest.mark.parametrize("prompt_id", ["a/b", "..\\x", "tab\there", "nul\x00", "rtl\u202eevil",
                                       "line\u2028sep", " "])
def test_prompt_ids_that_a_url_path_cannot_carry_are_refused(server, prompt_id):
    base, _ = server
    status, body = http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=1),
                                                        "prompt_id": prompt_id})
    assert status == 400 and "prompt_id" in body["error"]["message"]
    assert http_json("GET", base + "/queue")[1]["queue_pending"] == []


def test_a_unicode_prompt_id_is_reachable_through_every_job_route(server):
    base, _ = server
    pid = "ünïcode-ジョブ-✓"
    http_json("POST", base + "/queue", {"pause": True})
    assert http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=1),
                                                "prompt_id": pid})[0] == 200
    quoted = urllib.parse.quote(pid)
    status, job = http_json("GET", f"{base}/jobs/{quoted}")
    assert status == 200 and job["state"] == "pending"
    status, reply = http_json("POST", f"{base}/jobs/{quoted}/cancel", {})
    assert status == 200 and reply["cancelled"] is True


def test_queue_numbers_keep_growing_after_the_queue_and_history_are_cleared(server):
    base, _ = server
    http_json("POST", base + "/queue", {"pause": True})
    numbers = [http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=i)})[1]["number"]
               for i in range(3)]
    http_json("POST", base + "/queue", {"clear": True})
    http_json("POST", base + "/history", {"clear": True})
    after = http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=9)})[1]["number"]
    assert numbers == sorted(numbers) and after > numbers[-1]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e999"])
def test_wait_timeout_must_be_a_finite_number_of_seconds(server, value):
    base, _ = server
    status, body = http_json("POST", f"{base}/prompt?wait=true&timeout={value}",
                             {"prompt": chain_prompt(value=1)})
    assert status == 400 and "timeout" in body["error"]["message"]
    assert http_json("GET", base + "/queue")[1]["queue_pending"] == []


def test_a_full_disk_is_a_503_naming_the_storage_not_a_500(server, monkeypatch):
    base, exposed = server
    store = exposed["app"][SERVICES].store

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "add", full)
    status, body = http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=1)})
    assert status == 503 and body["error"]["type"] == "storage_unavailable"
    assert "disk is full" in body["error"]["message"]
