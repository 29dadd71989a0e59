"""CLIP ViT-bigG/14 text tower through transformers, returning what Stable Cascade consumes (spec §2)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from .prompt_weights import Token, chunk_groups, token_groups, truncate_groups
from .tokenizer import BOS_ID, EOS_ID, MAX_LENGTH, clean_text, clip_tokenizer, tokenize

LONG_PROMPTS = ("truncate", "chunk")


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
        out = self.clip.text_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        # The projection row by row: a matmul of one row and one of several round differently (gemv vs
        # gemm), and a prompt batched with its negative (nodes/text_batch.py) must pool as it does alone.
        pooled = out.pooler_output
        embeds = torch.cat([self.clip.text_projection(pooled[i:i + 1]) for i in range(pooled.shape[0])])
        return out.hidden_states[-1], embeds[:, None]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (hidden [B,77,H], pooled [B,1,P]) with the tokenizer's attention mask applied."""
        batch = tokenize(self.tokenizer, list(texts))
        device = self.clip.text_model.embeddings.token_embedding.weight.device
        return self(batch["input_ids"].to(device), batch["attention_mask"].to(device))

    @torch.no_grad()
    def encode_chunks(self, chunks: list[list[Token]]) -> tuple[torch.Tensor, torch.Tensor]:
        """77-token chunks of (id, weight) -> (hidden float32 [1, 77·k, H], pooled float32 [1, P]).

        Each chunk is encoded alone (attention mask: up to and including its first end token); hidden
        states are concatenated along the sequence and pooled comes from the first chunk. Where any
        weight differs from 1, the empty prompt (start, end, end-padding) is encoded too and a weighted
        token's state becomes empty + (h - empty)·w at the same position; pooled is not weighted
        (ComfyUI's rule). With all weights 1 the empty prompt is not encoded at all.
        """
        weights = torch.tensor([[w for _, w in c] for c in chunks], dtype=torch.float32)
        ids = [[t for t, _ in c] for c in chunks]
        weighted = bool((weights != 1.0).any())
        if weighted:
            ids.append([BOS_ID] + [EOS_ID] * (MAX_LENGTH - 1))
        device = self.clip.text_model.embeddings.token_embedding.weight.device
        ids_t = torch.tensor(ids, dtype=torch.long)
        first_end = (ids_t == EOS_ID).int().argmax(dim=1, keepdim=True)
        mask = (torch.arange(ids_t.shape[1])[None] <= first_end).long()
        hidden, pooled = self(ids_t.to(device), mask.to(device))
        hidden, pooled = hidden.float().cpu(), pooled[:, 0].float().cpu()
        k = len(chunks)
        out = hidden[:k]
        if weighted:
            empty = hidden[k:k + 1]
            w = weights[..., None]
            out = torch.where(w != 1.0, (out - empty) * w + empty, out)
        return out.reshape(1, k * out.shape[1], out.shape[2]), pooled[0:1]

    def encode_prompt(self, text: str, long_prompts: str = "chunk", emphasis: bool = True,
                      clean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A prompt with ComfyUI's syntax -> (hidden float32 [1, 77·k, H], pooled float32 [1, P]).

        long_prompts "chunk" (k = ceil of the chunked length) or "truncate" (k = 1, first 75 tokens);
        emphasis reads `(words:1.2)`, see models/prompt_weights.py. clean applies CLIP's text clean-up
        (HTML unescape, whitespace collapse) to each segment, as our own tokenize() does; ComfyUI does not.
        Raises ValueError for an unknown long_prompts value or a non-finite weight.
        """
        if long_prompts not in LONG_PROMPTS:
            raise ValueError(f"long_prompts must be one of {LONG_PROMPTS}, got {long_prompts!r}")
        tok = self.tokenizer

        def encode_text(piece: str) -> list[int]:
            return tok(clean_text(piece) if clean else piece, add_special_tokens=False, verbose=False)["input_ids"]

        groups = token_groups(encode_text, text, emphasis)
        chunks = chunk_groups(groups) if long_prompts == "chunk" else truncate_groups(groups)
        return self.encode_chunks(chunks)
