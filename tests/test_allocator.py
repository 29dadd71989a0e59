"""runtime/allocator.py: after tune(), large tensors come from the heap and are reused without page faults.

Each check runs in a fresh interpreter: the settings are process-wide and must precede the first thread.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import allocator

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc's mallopt (Linux)")

# In a worker thread, as the server runs jobs: three "steps" that each allocate, fill and free large tensors
# of a few sizes (as a UNet step does with its activations); count the minor page faults of the last step and
# the large anonymous mappings alive during it. Then free a 512 MiB tensor and read the resident set before
# and after release().
PROBE = r"""
import json, resource, sys, threading
sys.path.insert(0, sys.argv[1])
from runtime import allocator
tuned = allocator.tune()
import torch

def big_mappings():
    n = 0
    for line in open("/proc/self/maps"):
        lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
        n += hi - lo >= 48 << 20 and len(line.split()) < 6  # anonymous, no path
    return n

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() >> 20

def step():
    # a chain of layers, each output allocated before its input is freed
    x = torch.empty(32 << 20, dtype=torch.uint8).fill_(1)
    for mib in (96, 48, 96, 64, 32):
        y = torch.empty(mib << 20, dtype=torch.uint8).fill_(1)
        x = y
    return big_mappings()

out = {"tuned": tuned}
def job():
    before = big_mappings()
    with allocator.loading():  # a model load: its large blocks get mappings of their own
        w = torch.empty(96 << 20, dtype=torch.uint8).fill_(1)
        out["load_mappings"] = big_mappings() - before
        del w
    for _ in range(9):
        step()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out["new_mappings"] = step() - before
    out["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    out["rss_steps"] = rss_mib()
    t = torch.empty(512 << 20, dtype=torch.uint8).fill_(1)
    del t
    out["rss_freed"] = rss_mib()
    allocator.release()
    out["rss_released"] = rss_mib()
th = threading.Thread(target=job)
th.start()
th.join()
print(json.dumps(out))
"""


def probe(**env: str) -> dict:
    import os

    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_tuned_large_tensors_reuse_heap_memory_without_page_faults():
    got = probe()
    assert got["tuned"] is True
    assert got["new_mappings"] == 0  # served from the heap, not a fresh mapping
    assert got["faults"] < 2000  # the step fills 368 MiB (94,208 pages): reused memory faults (almost) none


def test_a_model_load_maps_its_blocks_and_steps_after_it_use_the_heap_again():
    got = probe()
    assert got["load_mappings"] == 1  # inside loading(): freed load copies go straight back
    assert got["new_mappings"] == 0 and got["faults"] < 2000  # after it: tuned again


def test_release_gives_freed_memory_back():
    got = probe()
    assert got["rss_freed"] - got["rss_released"] > 400  # MiB of the freed 512 MiB tensor


def test_cascade_malloc_default_leaves_glibc_as_it_is():
    got = probe(CASCADE_MALLOC="default")
    assert got["tuned"] is False
    assert got["new_mappings"] >= 1  # glibc's own behaviour: each large block is a mapping of its own ...
    assert got["faults"] > 80000  # ... faulted in again on every allocation


def test_evicting_a_model_releases_its_memory(monkeypatch, tmp_path):
    from torch import nn

    from runtime.residency import ModelManager

    calls = []
    monkeypatch.setattr(allocator, "release", lambda: calls.append(1))
    mm = ModelManager(lambda p, k, d, dev: nn.Linear(4, 4), budget_bytes=1 << 30)
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x" * 64)
    module = mm.load(path, "stage_c", __import__("torch").float32, defer=False)
    assert mm.unload(module) and calls == [1]


# A job run by the Executor in a worker thread, as the server runs it: the stub nodes' env.record
# allocates a chain of large tensors (a UNet step's activations) and frees them; the env's after_job
# is the real Env's. The resident set is read before the job and after execute() returns.
JOB = r"""
import json, resource, sys, threading
sys.path.insert(0, sys.argv[1])
from runtime import allocator
allocator.tune()
import torch
from engine.executor import Executor
from engine.graph import validate_prompt
from runtime.env import Env
from tests.stub_nodes import STUB_NODES, StubEnv, chain_prompt

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() >> 20

class JobEnv(StubEnv):
    after_job = getattr(Env, "after_job", None)  # None before Env had the hook
    def record(self, ctx, name):
        super().record(ctx, name)
        x = torch.empty(32 << 20, dtype=torch.uint8).fill_(1)
        for mib in (96, 48, 96, 64, 32):
            x = torch.empty(mib << 20, dtype=torch.uint8).fill_(1)

env = JobEnv(__import__("pathlib").Path(sys.argv[2]))
ex = Executor(STUB_NODES, env)
v = validate_prompt(chain_prompt(value=3, steps=1), STUB_NODES, env)
out = {}
def job():
    out["before"] = rss_mib()
    out["status"] = ex.execute(v.prompt, v.outputs, prompt_id="p", cancel=threading.Event()).status
    out["after"] = rss_mib()
th = threading.Thread(target=job)
th.start()
th.join()
print(json.dumps(out))
"""


def test_a_job_gives_its_freed_memory_back_when_it_ends(tmp_path):
    import os

    proc = subprocess.run([sys.executable, "-c", JOB, str(ROOT), str(tmp_path)], capture_output=True,
                          text=True, env=os.environ, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["status"] == "success"
    # four nodes each free 432 MiB of activations; a tuned heap kept ~300 MiB or more of it idle
    assert got["after"] - got["before"] < 100, got


def test_executor_calls_the_env_after_job_hook_after_each_job(tmp_path):
    import threading

    from engine.executor import Executor
    from engine.graph import validate_prompt
    from tests.stub_nodes import STUB_NODES, StubEnv, chain_prompt

    calls = []

    class HookEnv(StubEnv):
        def after_job(self):
            calls.append(len(self.runs))  # how many nodes had run when the hook was called

    env = HookEnv(tmp_path)
    ex = Executor(STUB_NODES, env)
    v = validate_prompt(chain_prompt(value=3, steps=1), STUB_NODES, env)
    for _ in range(2):
        assert ex.execute(v.prompt, v.outputs, prompt_id="p", cancel=threading.Event()).status == "success"
    assert calls == [4, 4]  # after the whole job, once per job (the second is all cached)


def test_free_memory_releases_the_heap(monkeypatch):
    from types import SimpleNamespace

    from runtime.env import Env

    calls = []
    monkeypatch.setattr(allocator, "release", lambda: calls.append(1))
    Env.free_memory(SimpleNamespace(models=SimpleNamespace(unload_all=lambda: 0)), False)
    Env.after_job(None)
    assert calls == [1, 1]


def test_child_env_carries_the_settings_unless_turned_off():
    assert allocator.child_env({}) == {"CASCADE_MALLOC": "tuned", "MALLOC_ARENA_MAX": "1",
                                       "MALLOC_MMAP_MAX_": "0",
                                       "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD)}
    assert allocator.child_env({"CASCADE_MALLOC": " Default "}) == {"CASCADE_MALLOC": "default"}


# A worker process as a remote Ray node starts it: that node's environment (not the server's) plus the
# server's child_env(); it tunes as load_nodes does, then mallocs 96 MiB: its own mapping or the heap?
WORKER = r"""
import ctypes, json, sys
sys.path.insert(0, sys.argv[1])
from runtime import allocator
tuned = allocator.tune()
def big():
    return sum(1 for line in open("/proc/self/maps") if len(line.split()) < 6 and
               (lambda lo, hi: int(hi, 16) - int(lo, 16))(*line.split()[0].split("-")) >= 48 << 20)
before = big()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(96 << 20)
print(json.dumps({"tuned": tuned, "applied": allocator._applied, "mapped": big() > before}))
"""


@pytest.mark.parametrize("server, node", [({"CASCADE_MALLOC": "default"}, {}),
                                          ({}, {"CASCADE_MALLOC": "default"})])
def test_a_remote_worker_follows_the_servers_choice_not_its_nodes(server, node):
    import os

    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env = {**base, **node, **allocator.child_env(server)}  # Ray: runtime_env env_vars over the node's
    proc = subprocess.run([sys.executable, "-c", WORKER, str(ROOT)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    wanted = server.get("CASCADE_MALLOC") != "default"
    # tuned: large blocks from the heap, and release()/loading() in force; default: glibc as it ships
    assert got == {"tuned": wanted, "applied": wanted, "mapped": not wanted}, got


def test_reading_a_model_runs_inside_loading(monkeypatch, tmp_path):
    import contextlib

    from torch import nn

    from runtime.residency import ModelManager

    seen = []

    @contextlib.contextmanager
    def loading():
        seen.append("enter")
        yield
        seen.append("exit")

    def load_fn(p, k, d, dev):
        seen.append("read")
        return nn.Linear(4, 4)

    monkeypatch.setattr(allocator, "loading", loading)
    mm = ModelManager(load_fn, budget_bytes=1 << 30)
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x" * 64)
    mm.load(path, "stage_c", __import__("torch").float32, defer=False)
    assert seen == ["enter", "read", "exit"]
