"""Host memory allocator settings for CPU inference: serve large tensors from the heap, not fresh mappings.

PyTorch's CPU allocator calls malloc. glibc's malloc hands every block above its mmap threshold (at most
32 MiB) to a fresh anonymous mapping and unmaps it on free, so each large activation of a step (a Stage B
level-0 tensor at 1024² is 84 MiB) is page-faulted and zeroed by the kernel again, every time it is
allocated. PyTorch's own CPU launcher (`python -m torch.backends.xeon.run_cpu`) avoids this by preloading
jemalloc or tcmalloc; we reach the same effect with glibc's documented `mallopt` switches, set once at
start-up, before the models load and the worker threads start:

- `M_MMAP_MAX = 0`: no block is served by its own mapping; large ones come from the heap and are reused;
- `M_TRIM_THRESHOLD`: freed memory at the heap's top is kept up to this size instead of being returned
  and faulted in again at the next step (`release()` gives it back: after a model is evicted);
- `M_ARENA_MAX = 1`: the executor runs in a worker thread, and a non-main arena's heaps are capped at
  64 MiB, above which glibc maps blocks again whatever M_MMAP_MAX says.
  It only takes before a second thread first allocates: in a Ray worker, `load_nodes` (and so tune())
  runs after Ray's own threads have, so the Ray actors are started with the same settings as glibc's
  environment variables instead (`child_env`, engine/dispatch.py).

Measured on the 2-core dev machine: a Stage B lite step at 1024² took about 500,000 page faults and 7.5 s
before, none and 7.1 s after its first step; the whole lite pipeline went from 0.761 to 0.685 of diffusers
(README, bench/results/allocator_ab_cpu.log). The cost: memory a step frees stays with the process for the
next one (peak RSS 5.6 -> 5.9 GiB there), and glibc 2.36's posix_memalign (PyTorch aligns to 64 bytes)
over-asks by the alignment, so a freed block of the same size is not always reused: a loop of one
96 MiB tensor grows the heap by about 8 of them before it settles. So each job's end gives the freed
memory back too (Env.after_job, called by the executor), and the next job's first step faults it in;
and a model load runs with glibc's own mmap switch (`loading()`), where the same quirk had kept every
freed bf16 copy that int8 replaced. `CASCADE_MALLOC=default` leaves glibc as it is.
Elsewhere (musl, macOS, Windows) there is no `mallopt` of this kind and nothing changes.
Source: mallopt(3), glibc's malloc/malloc.c and malloc/arena.c.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import functools
import platform
import threading
from collections.abc import Iterator

log = logging.getLogger("cascade.allocator")

# mallopt(3) parameter numbers, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed heap top: more than one step's activations at 1024²

GLIBC_MMAP_MAX = 65536  # glibc's own default for M_MMAP_MAX

_applied = False
_loads_lock = threading.Lock()
_loads = 0  # loads in progress (loading() nests and may run in several threads)


@functools.cache  # platform.libc_ver() reads the interpreter's binary; release() runs at every job's end
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (the only one whose mallopt takes these switches)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune(environ: dict[str, str] | None = None) -> bool:
    """Apply the settings above once per process; True when they are in force (now or before).

    Call it at start-up, before any thread but the main one allocates: glibc fixes the number of
    arenas when a second thread first allocates. `CASCADE_MALLOC=default` in `environ` (default:
    os.environ) skips it.
    """
    global _applied
    if _applied:
        return True
    if _turned_off(environ):
        return False
    libc = _glibc()
    if libc is None:
        return False
    ok = all(libc.mallopt(param, value) == 1 for param, value in
             ((M_ARENA_MAX, 1), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_MMAP_MAX, 0)))
    if not ok:  # mallopt returns 1 on success
        log.warning("glibc refused a mallopt setting; large tensors may keep their own mappings")
        return False
    _applied = True
    return True


def _turned_off(environ: dict[str, str] | None) -> bool:
    """`CASCADE_MALLOC=default` (any case, spaces around) in `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    return env.get("CASCADE_MALLOC", "").strip().lower() == "default"


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The same settings as glibc's environment variables, for worker processes we start (Ray actors):
    glibc reads them at process start, before any thread exists, where tune() in a Ray worker comes
    after Ray's own threads have allocated. Other C libraries ignore them.

    `CASCADE_MALLOC` always goes with them, as this process decided it: a worker on a remote Ray node
    has that node's environment, not ours, and its own tune() reads it (without it, a server started
    with `CASCADE_MALLOC=default` still had its remote workers tune themselves; and a node's own
    `default` beside our glibc variables left a tuned heap whose release()/loading() were no-ops)."""
    if _turned_off(environ):
        return {"CASCADE_MALLOC": "default"}
    return {"CASCADE_MALLOC": "tuned", "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD)}


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Around a model load: large blocks get mappings of their own again while it runs, then release().

    A load allocates each weight once and frees its file-dtype or bf16 copy (int8 replaces it): in a
    tuned heap those freed blocks are not reused by the next weight of the same size (glibc 2.36's
    posix_memalign over-asks by the alignment), so the int8 lite pair peaked at 7.9 GiB instead of 6.6.
    Mapped, each freed copy goes back at once, and the weights keep their own mappings. Not quite as
    untuned: setting M_TRIM_THRESHOLD turned glibc's dynamic mmap threshold off, so while a load runs
    every block from 128 KiB up is mapped (untuned glibc raises the threshold to the largest freed
    mapped block, up to 32 MiB, and serves smaller ones from the heap). The kernel merges neighbouring
    mappings: 20,000 weights of 400 KiB cast from bf16 copies ended as 7 of them, far below
    vm.max_map_count. A step run by another thread meanwhile maps its blocks too (slower, not wrong).
    A no-op when tune() is not in force."""
    global _loads
    libc = _glibc() if _applied else None
    if libc is None:
        yield
        return
    with _loads_lock:
        _loads += 1
        if _loads == 1:
            libc.mallopt(M_MMAP_MAX, GLIBC_MMAP_MAX)
    try:
        yield
    finally:
        with _loads_lock:
            _loads -= 1
            if _loads == 0:
                libc.mallopt(M_MMAP_MAX, 0)
        release()


def release() -> None:
    """Give freed heap memory back to the system (at a job's end, on POST /free, after a model load or
    eviction); a no-op when not tuned."""
    if _applied:
        libc = _glibc()
        if libc is not None:
            libc.malloc_trim(0)
