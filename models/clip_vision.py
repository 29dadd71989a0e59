"""CLIP ViT-L/14 vision tower with projection (image variation's `clip_img`, spec §3.1 / §6).

Built on transformers' CLIPVisionModelWithProjection (held as `.clip`, so file keys `vision_model.*` and
`visual_projection.weight` load as they are). `preprocess` is ComfyUI's CLIPVisionEncode preprocessing.
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


def preprocess(image: torch.Tensor, size: int = 224, crop: str = "center") -> torch.Tensor:
    """ComfyUI's CLIP preprocessing: IMAGE [B,H,W,C] in [0,1] (C >= 3; alpha dropped) -> [B,3,size,size].

    crop "center": shortest side to `size` (bicubic, antialiased), centre crop; "none": the whole image
    stretched to size x size. Then quantised to 8 bit (as a saved image would be) and normalised with
    CLIP's mean/std. Raises ValueError for a wrong layout or crop name.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    if not torch.is_tensor(image) or image.dim() != 4 or image.shape[-1] < 3:
        raise ValueError(f"expected an IMAGE [B,H,W,C>=3], got {tuple(getattr(image, 'shape', ()))}")
    x = image[..., :3].float().movedim(-1, 1)
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
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


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
        """IMAGE [B,H,W,C] in [0,1] -> forward's outputs, after `preprocess` at the tower's image size."""
        return self(preprocess(image, self.config.image_size, crop))
