"""CLIP ViT-bigG/14 text tower through transformers, returning what Stable Cascade consumes (spec §2)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from .tokenizer import BOS_ID, EOS_ID, MAX_LENGTH, clip_tokenizer, tokenize


@dataclass(frozen=True)
class TextEncoderConfig:
    """CLIPTextConfig values; the defaults are the bigG text tower used by Stable Cascade."""
    vocab_size: int = 49408
    hidden_size: int = 1280
    intermediate_size: int = 5120
    projection_dim: int = 1280
    num_hidden_layers: int = 32
    num_attention_heads: int = 20
    max_position_embeddings: int = MAX_LENGTH
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5

    def hf_config(self) -> CLIPTextConfig:
        """The transformers config (sdpa attention, CLIP special token ids)."""
        cfg = CLIPTextConfig(**asdict(self), bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=1,
                             attention_dropout=0.0, dropout=0.0)
        cfg._attn_implementation = "sdpa"
        return cfg


TEXT_ENCODER_PRESETS: dict[str, TextEncoderConfig] = {
    "bigg": TextEncoderConfig(),
    # Full vocabulary so real prompts tokenise; widths match the tiny Stage C/B presets (32).
    "tiny": TextEncoderConfig(hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2,
                              num_attention_heads=2),
}


class TextEncoder(nn.Module):
    """Wraps CLIPTextModelWithProjection as `.clip` (state-dict keys `clip.text_model...`)."""

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig()):
        super().__init__()
        self.config = config
        self.clip = CLIPTextModelWithProjection(config.hf_config())
        self._tokenizer = None  # built on first use; it holds no weights

    @property
    def tokenizer(self):
        """The offline CLIP tokenizer (built once per encoder)."""
        if self._tokenizer is None:
            self._tokenizer = clip_tokenizer()
        return self._tokenizer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids/mask [B,77] -> (last hidden state before final norm [B,77,H], text_embeds [B,1,P])."""
        out = self.clip(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[-1], out.text_embeds[:, None]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (hidden [B,77,H], pooled [B,1,P]) with the tokenizer's attention mask applied."""
        batch = tokenize(self.tokenizer, list(texts))
        device = self.clip.text_model.embeddings.token_embedding.weight.device
        return self(batch["input_ids"].to(device), batch["attention_mask"].to(device))
