"""Latent and VAE classes: StableCascade_EmptyLatentImage, StableCascade_StageC_VAEEncode,
StableCascade_SuperResolutionControlnet, VAEDecode, VAEEncode.

ComfyUI's VAE pre/post-processing for the two Stable Cascade VAEs (comfy/sd.py, ldm/cascade):
  * Stage A ("stage_a", downscale 4): pixels in [0, 1] go in as is and the raw (unscaled, unquantised)
    latent comes out; decode is the raw decoder output, NOT clamped (ComfyUI's process_output is the
    identity for Stage A; its SaveImage clips to [0, 255]). LATENTs hold this raw latent.
  * Stage C coder ("stage_c_coder", downscale 32): EfficientNet encode of [0, 1] pixels with ImageNet
    mean/std (ComfyUI maps to [-1, 1] and back before the same normalisation); decode = the Previewer,
    clamped to [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.schema import INT, Input, Node, Output, RunContext
from models.stage_a_tiles import decode_tiled, should_tile
from nodes.comfy import types as C
from runtime.admission import check_run, decode_tile
from runtime.model_use import using

MAX_RESOLUTION = 16384  # ComfyUI's nodes.MAX_RESOLUTION
MAX_LATENT_BYTES = 1 << 31  # an empty latent pair larger than this is refused (it could not be sampled)
DOWNSCALE = {"stage_a": 4, "stage_c_coder": 32}


def empty_latent_bytes(width: int, height: int, compression: int, batch: int) -> int:
    """float32 bytes of the two empty latents StableCascade_EmptyLatentImage makes."""
    return 4 * batch * (16 * (height // compression) * (width // compression) + 4 * (height // 4) * (width // 4))


class StableCascade_EmptyLatentImage(Node):
    """Zero latents for both stages: Stage C [B,16,H//c,W//c] and Stage B [B,4,H//4,W//4]."""

    TITLE = "StableCascade_EmptyLatentImage"
    CATEGORY = "latent/stable_cascade"
    INPUTS = (
        Input("width", INT, default=1024, min=256, max=MAX_RESOLUTION, step=8, tooltip="image width in pixels"),
        Input("height", INT, default=1024, min=256, max=MAX_RESOLUTION, step=8, tooltip="image height in pixels"),
        Input("compression", INT, default=42, min=4, max=128, step=1,
              tooltip="pixels per Stage C latent cell (42 is the official ratio; the grid is floor(size/c))"),
        Input("batch_size", INT, default=1, min=1, max=4096, tooltip="latents in the batch"),
    )
    OUTPUTS = (Output("stage_c", C.LATENT, "zero Stage C latent"), Output("stage_b", C.LATENT, "zero Stage B latent"))

    @classmethod
    def check(cls, env, inputs: dict) -> dict[str, str]:
        try:
            size = empty_latent_bytes(*(int(inputs[k]) for k in ("width", "height", "compression", "batch_size")))
        except (KeyError, TypeError, ValueError):
            return {}
        if size > MAX_LATENT_BYTES:
            return {"batch_size": f"these latents would take {size / (1 << 30):.1f} GiB (limit "
                                  f"{MAX_LATENT_BYTES >> 30} GiB); lower batch_size or the size"}
        return {}

    def run(self, ctx: RunContext, width: int, height: int, compression: int, batch_size: int = 1) -> tuple:
        problem = self.check(None, {"width": width, "height": height, "compression": compression,
                                    "batch_size": batch_size})
        if problem:
            raise ValueError(next(iter(problem.values())))
        c = torch.zeros(batch_size, 16, height // compression, width // compression)
        b = torch.zeros(batch_size, 4, height // 4, width // 4)
        return ({"samples": c}, {"samples": b})


def _image(image, what: str = "image") -> torch.Tensor:
    if not torch.is_tensor(image) or image.dim() != 4 or image.shape[-1] not in (3, 4):
        raise TypeError(f"{what}: expected an IMAGE [B,H,W,C], got {getattr(image, 'shape', type(image).__name__)}")
    return image.float()


def _vae(vae, *kinds: str) -> C.Vae:
    if not isinstance(vae, C.Vae) or vae.kind not in kinds:
        got = vae.kind if isinstance(vae, C.Vae) else type(vae).__name__
        raise ValueError(f"vae: this class needs a {' or '.join(kinds)} VAE, got {got}")
    return vae


def center_resize(bchw: torch.Tensor, width: int, height: int, mode: str = "bicubic") -> torch.Tensor:
    """ComfyUI common_upscale with crop 'center': cut the source to the target aspect, then interpolate."""
    old_h, old_w = bchw.shape[-2:]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    s = bchw.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    return F.interpolate(s, size=(height, width), mode=mode)


def crop_to_multiple(bhwc: torch.Tensor, ratio: int) -> torch.Tensor:
    """ComfyUI vae_encode_crop_pixels: centre-crop H and W down to multiples of the VAE's downscale."""
    for dim in (1, 2):
        size = bhwc.shape[dim]
        keep = size // ratio * ratio
        if keep == 0:
            raise ValueError(f"the image is {size} pixels along one side, smaller than this VAE's {ratio}")
        if keep != size:
            bhwc = bhwc.narrow(dim, (size % ratio) // 2, keep)
    return bhwc


def vae_encode(ctx: RunContext, vae: C.Vae, pixels: torch.Tensor) -> torch.Tensor:
    """ComfyUI VAE.encode: [B,H,W,C] in [0,1] → latent [B,c,H/r,W/r] float32 (CPU)."""
    pixels = crop_to_multiple(pixels[..., :3], DOWNSCALE[vae.kind]).movedim(-1, 1).contiguous()
    handle = vae.stage_a if vae.kind == "stage_a" else vae.effnet
    if handle is None:
        raise ValueError("vae: this Stage C VAE has no EfficientNet encoder (it was loaded from a file without one)")
    with using(ctx.env, handle) as net:
        param = next(net.parameters())
        x = pixels.to(device=param.device)
        z = net.encode_raw(x) if vae.kind == "stage_a" else net(x)
    return z.float().cpu()


def vae_decode(ctx: RunContext, vae: C.Vae, samples: torch.Tensor) -> torch.Tensor:
    """ComfyUI VAE.decode: latent → IMAGE [B,H,W,3] float32 (Stage A unclamped, Previewer in [0,1])."""
    handle = vae.stage_a if vae.kind == "stage_a" else vae.previewer
    if handle is None:
        raise ValueError("vae: this Stage C VAE has no Previewer to decode with")
    want = 4 if vae.kind == "stage_a" else 16
    if samples.shape[1] != want:
        raise ValueError(f"samples: a {vae.kind} VAE decodes {want}-channel latents, got {samples.shape[1]} "
                         "(Stage C latents decode with the Stage C VAE, Stage B latents with Stage A)")
    tiles = vae.kind == "stage_a" and should_tile("auto", tuple(samples.shape[-2:]))
    if vae.kind == "stage_a":  # as Stage A Decode: refused before allocating when it cannot fit
        hw = tuple(samples.shape[-2:])
        check_run(ctx.env, "stage_a", handle.module, 4 * hw[1], 4 * hw[0], samples.shape[0], False,
                  tile=decode_tile("auto", handle.module.config, hw))
    with using(ctx.env, handle) as net:
        param = next(net.parameters())
        z = samples.to(device=param.device, dtype=torch.float32)
        if vae.kind != "stage_a":
            rgb = net(z)
        elif tiles:  # above 2048², in tiles: flat memory, same image
            rgb = decode_tiled(net, z, fn=net.decode_raw)
        else:
            rgb = net.decode_raw(z)
    return rgb.float().cpu().movedim(1, -1).contiguous()


class VAEDecode(Node):
    TITLE = "VAE Decode"
    CATEGORY = "latent"
    INPUTS = (Input("samples", C.LATENT, tooltip="the latent to decode"),
              Input("vae", C.VAE, tooltip="Stage A for Stage B latents; the Stage C VAE previews Stage C latents"))
    OUTPUTS = (Output("IMAGE", C.IMAGE, "the decoded image"),)

    def run(self, ctx: RunContext, samples, vae) -> tuple:
        vae = _vae(vae, "stage_a", "stage_c_coder")
        return (vae_decode(ctx, vae, C.latent(samples, "samples")["samples"].float()),)


class VAEEncode(Node):
    TITLE = "VAE Encode"
    CATEGORY = "latent"
    INPUTS = (Input("pixels", C.IMAGE, tooltip="the image to encode"), Input("vae", C.VAE, tooltip="the VAE"))
    OUTPUTS = (Output("LATENT", C.LATENT, "the latent (pixels centre-cropped to the VAE's multiple first)"),)

    def run(self, ctx: RunContext, pixels, vae) -> tuple:
        vae = _vae(vae, "stage_a", "stage_c_coder")
        return ({"samples": vae_encode(ctx, vae, _image(pixels, "pixels"))},)


class StableCascade_StageC_VAEEncode(Node):
    """Image → Stage C latent (EfficientNet at (W//c)*32 x (H//c)*32) and a zero Stage B latent."""

    TITLE = "StableCascade_StageC_VAEEncode"
    CATEGORY = "latent/stable_cascade"
    INPUTS = (Input("image", C.IMAGE, tooltip="the image"), Input("vae", C.VAE, tooltip="the Stage C VAE"),
              Input("compression", INT, default=42, min=4, max=128, step=1, tooltip="pixels per Stage C cell"))
    OUTPUTS = (Output("stage_c", C.LATENT, "the image's Stage C latent"),
               Output("stage_b", C.LATENT, "zero Stage B latent [B,4,H//8*2,W//8*2]"))

    def run(self, ctx: RunContext, image, vae, compression: int) -> tuple:
        image, vae = _image(image), _vae(vae, "stage_c_coder")
        height, width = image.shape[1:3]
        out_w, out_h = width // compression * 32, height // compression * 32
        if out_w == 0 or out_h == 0:
            raise ValueError(f"image {width}x{height} is smaller than compression {compression}: no latent cell")
        resized = center_resize(image.movedim(-1, 1), out_w, out_h).movedim(1, -1)
        c = vae_encode(ctx, vae, resized)
        b = torch.zeros(c.shape[0], 4, height // 8 * 2, width // 8 * 2)
        return ({"samples": c}, {"samples": b})


class StableCascade_SuperResolutionControlnet(Node):
    """The super-resolution ControlNet's input (the image's EfficientNet features, as an IMAGE) and the
    zero latents of a 2x-upscaled output."""

    TITLE = "StableCascade_SuperResolutionControlnet"
    CATEGORY = "_for_testing/stable_cascade"
    INPUTS = (Input("image", C.IMAGE, tooltip="the low-resolution image"),
              Input("vae", C.VAE, tooltip="the Stage C VAE"))
    OUTPUTS = (Output("controlnet_input", C.IMAGE, "EfficientNet features [B,H/32,W/32,16]"),
               Output("stage_c", C.LATENT, "zero Stage C latent [B,16,H//16,W//16]"),
               Output("stage_b", C.LATENT, "zero Stage B latent [B,4,H//2,W//2]"))

    def run(self, ctx: RunContext, image, vae) -> tuple:
        image, vae = _image(image), _vae(vae, "stage_c_coder")
        batch, height, width = image.shape[:3]
        features = vae_encode(ctx, vae, image).movedim(1, -1).contiguous()
        c = torch.zeros(batch, 16, height // 16, width // 16)
        b = torch.zeros(batch, 4, height // 2, width // 2)
        return (features, {"samples": c}, {"samples": b})


NODES: dict[str, type[Node]] = {
    "StableCascade_EmptyLatentImage": StableCascade_EmptyLatentImage,
    "StableCascade_StageC_VAEEncode": StableCascade_StageC_VAEEncode,
    "StableCascade_SuperResolutionControlnet": StableCascade_SuperResolutionControlnet,
    "VAEDecode": VAEDecode,
    "VAEEncode": VAEEncode,
}
