"""Image classes: ImageScale, ImageScaleBy, EmptyImage, ImageInvert, ImageCompositeMasked, JoinImageWithAlpha, Canny, LoadImageMask, SaveImageWebsocket."""
from __future__ import annotations

from engine.schema import Node

NODES: dict[str, type[Node]] = {}
