"""One data folder, one server: a second server on the same folder leaves the first alone."""
import signal

from tests.server_harness import (http_json, server_args, server_process, spawn_server,
                                  wait_for)
from tests.stub_nodes import chain_prompt


def test_second_server_on_same_data_folder_exits_and_touches_nothing(tmp_path):
    (tmp_path / "temp").mkdir()
    (tmp_path / "temp" / "last_run_preview.png").write_bytes(b"old")
    with server_process(server_args(tmp_path), tmp_path / "logs") as first:
        # The temp folder is emptied at start-up (PreviewImage's files of the last run) ...
        assert not (tmp_path / "temp" / "last_run_preview.png").exists()
        preview = tmp_path / "temp" / "preview_of_the_running_server.png"
        preview.write_bytes(b"new")
        base = first.base
        running = http_json("POST", base + "/prompt", {
            "prompt": chain_prompt(value=1, steps=1000, delay=0.01)})[1]["prompt_id"]
        wait_for(lambda: [i[1] for i in http_json("GET", base + "/queue")[1]["queue_running"]]
                 == [running])
        pending = http_json("POST", base + "/prompt", {"prompt": chain_prompt(value=2)})[1]
        second = spawn_server(server_args(tmp_path), tmp_path / "logs")  # same --data, any port
        try:
            code = second.wait(30)
        finally:
            if second.poll() is None:
                second.send_signal(signal.SIGKILL)
                second.wait(10)
        err = second.log_files[1].read_text().strip()
        assert code != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
        port = base.rsplit(":", 1)[1]
        assert str(tmp_path / "user") in err and "--data" in err
        assert f"pid {first.proc.pid}" in err and f"port {port}" in err
        assert preview.read_bytes() == b"new"  # ... but never by a server that did not start
        queue = http_json("GET", base + "/queue")[1]
        assert [i[1] for i in queue["queue_running"]] == [running]
        assert [i[1] for i in queue["queue_pending"]] == [pending["prompt_id"]]
        http_json("POST", base + "/interrupt", {})
        entry = wait_for(lambda: http_json("GET", f"{base}/history/{pending['prompt_id']}")[1])
        assert entry[pending["prompt_id"]]["status"]["completed"]  # run by the first server


def test_lock_is_released_by_a_killed_server(tmp_path):
    with server_process(server_args(tmp_path), tmp_path / "logs") as first:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    with server_process(server_args(tmp_path), tmp_path / "logs") as again:
        assert http_json("GET", again.base + "/queue")[0] == 200
