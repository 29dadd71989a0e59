"""Latent and VAE classes: StableCascade_EmptyLatentImage, StableCascade_StageC_VAEEncode, StableCascade_SuperResolutionControlnet, VAEDecode, VAEEncode."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
