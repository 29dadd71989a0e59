"""Per-prompt webhooks: signed, retried with backoff, only to --webhook-allow hosts, no redirects."""
import asyncio
import contextlib
import hashlib
import hmac
import json
import stat
import threading
import time

from aiohttp import web

from api.webhooks import SECRET_FILE
from config import Config
from tests.server_harness import http_json, stub_server, wait_for
from tests.stub_nodes import chain_prompt

FAIL = {"1": {"class_type": "Const", "inputs": {"value": 1}},
        "2": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "nope"}},
        "3": {"class_type": "Show", "inputs": {"x": ["2", 0]}}}


@contextlib.contextmanager
def receiver(answers=(200,), redirect_to=None):
    """An aiohttp server on 127.0.0.1 recording every request; answers in turn (last repeats)."""
    calls = []

    async def hook(request):
        calls.append({"headers": dict(request.headers), "body": await request.read()})
        status = answers[min(len(calls), len(answers)) - 1]
        if redirect_to and 300 <= status < 400:
            raise web.HTTPTemporaryRedirect(redirect_to)
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready, state = threading.Event(), {}

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state["port"] = site._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"127.0.0.1:{state['port']}", calls
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def submit(base, prompt, url, pid):
    return http_json("POST", base + "/prompt", {"prompt": prompt, "prompt_id": pid,
                                                "extra_data": {"webhook": url}})


def test_signed_record_on_success_error_and_interrupt(tmp_path):
    with receiver() as (host, calls), \
            stub_server(tmp_path, webhook_allow=(host,), webhook_backoff_s=0.05) as (base, env, c):
        url = f"http://{host}/hook"
        assert submit(base, chain_prompt(value=4), url, "ok")[0] == 200
        wait_for(lambda: len(calls) == 1)
        assert submit(base, FAIL, url, "bad")[0] == 200
        wait_for(lambda: len(calls) == 2)
        env.started.clear()
        assert submit(base, chain_prompt(steps=1000, delay=0.01), url, "stop")[0] == 200
        wait_for(env.started.is_set)
        http_json("POST", base + "/interrupt", {})
        wait_for(lambda: len(calls) == 3)
        secret_path = c.data_dir / SECRET_FILE
        assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
        secret = secret_path.read_text().strip().encode()
        records = []
        for call in calls:
            stamp = call["headers"]["X-Cascade-Timestamp"]
            expected = hmac.new(secret, stamp.encode() + b"." + call["body"],
                                hashlib.sha256).hexdigest()
            assert call["headers"]["X-Cascade-Signature"] == "sha256=" + expected
            records.append(json.loads(call["body"]))
        assert [(r["prompt_id"], r["status"]) for r in records] == [
            ("ok", "completed"), ("bad", "failed"), ("stop", "cancelled")]
        assert records[0]["outputs"]["4"]["images"][0]["type"] == "output"
        assert records[1]["messages"][-1][0] == "execution_error"
        # A tampered body does not match the signature.
        forged = hmac.new(secret, stamp.encode() + b"." + calls[0]["body"] + b" ",
                          hashlib.sha256).hexdigest()
        assert calls[0]["headers"]["X-Cascade-Signature"] != "sha256=" + forged


def test_a_queued_job_removed_before_it_runs_is_reported_cancelled_once(tmp_path):
    with receiver() as (host, calls), \
            stub_server(tmp_path, webhook_allow=(host,), webhook_backoff_s=0.05) as (base, env, _):
        url = f"http://{host}/hook"
        env.started.clear()
        assert submit(base, chain_prompt(steps=1000, delay=0.01), url, "busy")[0] == 200
        wait_for(env.started.is_set)
        assert submit(base, chain_prompt(value=7), url, "queued")[0] == 200
        status, body = http_json("POST", base + "/api/jobs/queued/cancel", {})
        assert status == 200 and body["cancelled"] is True
        wait_for(lambda: len(calls) == 1)
        http_json("POST", base + "/interrupt", {})
        wait_for(lambda: len(calls) == 2)
        records = [json.loads(c["body"]) for c in calls]
        assert [(r["prompt_id"], r["status"]) for r in records] == [("queued", "cancelled"), ("busy", "cancelled")]
        assert records[0]["outputs"] == {} and records[0]["messages"][-1][0] == "execution_interrupted"
        # Cancelling again is a no-op: no second call for the same job.
        http_json("POST", base + "/api/jobs/queued/cancel", {})
        http_json("POST", base + "/api/jobs/cancel", {"job_ids": ["queued"]})
        time.sleep(0.3)  # a second delivery would have been scheduled by now
        assert len(calls) == 2


def test_retried_with_backoff_until_the_receiver_accepts(tmp_path):
    with receiver(answers=(500, 503, 200)) as (host, calls), \
            stub_server(tmp_path, webhook_allow=(host,), webhook_backoff_s=0.05) as (base, _, _):
        assert submit(base, chain_prompt(), f"http://{host}/hook", "r")[0] == 200
        wait_for(lambda: len(calls) == 3)
        bodies = {call["body"] for call in calls}
        assert len(bodies) == 1 and json.loads(calls[0]["body"])["prompt_id"] == "r"
    # A receiver that always fails is tried a bounded number of times.
    with receiver(answers=(500,)) as (host, calls), \
            stub_server(tmp_path / "b", webhook_allow=(host,), webhook_backoff_s=0.01) as (
                base, _, _):
        assert submit(base, chain_prompt(), f"http://{host}/hook", "f")[0] == 200
        wait_for(lambda: len(calls) == 4)
        http_json("POST", base + "/prompt?wait=true", {"prompt": chain_prompt(value=8)})
        assert len(calls) == 4


def test_unlisted_hosts_are_refused_and_never_called(tmp_path):
    with receiver() as (other, other_calls), \
            receiver(answers=(307,), redirect_to=f"http://{other}/hook") as (listed, calls), \
            stub_server(tmp_path, webhook_allow=(listed,), webhook_backoff_s=0.01) as (
                base, _, _):
        for url in (f"http://{other}/hook", "http://localhost:1/hook", "ftp://" + listed,
                    f"http://user:pw@{listed}/hook", 42):
            status, reply = submit(base, chain_prompt(), url, "x")
            assert status == 400 and "webhook" in reply["error"]["message"], (url, reply)
        status, reply = submit(base, chain_prompt(), f"http://{other}/hook", "x")
        assert "--webhook-allow" in reply["error"]["message"]
        assert http_json("GET", base + "/queue")[1]["queue_pending"] == []
        # The listed receiver redirects to the unlisted one: not followed, not retried.
        assert calls == []
        assert submit(base, chain_prompt(), f"http://{listed}/hook", "redir")[0] == 200
        wait_for(lambda: len(calls) == 1)
        http_json("POST", base + "/prompt?wait=true", {"prompt": chain_prompt(value=8)})
        assert len(calls) == 1 and other_calls == []


def test_no_webhook_without_the_flag(tmp_path):
    with receiver() as (host, calls), stub_server(tmp_path) as (base, _, _):
        status, reply = submit(base, chain_prompt(), f"http://{host}/hook", "n")
        assert status == 400 and "--webhook-allow" in reply["error"]["message"]
        assert http_json("POST", base + "/prompt?wait=true", {"prompt": chain_prompt()})[0] == 200
    assert calls == []


def test_flag_is_repeatable():
    config = Config.from_cli(["--webhook-allow", "Hooks.example:8443", "--webhook-allow",
                              "127.0.0.1"], environ={})
    assert config.webhook_allow == ("hooks.example:8443", "127.0.0.1")


def test_the_secret_is_never_read_empty(tmp_path, monkeypatch):
    """A delivery starting while another is still writing the secret, or after a crash left the
    file empty, used to sign with an empty key: any receiver check would pass a forgery."""
    from api import webhooks

    (tmp_path / SECRET_FILE).write_bytes(b"")  # an older crash's remnant
    secret = webhooks.load_secret(tmp_path)
    assert len(secret) == 64 and webhooks.load_secret(tmp_path) == secret
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    writing, go_on = threading.Event(), threading.Event()
    real_token_hex, first = webhooks.secrets.token_hex, []

    def slow_token_hex(n):
        if n == 32 and not first:  # the first writer stalls mid-write
            first.append(1)
            writing.set()
            go_on.wait(10)
        return real_token_hex(n)

    monkeypatch.setattr(webhooks.secrets, "token_hex", slow_token_hex)
    results = []
    writer = threading.Thread(target=lambda: results.append(webhooks.load_secret(fresh)))
    writer.start()
    assert writing.wait(10)
    second = webhooks.load_secret(fresh)  # the other delivery, while the first is mid-write
    go_on.set()
    writer.join(10)
    assert len(second) == 64 and results == [second]
    assert (fresh / SECRET_FILE).read_bytes().strip() == second
    assert [p.name for p in fresh.iterdir()] == [SECRET_FILE]  # no temporary file left


def test_a_secret_readable_by_others_is_made_private(tmp_path):
    from api import webhooks

    (tmp_path / SECRET_FILE).write_text("a" * 64)
    (tmp_path / SECRET_FILE).chmod(0o644)
    assert webhooks.load_secret(tmp_path) == b"a" * 64
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
