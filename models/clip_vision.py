"""CLIP ViT-L/14 vision tower with projection (image variation's `clip_img`, spec §3.1 / §6).

Built on transformers' CLIPVisionModelWithProjection (held as `.clip`, so file keys `vision_model.*` and
`visual_projection.weight` load as they are). Two preprocessings (docs/image_variation.md): `preprocess_official`
(Stability's clip_preprocess, our nodes' default) and `preprocess` (ComfyUI's CLIPVisionEncode).
`image_tokens` turns (embeds, strength) pairs into Stage C's clip_img; `describe_tower` names other CLIP sizes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CROPS = ("center", "none")


@dataclass(frozen=True)
class ClipVisionConfig:
    """CLIPVisionConfig values; the defaults are openai/clip-vit-large-patch14's vision tower."""
    hidden_size: int = 1024
    intermediate_size: int = 4096
    projection_dim: int = 768
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 14
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    def hf_config(self) -> CLIPVisionConfig:
        """The transformers config (sdpa attention, no dropout)."""
        cfg = CLIPVisionConfig(**asdict(self), attention_dropout=0.0, dropout=0.0)
        cfg._attn_implementation = "sdpa"
        return cfg


CLIP_VISION_PRESETS: dict[str, ClipVisionConfig] = {
    "vit_l14": ClipVisionConfig(),
    # Test/demo size: same 224 input and patch 14 (so preprocessing is the real one), projection 768
    # (Stage C's c_clip_img), everything else small.
    "tiny": ClipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
}


def _check_image(image: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(image) or image.dim() != 4 or image.shape[-1] < 3:
        raise ValueError(f"expected an IMAGE [B,H,W,C>=3], got {tuple(getattr(image, 'shape', ()))}")
    return image[..., :3].movedim(-1, 1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess_official(image: torch.Tensor, size: int = 224, antialias: bool = True) -> torch.Tensor:
    """Stability's `clip_preprocess` (train/train_c.py): IMAGE [B,H,W,C] in [0,1] -> [B,3,size,size] float32.

    torchvision's Resize(size, BICUBIC) on a float tensor: the shorter side becomes `size`, the longer
    int(size * long / short) (truncated); no clamp, no 8-bit rounding (bicubic overshoot is kept). Then
    CenterCrop(size) (offsets round((d - size) / 2)) and CLIP's mean/std. `antialias` True is torchvision
    >= 0.17's default; 0.16 (the version their requirements name) resized tensors without it (Keys a=-0.75).
    Raises ValueError for a wrong layout.
    """
    x = _check_image(image).float()
    h, w = x.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    target = (size, new_long) if h <= w else (new_long, size)
    if target != (h, w):
        x = F.interpolate(x, size=target, mode="bicubic", align_corners=False, antialias=antialias)
    top, left = int(round((x.shape[-2] - size) / 2.0)), int(round((x.shape[-1] - size) / 2.0))
    return _normalise(x[:, :, top:top + size, left:left + size])


def preprocess(image: torch.Tensor, size: int = 224, crop: str = "center") -> torch.Tensor:
    """ComfyUI's CLIP preprocessing: IMAGE [B,H,W,C] in [0,1] (C >= 3; alpha dropped) -> [B,3,size,size].

    crop "center": shortest side to `size` (bicubic, antialiased), centre crop; "none": the whole image
    stretched to size x size. Then quantised to 8 bit (as a saved image would be) and normalised with
    CLIP's mean/std. Raises ValueError for a wrong layout or crop name.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    x = _check_image(image).float()
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        if crop == "center":
            scale = size / min(h, w)
            target = (round(scale * h), round(scale * w))
        else:
            target = (size, size)
        x = F.interpolate(x, size=target, mode="bicubic", antialias=True)
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    x = (x * 255.0).clamp(0, 255).round() / 255.0
    return _normalise(x)


class ClipVision(nn.Module):
    """Wraps CLIPVisionModelWithProjection as `.clip` (state-dict keys `clip.vision_model...`)."""

    def __init__(self, config: ClipVisionConfig = ClipVisionConfig()):
        super().__init__()
        self.config = config
        self.clip = CLIPVisionModelWithProjection(config.hf_config())

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B,3,S,S] normalised -> (image_embeds [B,P], last_hidden_state [B,T,H],
        penultimate hidden states [B,T,H]), all float32."""
        p = next(self.parameters())
        out = self.clip(pixel_values=pixel_values.to(device=p.device, dtype=p.dtype), output_hidden_states=True)
        return out.image_embeds.float(), out.last_hidden_state.float(), out.hidden_states[-2].float()

    @torch.no_grad()
    def encode(self, image: torch.Tensor, crop: str = "center") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """IMAGE [B,H,W,C] in [0,1] -> forward's outputs, after ComfyUI's `preprocess` at the tower's size."""
        return self(preprocess(image, self.config.image_size, crop))

    @torch.no_grad()
    def encode_official(self, image: torch.Tensor) -> torch.Tensor:
        """IMAGE [B,H,W,C] in [0,1] -> image_embeds [B,P] float32, after `preprocess_official`."""
        return self(preprocess_official(image, self.config.image_size))[0]


def image_tokens(pairs: list[tuple[torch.Tensor, float]], batch: int | None = None) -> torch.Tensor:
    """Stage C's clip_img from (tokens [b,n,P], strength) pairs: each times its strength, concatenated along
    the token axis -> [B, sum n, P] float32. b is 1 or the common batch B (batch-1 parts are repeated);
    `batch` forces B. Raises ValueError for no pairs, mismatched batches or widths.
    """
    if not pairs:
        raise ValueError("no image embeddings to stack")
    sizes = {t.shape[0] for t, _ in pairs} - {1}
    b = batch if batch is not None else (sizes.pop() if len(sizes) == 1 else 1)
    if sizes - {b} or len({t.shape[-1] for t, _ in pairs}) != 1 or any(t.dim() != 3 for t, _ in pairs):
        raise ValueError("image embeddings disagree: shapes " + ", ".join(str(tuple(t.shape)) for t, _ in pairs)
                         + (f" for batch {b}" if batch is not None else ""))
    return torch.cat([t.float().expand(b, -1, -1) * float(s) for t, s in pairs], dim=1)


# Known CLIP vision widths besides Stable Cascade's: width -> ViT size name (open_clip / OpenAI naming).
_WIDTH_NAMES = {768: "B", 1024: "L", 1280: "H", 1664: "bigG", 1792: "g"}


def describe_tower(infos: dict) -> str | None:
    """A known CLIP vision tower that Stable Cascade cannot use, named from canonical (transformers) key shapes
    ('a CLIP ViT-H/14 vision tower; Stable Cascade needs ViT-L/14'); None when nothing is recognised or it is
    Stable Cascade's own size (224 px ViT-L/14, 768-wide projection)."""
    def shape(key: str) -> tuple[int, ...] | None:
        info = infos.get(key)
        return tuple(info.shape) if info is not None else None

    patch = shape("vision_model.embeddings.patch_embedding.weight")
    if patch is None or len(patch) != 4:
        return None
    width, size = patch[0], patch[-1]
    positions = (shape("vision_model.embeddings.position_embedding.weight") or (0,))[0]
    proj = shape("visual_projection.weight")
    side = round((positions - 1) ** 0.5) * size if positions > 1 else 0
    name = _WIDTH_NAMES.get(width)
    if name is None:
        return None
    label = f"ViT-{name}/{size}" + (f"@{side}px" if side and side != 224 else "")
    if label == "ViT-L/14" and (proj is None or proj[0] == 768):
        return None
    extra = f" projecting to {proj[0]}" if label == "ViT-L/14" and proj else ""
    return f"a CLIP {label} vision tower{extra}; Stable Cascade needs ViT-L/14 (224 px, 768-wide image embeds)"
