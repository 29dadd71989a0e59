"""One frozen configuration object, built from the command line and the environment."""
from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

PROJECT_ROOT = Path(__file__).resolve().parent
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

# Environment variable -> argparse destination. CLI flags win over the environment.
ENV_VARS = {
    "CASCADE_HOST": "host",
    "CASCADE_PORT": "port",
    "CASCADE_WEIGHTS": "weights",
    "CASCADE_OUTPUT": "output",
    "CASCADE_TOKEN": "token",
}


def is_loopback_host(host: str) -> bool:
    """True when `host` names this machine only (so no token is needed to bind it)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Config:
    """Everything the server, the engine and the nodes may be configured with."""

    host: str = "127.0.0.1"
    port: int = 8188
    weights_dir: Path = PROJECT_ROOT / "weights"
    output_dir: Path = PROJECT_ROOT / "output"
    input_dir: Path = PROJECT_ROOT / "input"
    temp_dir: Path = PROJECT_ROOT / "temp"
    data_dir: Path = PROJECT_ROOT / "user"  # the SQLite queue/history database lives here
    web_dir: Path = PROJECT_ROOT / "web"
    token: str | None = None
    max_body_bytes: int = 100 * 1024 * 1024  # every request body, uploads included (ComfyUI default)
    demo: bool = False
    memory_budget_gb: float | None = None
    history_max: int = 10000
    preview_size: int = 512
    wait_max_s: float = 600.0  # POST /prompt?wait=true answers 202 + state after this at most
    ws_outbox_messages: int = 500  # per WebSocket client; past this (or the bytes) it is dropped
    ws_outbox_bytes: int = 8 << 20
    ws_heartbeat_s: float = 30.0  # ping interval; no pong within half of it closes the socket
    # Hosts ("HOST" or "HOST:PORT") a prompt's extra_data.webhook may name (api/webhooks.py).
    webhook_allow: tuple[str, ...] = ()
    webhook_backoff_s: float = 1.0  # first retry delay; doubles per attempt (tests shorten it)
    # Hosts ("HOST" or "HOST:PORT") a download link pasted through the API may name, besides the hub's own.
    download_allow: tuple[str, ...] = ()
    # Extra read-only model folders (runtime/model_roots.py): ComfyUI installs and extra_model_paths.yaml files.
    comfy_models: tuple[Path, ...] = ()
    extra_model_paths: tuple[Path, ...] = ()
    # The Hugging Face hub cache read for the official repos (runtime/hf_cache.py); None reads none.
    # The command line sets it from the environment (HF_HUB_CACHE/HF_HOME), --no-hf-cache leaves it None.
    hf_cache_dir: Path | None = None
    # Scale-out on Ray (docs/scale-out.md): 0 = the in-process worker (no Ray import).
    workers: int = 0
    ray_address: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)  # reserved flags (--run/--set) for cli.py

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def check_safe(self) -> None:
        """Refuse to expose an unauthenticated server beyond this machine."""
        if not self.is_loopback and not self.token:
            raise ValueError(
                f"refusing to listen on non-loopback host {self.host!r} without a token: "
                "anyone reaching the port could run graphs and read your files. "
                "Pass --token SECRET (or set CASCADE_TOKEN), or bind 127.0.0.1."
            )

    def with_overrides(self, **changes: object) -> "Config":
        """A copy with some fields changed (tests and the headless runner use this)."""
        return replace(self, **changes)

    @classmethod
    def from_cli(cls, argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> "Config":
        """Parse `argv` (without the program name) with `environ` as fallback for unset flags."""
        args = build_arg_parser().parse_args(list(argv) if argv is not None else None)
        return cls.from_namespace(args, os.environ if environ is None else environ)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> "Config":
        """Build from an already parsed namespace (for parsers extended by other tools)."""
        values = vars(args).copy()
        for env_name, dest in ENV_VARS.items():
            if values.get(dest) is None and environ.get(env_name):
                values[dest] = environ[env_name]
        port = values.get("port")
        try:
            port = int(port) if port is not None else 8188
        except ValueError:
            raise SystemExit(f"invalid port {port!r}") from None
        paths = {}
        for dest, fld in (("weights", "weights_dir"), ("output", "output_dir"), ("input", "input_dir"),
                          ("temp", "temp_dir"), ("data", "data_dir")):
            if values.get(dest):
                paths[fld] = Path(values[dest]).expanduser().resolve()
        extra = {k: v for k, v in values.items() if k in ("run", "set") and v is not None}
        roots = {dest: tuple(Path(p).expanduser().resolve() for p in values.get(dest) or ())
                 for dest in ("comfy_models", "extra_model_paths")}
        if not values.get("no_hf_cache"):
            from runtime.hf_cache import default_cache_dir  # light: huggingface_hub is imported only to report

            roots["hf_cache_dir"] = default_cache_dir(environ)
        return cls(
            host=values.get("host") or "127.0.0.1",
            port=port,
            token=values.get("token") or None,
            demo=bool(values.get("demo")),
            memory_budget_gb=values.get("memory_budget"),
            max_body_bytes=int(values.get("max_body_mb") or 100) * 1024 * 1024,
            webhook_allow=tuple(h.strip().lower() for h in values.get("webhook_allow") or ()
                                if h.strip()),
            download_allow=tuple(h.strip().lower() for h in values.get("download_allow") or ()
                                 if h.strip()),
            extra=extra,
            workers=_workers(values.get("workers"), values.get("ray_address")),
            ray_address=values.get("ray_address") or None,
            **roots,
            **paths,
        )


def _workers(count: int | None, address: str | None) -> int:
    """--workers N (1-64); joining a cluster without it means one worker."""
    if count is None:
        return 1 if address else 0
    if not 1 <= count <= 64:
        raise SystemExit(f"error: --workers {count} is out of range; pass 1-64")
    return count


def build_arg_parser() -> argparse.ArgumentParser:
    """The shared argument parser; the headless runner may add its own arguments to it."""
    p = argparse.ArgumentParser(description="Cascade Studio: node editor and ComfyUI-compatible "
                                            "server for Stable Cascade")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1; env CASCADE_HOST)")
    p.add_argument("--port", default=None, help="port (default 8188; env CASCADE_PORT)")
    p.add_argument("--weights", default=None, help="model folder (default weights/; env CASCADE_WEIGHTS)")
    p.add_argument("--output", default=None, help="output folder (default output/; env CASCADE_OUTPUT)")
    p.add_argument("--input", default=None, help="input/upload folder (default input/)")
    p.add_argument("--temp", default=None, help="temporary image folder (default temp/)")
    p.add_argument("--data", default=None, help="database folder (default user/)")
    p.add_argument("--token", default=None,
                   help="require this token (Bearer header, ?token= or cookie); env CASCADE_TOKEN")
    p.add_argument("--max-body-mb", type=int, default=None, help="request body limit in MiB (100)")
    p.add_argument("--demo", action="store_true", help="use tiny random demo weights")
    p.add_argument("--comfy-models", action="append", default=None, metavar="DIR",
                   help="also read an existing ComfyUI install's models folder (or the install holding "
                        "models/), read-only (repeatable)")
    p.add_argument("--extra-model-paths", action="append", default=None, metavar="FILE",
                   help="also read the folders of a ComfyUI extra_model_paths.yaml, read-only (repeatable)")
    p.add_argument("--no-hf-cache", action="store_true",
                   help="do not list the Stable Cascade repos found in the Hugging Face cache "
                        "(HF_HUB_CACHE or HF_HOME/hub)")
    p.add_argument("--memory-budget", type=float, default=None, help="model memory budget in GiB (default 40%% of RAM on CPU, 80%% of the GPU)")
    p.add_argument("--webhook-allow", action="append", default=None, metavar="HOST[:PORT]",
                   help="let prompts name a webhook (extra_data.webhook) on this host "
                        "(repeatable); without it no prompt may ask for one")
    p.add_argument("--download-allow", action="append", default=None, metavar="HOST[:PORT]",
                   help="let the API download pasted links from this host too (repeatable); by default "
                        "only the Hugging Face hub's, so a request cannot make the server fetch other addresses")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run jobs on N Ray workers (a local cluster bound to 127.0.0.1; needs "
                        "requirements-ray.txt); default: one worker inside the server, no Ray")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="run jobs on an existing Ray cluster (see docs/scale-out.md for its security)")
    # The headless runner (cli.py) shares this parser, so `server.py --run` and `cli.py` agree.
    p.add_argument("--run", default=None, metavar="WORKFLOW.json",
                   help="run this workflow headless (no server) and write its images")
    p.add_argument("--set", action="append", default=None, metavar="NODE.INPUT=VALUE",
                   help="with --run: override an input, e.g. 8.seed=42 (repeatable)")
    return p
