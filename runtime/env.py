"""The application environment handed to every node: config, weights folder and model residency."""
from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runtime import allocator, catalogue, comfy_folders, hf_cache, model_roots, weights
from runtime.weights import KIND_FOLDERS
from runtime.residency import ModelManager

log = logging.getLogger("cascade.weights")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DTYPE_CHOICES = ("auto", "bf16", "fp32", "fp16")
# Stage C overflows in fp16 (its forward refuses it), so its loader never offers it.
_NO_FP16 = frozenset({"stage_c"})
# Spec §4.4: the generators run in bf16; Stage A, effnet and the previewer are small and run in fp32.
# The CLIP vision tower runs like the text tower; ControlNets run in fp32, as ComfyUI runs them (in the
# sampler's float32 latent dtype), and are small next to Stage C.
_AUTO_DTYPE = {"stage_c": "bf16", "stage_b": "bf16", "text_encoder": "bf16",
               "stage_a": "fp32", "effnet": "fp32", "previewer": "fp32",
               "clip_vision": "bf16", "controlnet": "fp32"}
# Where the hardware does bf16 natively (CUDA; a CPU with AVX512-BF16 or AMX), Stage A's auto is bf16, as
# diffusers runs it: its decode stays inside the error bound bench/components.py states (BF16_BOUND) and
# reports per run (1024² on the dev CPU: max abs 5e-4 of [0, 1], 1 % of 8-bit values off by one), and it is
# 1.7x faster than fp32 there (5.2 vs 8.9 s). fp32, the official dtype, stays a choice, and the default on
# CPUs that would only emulate bf16.
_AUTO_DTYPE_NATIVE_BF16 = {"stage_a": "bf16"}


def native_bf16(device: str) -> bool:
    """True where bf16 arithmetic is native: any CUDA device, or a CPU whose oneDNN has bf16 kernels."""
    if str(device).startswith("cuda"):
        return True
    if str(device) != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def dtype_choices(kind: str) -> tuple[str, ...]:
    """The dtype choices a loader of `kind` offers: only those its network can run in."""
    return tuple(c for c in DTYPE_CHOICES if not (c == "fp16" and kind in _NO_FP16))


def _load_module(path: Path, kind: str, dtype: torch.dtype, device: str) -> nn.Module:
    from models.loading import load  # imported lazily: the loading package is heavy and optional for tests

    return load(path, kind, dtype=dtype, device=device)


def _skeleton(path: Path, kind: str, dtype: torch.dtype) -> nn.Module | None:
    """The network for a file built on the meta device (no weights read), or None if not a known preset."""
    try:
        from models.loading import detect
        from models.loading.networks import build_on_meta, network_spec

        spec = network_spec(kind)
        preset = detect(path).component(kind).preset
        if preset is None or preset not in spec.presets:
            return None
        return build_on_meta(spec, spec.presets[preset]).to(dtype)
    except Exception:  # a skeleton is only an optimisation; the eager load reports real problems
        return None


def pick_device(config: Any) -> str:
    """Config's device (field, `extra["device"]` or $CASCADE_DEVICE), else CUDA when available, else CPU."""
    extra = getattr(config, "extra", None) or {}
    device = getattr(config, "device", None) or extra.get("device") or os.environ.get("CASCADE_DEVICE")
    if device:
        return str(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


class Env:
    """Config + weights folder + model manager; built once per server/CLI process as ``Env(config)``."""

    def __init__(self, config: Any, *, load_fn=None) -> None:
        self.config = config
        self.device = pick_device(config)
        self.weights_dir = Path(config.weights_dir)
        # Read-only folders beside ours: ComfyUI installs / extra_model_paths.yaml, and the hub cache.
        self.model_roots = model_roots.from_config(config)
        self.hf_cache = hf_cache.HFCache(getattr(config, "hf_cache_dir", None))
        budget_gb = getattr(config, "memory_budget_gb", None)
        budget = int(budget_gb * (1 << 30)) if budget_gb else None
        self.models = ModelManager(load_fn or _load_module, budget_bytes=budget, device=self.device,
                                   skeleton_fn=None if load_fn else _skeleton)
        if getattr(config, "demo", False):
            self.ensure_demo_weights()
            if getattr(config, "input_dir", None):  # the image the example workflows load
                from models.demo import write_demo_input

                write_demo_input(config.input_dir)
        # The server configures logging at start-up, so this is how `python server.py` tells a newcomer
        # what it found and which official files go where; tests and library use stay quiet.
        missing = weights.missing_official(self.weights_dir, self.held_elsewhere())
        log.log(logging.WARNING if missing and not getattr(config, "demo", False) else logging.INFO,
                "%s", self.weights_report())

    # -- weights folder ------------------------------------------------------------------------
    def ensure_demo_weights(self) -> list[Path]:
        """Write the tiny demo weights (ours and ComfyUI-named ones) into the weights folder unless present."""
        from models.demo import write_comfy_demo_weights, write_demo_weights

        written = []
        if not all(any(Path(n).name.startswith("demo_") for n in weights.list_folder(self.weights_dir, f))
                   for f in KIND_FOLDERS.values()):
            written += write_demo_weights(self.weights_dir)
        written += write_comfy_demo_weights(self.weights_dir)  # writes only names still free
        return written

    def weight_files(self, kind: str) -> list[str]:
        """Files offered by the loader of this kind (a kind or 'loras'): only files it can load, by their keys.

        A kind's own subfolder first (files whose keys hold that kind: junk and misplaced files are left out),
        then `sub/name` files from ComfyUI's model folders whose keys hold it (runtime/catalogue.py). Read on
        every call (headers cached per mtime/size), so new files appear without a restart.
        """
        if kind == weights.LORA_FOLDER:
            own = catalogue.loras(self.weights_dir)
            return own + [n for n in self.model_roots.comfy_files(kind) if n not in own]  # ComfyUI installs
        own = catalogue.loadable(self.weights_dir, kind)
        extra = self.model_roots.comfy_files(kind) if comfy_folders.folder_key(kind) else []  # controlnet, clip_vision
        return list(dict.fromkeys(own + extra + self.model_roots.offered(kind) + self.hf_cache.offered(kind)))

    def lora_files(self, stage: str) -> list[str]:
        """LoRA files a LoRA node patching `stage` ('stage_c' or 'stage_b') can apply: loras/ and the extra
        read-only model folders' loras, each judged by its keys (runtime/catalogue.py)."""
        own = catalogue.loras(self.weights_dir, stage)
        extra = []
        for name in self.model_roots.comfy_files(weights.LORA_FOLDER):
            path = self.model_roots.comfy_path(weights.LORA_FOLDER, name)
            lora = catalogue.describe(path).lora if path is not None else None
            if name not in own and lora is not None and lora.fits(stage):
                extra.append(name)
        return own + extra

    def weight_path(self, kind: str, name: str) -> Path | None:
        """Absolute path of a listed weights file, or None if missing, outside its folder (`..`, a symlink out)
        or, for a ComfyUI folder's file, holding no network of this kind."""
        path = comfy_folders.resolve_in(self.weights_dir / KIND_FOLDERS.get(kind, kind), name)
        if path is None and kind in KIND_FOLDERS:
            path = comfy_folders.offered_path(self.weights_dir, kind, name)
        if path is None and comfy_folders.folder_key(kind):  # loras, controlnet, clip_vision: by name
            path = self.model_roots.comfy_path(kind, name)
        if path is None and kind in KIND_FOLDERS:
            path = self.model_roots.offered_path(kind, name) or self.hf_cache.path(kind, name)
        return path

    def comfy_files(self, folder: str) -> list[str]:
        """Names in a ComfyUI model folder key (`checkpoints`, `diffusion_models`/`unet`, `text_encoders`/`clip`,
        `vae`, `clip_vision`, `controlnet`, `loras`), as ComfyUI's loaders list them. KeyError for other names."""
        names = comfy_folders.comfy_files(self.weights_dir, folder)
        more = self.model_roots.comfy_files(folder) + self.hf_cache.comfy_files(folder)
        return names + sorted(set(more) - set(names))

    def comfy_path(self, folder: str, name: str) -> Path | None:
        """Absolute path of a name `comfy_files(folder)` lists, or None (missing, unreadable, or outside)."""
        return (comfy_folders.comfy_path(self.weights_dir, folder, name)
                or self.model_roots.comfy_path(folder, name) or self.hf_cache.comfy_path(folder, name))

    def weights_listing(self) -> dict[str, list[str]]:
        """{subfolder: [files]} for the whole weights folder."""
        return weights.listing(self.weights_dir)

    def held_elsewhere(self) -> frozenset[str]:
        """Kinds a file in the read-only model roots or the HF cache holds (they count as present)."""
        return frozenset(k for k in KIND_FOLDERS if self.model_roots.offered(k) or self.hf_cache.offered(k))

    def weights_report(self) -> str:
        """Start-up text: what was found and which official files are missing (names, sizes, places)."""
        text = weights.guidance(self.weights_dir, demo=bool(getattr(self.config, "demo", False)),
                                held=self.held_elsewhere())
        extra = self.model_roots.report_lines() + self.hf_cache.report_lines()
        return "\n".join([text, "Extra model folders (read-only):", *extra]) if extra else text

    # -- models --------------------------------------------------------------------------------
    def resolve_dtype(self, kind: str, choice: str) -> torch.dtype:
        """Loader dtype choice → torch dtype ('auto' follows the official per-stage dtypes; Stage A bf16 where
        bf16 is native, see native_bf16).

        Raises ValueError for a choice this kind does not offer (validation refuses it first).
        """
        if choice not in dtype_choices(kind):
            raise ValueError(f"dtype {choice!r} is not available for {kind}; choose one of "
                             f"{', '.join(dtype_choices(kind))}")
        if choice == "auto":
            native = native_bf16(str(getattr(self, "device", "cpu")))
            choice = (_AUTO_DTYPE_NATIVE_BF16.get(kind) if native else None) or _AUTO_DTYPE[kind]
        return DTYPES[choice]

    def load_model(self, kind: str, name: str, dtype_choice: str = "auto", quantize: str = "none") -> nn.Module:
        """Load (or reuse the resident copy of) a weights file of `kind`; `quantize`: models/quant.py mode."""
        path = self.weight_path(kind, name)
        if path is None:
            raise FileNotFoundError(weights.missing_file_message(self.weights_dir, KIND_FOLDERS.get(kind, kind), name))
        return self.models.load(path, kind, self.resolve_dtype(kind, dtype_choice), quantize=quantize)

    def admit(self, prompt: dict) -> dict[str, dict[str, str]]:
        """Validation hook: {node_id: {input_name: message}} for jobs whose memory cannot fit.

        `prompt` is the coerced API prompt ({node_id: {"class_type", "inputs"}}, links as [id, index]).
        The estimate and its limit are explained in runtime/admission.py.
        """
        from runtime.admission import admit

        return admit(self, prompt)

    def after_job(self) -> None:
        """Executor hook at each job's end: the tuned heap keeps what a job freed (its activations,
        up to about twice its peak once fragmented); an idle process gives it back. The next job's
        first step faults it in again (runtime/allocator.py)."""
        allocator.release()

    def free_memory(self, unload_models: bool) -> None:
        """POST /free hook (called by the worker between jobs): unload every model when asked."""
        if unload_models:
            self.models.unload_all()
        gc.collect()
        allocator.release()  # the cache's tensors, dropped by the executor's reset, go back too
