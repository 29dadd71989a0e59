"""Torch-free stub nodes with Stable Cascade's socket types, for the browser editor tests.

They look like the real pipeline to the editor (loaders → text encode → Stage C sampler with live
previews → Stage A decode → SaveImage writing a PNG with `prompt`/`workflow` text chunks) but run
in milliseconds, so the tests exercise the real server without models.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from engine.schema import COMBO, FLOAT, INT, STRING, Input, Node, Output, Result

STAGE_C, STAGE_A, TEXT_ENCODER = "STAGE_C", "STAGE_A", "TEXT_ENCODER"
CONDITIONING, STAGE_C_LATENT, IMAGE = "CONDITIONING", "STAGE_C_LATENT", "IMAGE"
FILES = ["demo_a.safetensors", "demo_b.safetensors"]


@dataclass
class WebStubEnv:
    """Only the output folder; the stub nodes keep no other state."""

    output_dir: Path
    input_dir: Path | None = None

    def input_files(self) -> list[str]:
        folder = self.input_dir
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder and folder.is_dir() else []


class LoadStageC(Node):
    """Stub Stage C loader."""

    TITLE = "Load Stage C"
    CATEGORY = "loaders"
    INPUTS = (Input("file", COMBO, choices=FILES, default=FILES[0]),)
    OUTPUTS = (Output("stage_c", STAGE_C),)

    def run(self, ctx, file):
        return (f"stage_c:{file}",)


class LoadTextEncoder(Node):
    """Stub text encoder loader."""

    TITLE = "Load Text Encoder"
    CATEGORY = "loaders"
    INPUTS = (Input("file", COMBO, choices=FILES, default=FILES[0]),)
    OUTPUTS = (Output("text_encoder", TEXT_ENCODER),)

    def run(self, ctx, file):
        return (f"te:{file}",)


class LoadStageA(Node):
    """Stub Stage A loader."""

    TITLE = "Load Stage A"
    CATEGORY = "loaders"
    INPUTS = (Input("file", COMBO, choices=FILES, default=FILES[0]),)
    OUTPUTS = (Output("stage_a", STAGE_A),)

    def run(self, ctx, file):
        return (f"stage_a:{file}",)


class SeedValue(Node):
    """An INT source, to drive a widget input through its socket."""

    TITLE = "Seed Value"
    CATEGORY = "utils"
    INPUTS = (Input("value", INT, default=123, min=0, max=2**32),)
    OUTPUTS = (Output("seed", INT),)

    def run(self, ctx, value):
        return (value,)


class LoadImage(Node):
    """Stub image loader: picks a file from the input folder (where uploads land)."""

    TITLE = "Load Image"
    CATEGORY = "image"
    INPUTS = (Input("image", COMBO, choices=lambda env: env.input_files()),)
    OUTPUTS = (Output("image", IMAGE),)

    def run(self, ctx, image):
        return (128,)


class Explode(Node):
    """Output node that fails at run time (for the editor's execution-error display)."""

    TITLE = "Explode"
    CATEGORY = "debug"
    OUTPUT_NODE = True
    INPUTS = (Input("images", IMAGE), Input("message", STRING, default="boom"))

    def run(self, ctx, images, message):
        raise RuntimeError(message)


class TextEncode(Node):
    """Stub prompt encoder."""

    TITLE = "Text Encode"
    CATEGORY = "conditioning"
    INPUTS = (Input("text_encoder", TEXT_ENCODER), Input("text", STRING, default="", multiline=True))
    OUTPUTS = (Output("conditioning", CONDITIONING),)

    def run(self, ctx, text_encoder, text):
        return (text,)


class StageCSampler(Node):
    """Stub sampler: sleeps `delay` per step, reporting progress with a preview image."""

    TITLE = "Stage C Sampler"
    CATEGORY = "sampling"
    INPUTS = (Input("stage_c", STAGE_C), Input("positive", CONDITIONING), Input("negative", CONDITIONING),
              Input("seed", INT, default=0, min=0, max=2**64 - 1, seed=True),
              Input("steps", INT, default=4, min=1, max=200),
              Input("cfg", FLOAT, default=4.0, min=0.0, max=20.0, step=0.1),
              Input("sampler", COMBO, choices=("ddpm", "euler"), default="ddpm"),
              Input("delay", FLOAT, default=0.05, min=0.0, max=5.0, step=0.01))
    OUTPUTS = (Output("stage_c_latent", STAGE_C_LATENT),)

    def run(self, ctx, stage_c, positive, negative, seed, steps, cfg, sampler, delay):
        from PIL import Image
        for i in range(steps):
            time.sleep(delay)
            ctx.progress(i + 1, steps, Image.new("RGB", (64, 64), (40 + i * 30 % 200, 90, 160)))
        return ((seed, steps),)


class StageADecode(Node):
    """Stub decoder: the latent becomes a grey level."""

    TITLE = "Stage A Decode"
    CATEGORY = "latent"
    INPUTS = (Input("stage_a", STAGE_A), Input("latent", STAGE_C_LATENT))
    OUTPUTS = (Output("image", IMAGE),)

    def run(self, ctx, stage_a, latent):
        return ((latent[0] * 37) % 256,)


class SaveImage(Node):
    """Writes a PNG carrying `prompt` and `workflow` text chunks, like the real SaveImage."""

    TITLE = "Save Image"
    CATEGORY = "image"
    OUTPUT_NODE = True
    INPUTS = (Input("images", IMAGE), Input("filename_prefix", STRING, default="web"))

    def run(self, ctx, images, filename_prefix):
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo
        folder = Path(ctx.env.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{filename_prefix}_{len(list(folder.glob(f'{filename_prefix}_*.png'))) + 1:05d}_.png"
        info = PngInfo()
        info.add_text("prompt", json.dumps(ctx.prompt))
        for key, value in (ctx.extra_pnginfo or {}).items():
            info.add_text(key, json.dumps(value))
        Image.new("RGB", (64, 64), (int(images),) * 3).save(folder / name, pnginfo=info)
        return Result(ui={"images": [{"filename": name, "subfolder": "", "type": "output"}]})


WEB_STUB_NODES: dict[str, type[Node]] = {
    "LoadStageC": LoadStageC, "LoadTextEncoder": LoadTextEncoder, "LoadStageA": LoadStageA,
    "TextEncode": TextEncode, "StageCSampler": StageCSampler, "StageADecode": StageADecode,
    "SaveImage": SaveImage, "SeedValue": SeedValue, "LoadImage": LoadImage,
    "Explode": Explode,
}


def pipeline_document(delay: float = 0.05, steps: int = 4) -> dict:
    """A complete stub pipeline as our workflow document."""
    def node(cls, inputs, x, y, **ui):
        return {"class_type": cls, "inputs": inputs, "ui": {"pos": [x, y], **ui}}
    return {"version": 1, "nodes": {
        "1": node("LoadTextEncoder", {"file": FILES[0]}, 20, 20),
        "2": node("LoadStageC", {"file": FILES[0]}, 20, 160),
        "3": node("LoadStageA", {"file": FILES[0]}, 20, 300),
        "4": node("TextEncode", {"text_encoder": ["1", 0], "text": "a glass bottle"}, 320, 20, title="Positive"),
        "5": node("TextEncode", {"text_encoder": ["1", 0], "text": ""}, 320, 220, title="Negative"),
        "6": node("StageCSampler", {"stage_c": ["2", 0], "positive": ["4", 0], "negative": ["5", 0], "seed": 5,
                                    "steps": steps, "cfg": 4.0, "sampler": "ddpm", "delay": delay},
                  640, 20, seed_control="fixed"),
        "7": node("StageADecode", {"stage_a": ["3", 0], "latent": ["6", 0]}, 940, 20),
        "8": node("SaveImage", {"images": ["7", 0], "filename_prefix": "web"}, 1220, 20),
    }, "ui": {"view": {"offset": [0, 0], "scale": 1}, "notes": []}}
