"""Tiny random (non-zero) demo checkpoints of every network, written in the real file formats.

They let the app, the tests and a newcomer without the real 20 GB of weights run the whole pipeline
end to end in seconds. Images made with them are noise-like, but every stage runs for real.
`python -m models.demo DIR` writes them into DIR's weight subfolders (never over existing files), plus
ComfyUI-named copies (all-in-one checkpoints, Stage A, text encoder) in ComfyUI's folders, so ComfyUI's
example workflows run on demo weights too; those never shadow a file of the same name a user already has.
"""
from __future__ import annotations

import functools

import math
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from models.loading.networks import network_spec

SEED = 20240215  # fixed so every checkout gets byte-identical demo files
# (kind, subfolder, file name, saved dtype): C/B mirror the recommended *_bf16 files.
DEMO_FILES = (
    ("stage_c", "stage_c", "demo_stage_c.safetensors", torch.bfloat16),
    ("stage_b", "stage_b", "demo_stage_b.safetensors", torch.bfloat16),
    ("stage_a", "stage_a", "demo_stage_a.safetensors", torch.float32),
    ("effnet", "effnet", "demo_effnet_encoder.safetensors", torch.float32),
    ("previewer", "previewer", "demo_previewer.safetensors", torch.float32),
    ("text_encoder", "text_encoder", "demo_text_encoder.safetensors", torch.float32),
)
DEMO_LORA = ("loras", "demo_stage_c_lora.safetensors")
LORA_RANK = 4
# ComfyUI's names: the all-in-one files its Stable Cascade examples load (CheckpointLoaderSimple), and the
# split files ComfyUI users load with VAELoader / CLIPLoader. (subfolders ComfyUI reads for the folder key,
# the first one written to; name; parts) where parts are (key prefix, kind) in ComfyUI's layout (q/k/v split,
# CLIP-G under `clip_g.`). The subfolders mirror runtime/comfy_folders.py COMFY_FOLDERS.
COMFY_DEMO_FILES = (
    (("checkpoints",), "stable_cascade_stage_c.safetensors",
     (("model.diffusion_model.", "stage_c"), ("text_encoder.", "text_encoder"), ("vae.encoder.", "effnet"),
      ("vae.previewer.", "previewer"), ("clip_l_vision.", "clip_vision"))),
    (("checkpoints",), "stable_cascade_stage_b.safetensors",
     (("model.diffusion_model.", "stage_b"), ("vae.", "stage_a"), ("text_encoder.", "text_encoder"))),
    (("vae",), "stage_a.safetensors", (("", "stage_a"),)),
    (("text_encoders", "clip"), "model.safetensors", (("", "text_encoder"),)),
    (("clip_vision",), "demo_clip_vision_l14.safetensors", (("", "clip_vision"),)),
    (("controlnet",), "demo_canny.safetensors", (("", "controlnet_canny"),)),
    (("controlnet",), "demo_inpainting.safetensors", (("", "controlnet_inpainting"),)),
    (("controlnet",), "demo_super_resolution.safetensors", (("", "controlnet_super_resolution"),)),
)
# Image variation and ControlNet demo networks: (state name, kind, preset). Drawn from a seed of their own,
# so adding them left every earlier demo file byte-identical.
EXTRA_DEMO_STATES = (
    ("clip_vision", "clip_vision", "tiny"),
    ("controlnet_canny", "controlnet", "tiny_canny"),
    ("controlnet_inpainting", "controlnet", "tiny_inpainting"),
    ("controlnet_super_resolution", "controlnet", "tiny_super_resolution"),
)
EXTRA_SEED = SEED + 1


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrite every float tensor with fan-in scaled noise: non-zero, yet numerically tame."""
    norms = (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)
    with torch.no_grad():
        for module in model.modules():
            is_norm = isinstance(module, norms)
            for name, t in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
                if not t.is_floating_point():
                    continue
                noise = torch.randn(t.shape, generator=gen)
                if name == "running_var":
                    value = 0.5 + noise.abs().clamp(max=2.0) * 0.5
                elif name == "running_mean":
                    value = noise * 0.1
                elif is_norm and name == "weight":
                    value = 1.0 + noise * 0.1
                elif t.dim() >= 2:
                    value = noise / math.sqrt(max(t[0].numel(), 1))
                else:
                    value = noise * 0.05
                t.copy_(value)


def _demo_state(kind: str, gen: torch.Generator, dtype: torch.dtype, preset: str = "tiny") -> dict[str, torch.Tensor]:
    """A tiny model's state dict in the file's key names (transformers names for the text encoder)."""
    spec = network_spec(kind)
    model = spec.build(spec.presets[preset])
    randomise(model, gen)
    n = len(spec.key_prefix)
    return {k[n:]: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}


def _demo_lora(stage_c: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A kohya-style Stage C LoRA over every attention layer's q/k/v and output projection."""
    out: dict[str, torch.Tensor] = {}
    for key, w in stage_c.items():
        if not key.endswith(".attention.attn.in_proj_weight"):
            continue
        base = key[: -len(".in_proj_weight")]
        c = w.shape[1]
        for part in ("to_q", "to_k", "to_v", "out_proj"):
            name = "lora_prior_unet_" + f"{base}.{part}".replace(".", "_")
            out[f"{name}.lora_down.weight"] = torch.randn(LORA_RANK, c, generator=gen) / math.sqrt(c)
            out[f"{name}.lora_up.weight"] = torch.randn(c, LORA_RANK, generator=gen) / math.sqrt(LORA_RANK)
            out[f"{name}.alpha"] = torch.tensor(float(LORA_RANK))
    return out


def _demo_states() -> tuple[dict[str, dict[str, torch.Tensor]], torch.Generator]:
    """Every demo network's state, drawn in DEMO_FILES order from SEED (so each file's values never depend on
    which files are already present), and a fresh generator positioned for the LoRA."""
    states, position = _drawn()
    gen = torch.Generator()
    gen.set_state(position)
    return states, gen


@functools.lru_cache(maxsize=1)
def _drawn() -> tuple[dict[str, dict[str, torch.Tensor]], torch.Tensor]:
    """Drawn once a process (seconds on CPU): our demo files and the ComfyUI-named ones share it."""
    gen = torch.Generator().manual_seed(SEED)
    return {kind: _demo_state(kind, gen, dtype) for kind, _, _, dtype in DEMO_FILES}, gen.get_state()


@functools.lru_cache(maxsize=1)
def _extra_states() -> dict[str, dict[str, torch.Tensor]]:
    """The CLIP vision and ControlNet demo states (float32), drawn in EXTRA_DEMO_STATES order."""
    gen = torch.Generator().manual_seed(EXTRA_SEED)
    return {name: _demo_state(kind, gen, torch.float32, preset) for name, kind, preset in EXTRA_DEMO_STATES}


def write_demo_weights(weights_dir: str | Path) -> list[Path]:
    """Write any missing demo_*.safetensors into weights_dir's subfolders; return all demo file paths."""
    root = Path(weights_dir)
    states, gen = _demo_states()
    paths = [_write(root / folder / name, states[kind], {"demo": f"tiny random {kind} weights"})
             for kind, folder, name, _ in DEMO_FILES]
    lora = _demo_lora(states["stage_c"], gen)
    paths.append(_write(root / DEMO_LORA[0] / DEMO_LORA[1], lora, {"demo": "tiny random Stage C LoRA (kohya names)"}))
    return paths


def comfy_layout(kind: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A network's file state in ComfyUI's checkpoint layout: Stage C/B attention q/k/v split into
    `attn.to_q/to_k/to_v`; the text encoder as CLIP-G (`clip_g.transformer.*`, projection [in, out])."""
    if kind in ("stage_c", "stage_b"):
        out = {}
        for k, v in state.items():
            if ".attention.attn.in_proj_" in k:
                base, what = k.split(".in_proj_")
                for part, chunk in zip(("to_q", "to_k", "to_v"), v.chunk(3, dim=0)):
                    out[f"{base}.{part}.{what}"] = chunk.contiguous()
            else:
                out[k] = v
        return out
    if kind == "text_encoder":
        out = {f"clip_g.transformer.{k}": v for k, v in state.items() if k != "text_projection.weight"}
        out["clip_g.text_projection"] = state["text_projection.weight"].t().contiguous()
        out["clip_g.logit_scale"] = torch.tensor(math.log(100.0))
        return out
    return state


def _comfy_taken(root: Path, subs: tuple[str, ...], name: str) -> bool:
    """True when a file of that name already sits in any subfolder ComfyUI reads for its folder key."""
    return any((root / sub / name).exists() for sub in subs)


def comfy_demo_missing(weights_dir: str | Path) -> bool:
    """True when some ComfyUI-named demo file could still be written (its name is free in its folder key)."""
    root = Path(weights_dir)
    return any(not _comfy_taken(root, subs, name) for subs, name, _ in COMFY_DEMO_FILES)


def write_comfy_demo_weights(weights_dir: str | Path) -> list[Path]:
    """Write the ComfyUI-named demo files whose names are free; return the paths written.

    Their parts hold exactly the tensors of the demo_* files (same seed), so either loads the same network.
    """
    root = Path(weights_dir)
    todo = [f for f in COMFY_DEMO_FILES if not _comfy_taken(root, f[0], f[1])]
    if not todo:
        return []
    states = {**_demo_states()[0], **_extra_states()}
    written = []
    for subs, name, parts in todo:
        state = {prefix + k: v for prefix, kind in parts for k, v in comfy_layout(kind, states[kind]).items()}
        what = " + ".join(kind for _, kind in parts)
        written.append(_write(root / subs[0] / name, state, {"demo": f"tiny random {what} weights (ComfyUI layout)"}))
    return written


DEMO_INPUT = "example.png"  # what the shipped example workflows and ComfyUI's image_to_image example load


def write_demo_input(input_dir: str | Path, size: int = 512) -> Path:
    """A synthetic input image (`example.png`) unless one is there: a sky gradient, a sun, a bottle shape.

    Edges for Canny, flat regions for inpainting, detail for super-resolution; drawn, so nothing is downloaded.
    """
    from PIL import Image, ImageDraw

    path = Path(input_dir) / DEMO_INPUT
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    sky = torch.linspace(0, 1, size).view(size, 1, 1) * torch.tensor([-90.0, -40.0, 20.0]) + torch.tensor([120.0, 170.0, 235.0])
    image = Image.fromarray(sky.expand(size, size, 3).round().to(torch.uint8).numpy(), "RGB")
    draw = ImageDraw.Draw(image)
    s = size / 512
    draw.ellipse([360 * s, 60 * s, 450 * s, 150 * s], fill=(250, 200, 80))
    draw.rectangle([0, 400 * s, size, size], fill=(60, 120, 60))
    draw.rounded_rectangle([200 * s, 180 * s, 300 * s, 440 * s], radius=int(30 * s), fill=(120, 200, 220),
                           outline=(30, 60, 90), width=max(1, int(6 * s)))
    draw.rectangle([230 * s, 130 * s, 270 * s, 185 * s], fill=(30, 60, 90))
    tmp = path.with_suffix(".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def _write(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Save atomically unless the file already exists (a half-written file never shadows a good one)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m models.demo DIR`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m models.demo WEIGHTS_DIR", file=sys.stderr)
        return 2
    for p in [*write_demo_weights(argv[0]), *write_comfy_demo_weights(argv[0])]:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
