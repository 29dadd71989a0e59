"""Memory admission: refuse at validation a job whose activations cannot fit, before the kernel kills us.

Env.admit(prompt) -> {node_id: {input_name: message}} (engine hook, run by validate_prompt).
Sizes validation cannot know (an init image, an image to encode, a latent from another node) are
checked by the nodes themselves just before they run, with the same estimate (``check_run``).

The estimate, per model-running node (StageCSampler, StageBSampler, StageADecode; batch B, network
items n = 2B for the batched cond+uncond pass, s = bytes per element of the model's dtype):

* UNet stages (Stage C, Stage B). Level i has c_i channels on P_i latent positions (P_0 = h*w / patch²,
  /4 per down level that changes resolution). In no-grad inference, what is alive at the peak is
  the skips of every level plus the largest transient of one block:
    skips  = sum_i 2 * c_i * P_i                                (the down pass keeps each level's output)
    conv   = K_CONV * 4 * c_i * P_i                              (ResBlock: 4c-wide MLP, GELU, GRN copies)
    attn   = 2 * heads_i * (P_i + cond_tokens)²                  (scores + softmax, math attention path)
    peak   = n * s * (skips + max_i max(conv_i, attn_i))
  K_CONV = 8 covers the block's 4c-wide hidden, its activation and GRN copies, and the conditioning
  mappers' 4c-wide maps at level 0 (Stage B's CondMapper).
* Stage A decode: the H/2 level's MixingResBlock is 4 * c_hidden/2 wide on (2h)(2w) positions:
    peak = B * s * K_A * 4 * (c_hidden/2) * 4hw,  K_A = 2,  plus the image (B * 3 * 16hw * 4 bytes * 6 copies).
  Decoded in tiles (models/stage_a_tiles.py), hw in the first term is one piece's (core and halos); the
  image term stays whole.
* The sampler's own float32 state (x, x0, eps, noise, both CFG halves): 10 * n * C * h * w * 4 bytes.
* OVERHEAD = 256 MiB per job: what a first call costs regardless of size (library workspaces, weight
  repacking); measured 58 MiB for a 32² Stage B latent, where the per-pixel terms give 11 MiB.

The limit is the device's memory (the CUDA card, or the machine's RAM) less what models may hold:
the model budget (models stay resident up to it, see runtime/residency.py), or less when known (at
validation the prompt's own weight files, at run time what is resident), and at least a fifth of
the device.
Measured with bench/activation_peaks.py on the development box (CPU, rise of the RSS high-water
mark over one call; noisy, the allocator reuses freed pages), against the estimate:
Stage C lite bf16, cond+uncond: 24² latent 41 MiB (est. 378), 48² 260 MiB (est. 1358);
Stage B lite bf16: 32² latent 58 MiB (est. 267), 64² 26 MiB (est. 302);
Stage A fp32 decode: 64² latent 3 MiB (est. 357), 128² 132 MiB (est. 658).
tests/test_nodes_admission.py keeps these as data and checks the estimate stays above them. For
the official 1024² batch 4 with the lite models the largest job is Stage A's decode at ~6.5 GiB,
against 14.4 GiB on a 24 GiB machine even with the whole auto budget (40%) reserved: admitted;
on a 24 GiB card (auto budget 80%) the lite files' ~5 GiB leave ~19 GiB: admitted. 8192² batch 64 needs ~40 TiB.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from models.sampling import stage_b_grid, stage_c_hw

GIB = 1 << 30
K_CONV, K_A, IMAGE_COPIES = 8, 2, 6
OVERHEAD = 256 << 20
_LOADERS = {"stage_c": "LoadStageC", "stage_b": "LoadStageB", "stage_a": "LoadStageA"}


@dataclass(frozen=True)
class Job:
    """What one model-running node will do: which network, output pixel size, batch."""

    kind: str
    config: Any
    itemsize: int
    width: int
    height: int
    batch: int
    guided: bool
    text_tokens: int = 77  # Stage C's text sequence: 77 per chunk of a chunked prompt (77·k)
    tile: int = 0  # Stage A decoded in tiles: latent pixels per side of one piece (0: untiled)


def _unet_bytes(cfg: Any, positions: int, items: int, itemsize: int, cond_tokens: int,
                downscales: list[bool]) -> int:
    skips = conv = attn = 0
    p = positions
    for i, c in enumerate(cfg.c_hidden):
        if i > 0 and downscales[i - 1]:
            p = max(1, p // 4)
        skips += 2 * c * p
        conv = max(conv, K_CONV * 4 * c * p)
        if "A" in cfg.level_config[i]:
            attn = max(attn, 2 * cfg.nhead[i] * (p + cond_tokens) ** 2)
    return items * itemsize * (skips + max(conv, attn))


def job_bytes(job: Job) -> int:
    """Estimated peak activation bytes of one job (see the module docstring for the derivation)."""
    return OVERHEAD + _activations(job)


def _activations(job: Job) -> int:
    items = job.batch * (2 if job.guided else 1)
    cfg = job.config
    if job.kind == "stage_c":
        h, w = stage_c_hw(job.width, job.height)
        state = 10 * items * 16 * h * w * 4
        levels = len(cfg.c_hidden)
        return state + _unet_bytes(cfg, h * w, items, job.itemsize, job.text_tokens + 8,
                                   [bool(x) for x in (list(cfg.switch_level) + [False] * levels)[:levels]])
    h, w = stage_b_grid(job.width, job.height)
    if job.kind == "stage_b":
        state = 10 * items * 4 * h * w * 4
        patch = cfg.patch_size
        return state + _unet_bytes(cfg, (h // patch) * (w // patch), items, job.itemsize, cfg.c_clip_seq,
                                   [True] * len(cfg.c_hidden))
    # Tiled, the network runs one piece at a time; the whole image (and its copies) is still made.
    area = min(h, job.tile) * min(w, job.tile) if job.tile else h * w
    block = K_A * 4 * (cfg.c_hidden // 2) * 4 * area * job.itemsize
    image = 3 * 16 * h * w * 4 * IMAGE_COPIES
    return job.batch * (block + image)


def device_total(device: str) -> int:
    """Bytes of memory on the device: the CUDA card's, else the machine's RAM."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * GIB


def limit_bytes(device: str, budget_bytes: int, models_bytes: int | None = None) -> int:
    """Memory left for activations: the device's total less what models may hold (at least a fifth).

    Models hold at most the budget, and no more than `models_bytes` when the caller knows what the
    job's models take (the prompt's weight files, or what is resident at run time): on a 24 GiB card
    the auto budget is 80 %, but the lite models of the official workflow take ~5 GiB, and reserving
    the whole budget would refuse its 1024² batch 4.
    """
    total = device_total(device)
    reserve = budget_bytes if models_bytes is None else min(budget_bytes, models_bytes)
    return max(total - reserve, total // 5)


def prompt_models_bytes(env: Any, prompt: dict) -> int | None:
    """In-memory bytes of every weights file the prompt's loader nodes name (None if any is unknown).

    A node class tells what it loads with ``weights_used(env, inputs) -> [(path, dtype)]`` (None when it
    cannot tell, e.g. a missing file); the engine hands the class in each node's ``"class"``.
    """
    from runtime.residency import ModelManager

    seen: dict[str, int] = {}  # an all-in-one file named by several loaders counts once (its whole size)
    for node in prompt.values():
        used = getattr(node.get("class") if isinstance(node, dict) else None, "weights_used", None)
        if not callable(used):
            continue
        try:
            files = used(env, node.get("inputs") or {})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if files is None:
            return None
        for path, dtype, *quantize in files:  # (path, dtype) or (path, dtype, quantize mode)
            seen[str(path)] = max(seen.get(str(path), 0), ModelManager._estimate(path, dtype, *quantize))
    return sum(seen.values())


def largest_square(job: Job, limit: int) -> int:
    """The largest side (multiple of 64, at least 0) whose batch-1 job fits `limit`."""
    lo, hi = 0, 8192 // 64
    while lo < hi:
        mid = (lo + hi + 1) // 2
        trial = dataclasses.replace(job, width=mid * 64, height=mid * 64, batch=1)
        if job_bytes(trial) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo * 64


def message(job: Job, needed: int, limit: int) -> str:
    side = largest_square(job, limit)
    fits = (f"at batch 1 the largest square size that fits is {side}×{side}" if side
            else "even 64×64 at batch 1 does not fit")
    return (f"{job.width}×{job.height} at batch {job.batch} needs ~{math.ceil(needed / GIB)} GiB in "
            f"{job.kind.replace('_', ' ').title()}, limit {limit / GIB:.1f} GiB (device memory less what "
            f"the models hold); {fits}")


class MemoryRefused(ValueError):
    """A node's job cannot fit the memory limit (raised before anything is allocated)."""


def check_run(env: Any, kind: str, module: Any, width: int, height: int, batch: int, guided: bool,
              text_tokens: int = 77, tile: int = 0) -> None:
    """Run-time admission for what validation could not size (an init image, an encoded image, linked
    widgets): the same estimate and limit as ``admit``; raises MemoryRefused with the same message.

    `module` is the node's network (resident or not: only its config and dtype are read); width and
    height are the image's pixels; text_tokens is the longer prompt's sequence length (77·k for a prompt
    chunked into k chunks); tile: a tiled Stage A decode's piece side in latent pixels (0: untiled). An
    env without a model manager (stub envs) is not checked.
    """
    models = getattr(env, "models", None)
    config = getattr(module, "config", None)
    if models is None or config is None:
        return
    param = next((p for p in module.parameters() if p.is_floating_point()), None)
    itemsize = param.element_size() if param is not None else 4
    job = Job(kind, config, itemsize, int(width), int(height), int(batch), bool(guided), int(text_tokens), int(tile))
    limit = limit_bytes(getattr(env, "device", "cpu"), models.budget_bytes, models.resident_bytes())
    needed = job_bytes(job)
    if needed > limit:
        raise MemoryRefused(message(job, needed, limit))


# -- reading the prompt ------------------------------------------------------------------------------
def _link(node: dict, name: str) -> str | None:
    value = (node.get("inputs") or {}).get(name)
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _int(node: dict, name: str, default: int | None = None) -> int | None:
    value = (node.get("inputs") or {}).get(name, default)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _upstream(prompt: dict, node_id: str | None, class_type: str, via: str) -> tuple[str, dict] | None:
    """Follow `via` links (through LoRA-like nodes with an input of that name) to a `class_type` node."""
    seen: set[str] = set()
    while node_id is not None and node_id not in seen and node_id in prompt:
        seen.add(node_id)
        node = prompt[node_id]
        if node.get("class_type") == class_type:
            return node_id, node
        node_id = _link(node, via)
    return None


def _preset_config(env: Any, kind: str, file: Any) -> Any:
    """The network config of a loader's file; the largest official one when it cannot be told."""
    from models.loading.networks import network_spec
    from runtime.comfy_folders import detected

    spec = network_spec(kind)
    try:
        path = env.weight_path(kind, file) if isinstance(file, str) else None
    except (OSError, ValueError):  # e.g. a NUL in the name: validation reports the file itself
        path = None
    # The loaders' cached detection (one header read per file and change); unreadable or
    # unknown means: assume the biggest, the loader reports the rest.
    preset = detected(path).preset(kind) if path is not None else None
    return spec.presets.get(preset or "full", spec.presets["full"])


def _model(env: Any, prompt: dict, node: dict, kind: str) -> tuple[Any, int] | None:
    found = _upstream(prompt, _link(node, kind), _LOADERS[kind], kind)
    if found is None:
        return None
    inputs = found[1].get("inputs") or {}
    try:  # the dtype the loader will use ('auto' follows the official per-stage dtypes)
        itemsize = env.resolve_dtype(kind, inputs.get("dtype", "auto")).itemsize
    except ValueError:  # a choice validation refuses anyway
        itemsize = 4
    return _preset_config(env, kind, inputs.get("file")), itemsize


def _size(prompt: dict, c_node: dict) -> tuple[int, int, int] | None:
    """(width, height, batch) a Stage C sampler will produce; None when an init image decides it."""
    if _link(c_node, "init") is not None:
        return None
    width, height, batch = _int(c_node, "width"), _int(c_node, "height"), _int(c_node, "batch_size", 1)
    return None if None in (width, height, batch) else (width, height, batch)


def jobs(env: Any, prompt: dict) -> list[tuple[str, str, Job]]:
    """(node_id, input to blame, Job) for every model-running node whose sizes are known at validation."""
    found = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        chain = {"StageCSampler": ("stage_c", None), "StageBSampler": ("stage_b", "stage_c_latent"),
                 "StageADecode": ("stage_a", "stage_b_latent")}.get(class_type)
        if chain is None:
            continue
        kind, via = chain
        c = (node_id, node) if via is None else None
        if class_type == "StageADecode":
            b = _upstream(prompt, _link(node, via), "StageBSampler", via)
            c = _upstream(prompt, _link(b[1], "stage_c_latent"), "StageCSampler", "init") if b else None
        elif class_type == "StageBSampler":
            c = _upstream(prompt, _link(node, via), "StageCSampler", "init")
        size = _size(prompt, c[1]) if c else None
        model = _model(env, prompt, node, kind)
        if size is None or model is None:
            continue
        cfg_scale = (node.get("inputs") or {}).get("cfg", 1.0)
        guided = not (isinstance(cfg_scale, (int, float)) and cfg_scale == 1)
        job = Job(kind, model[0], model[1], size[0], size[1], size[2], guided)
        if class_type == "StageADecode":
            job = dataclasses.replace(job, tile=_decode_tile(node, model[0], size))
        found.append((node_id, "width" if class_type == "StageCSampler" else via, job))
    return found


def decode_tile(mode: Any, config: Any, latent_hw: tuple[int, int]) -> int:
    """The piece side (latent pixels) Stage A Decode's `tiled` mode decodes a latent of [H, W] in, else 0.

    A linked or unknown mode counts as untiled (the larger estimate; validation names a bad choice)."""
    from models.stage_a_tiles import TILE_MODES, piece_side, should_tile

    if not isinstance(mode, str) or mode not in TILE_MODES or not should_tile(mode, latent_hw):
        return 0
    return piece_side(config)


def _decode_tile(node: dict, config: Any, size: tuple[int, int, int]) -> int:
    return decode_tile((node.get("inputs") or {}).get("tiled", "auto"), config, stage_b_grid(size[0], size[1]))


def admit(env: Any, prompt: dict) -> dict[str, dict[str, str]]:
    """{node_id: {input_name: message}} for every job that cannot fit the memory limit."""
    limit = limit_bytes(env.device, env.models.budget_bytes, prompt_models_bytes(env, prompt))
    problems: dict[str, dict[str, str]] = {}
    for node_id, blame, job in jobs(env, prompt):
        needed = job_bytes(job)
        if needed > limit:
            if job.batch > 1 and blame == "width":
                blame = "batch_size"
            problems.setdefault(node_id, {})[blame] = message(job, needed, limit)
    return problems
