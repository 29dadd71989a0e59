"""Stand-ins for ComfyUI's classes used by the shared Stable Cascade examples: only their inputs
and outputs, in ComfyUI's order (shared spec comfy_nodes.md), so converter tests can name widgets
before the real family lands. They never run."""
from __future__ import annotations

from engine.schema import COMBO, FLOAT, INT, STRING, Input, Node, Output

SEED_MAX = 0xFFFFFFFFFFFFFFFF


def _cls(name: str, inputs: tuple, outputs: tuple, output_node: bool = False) -> type[Node]:
    return type(name, (Node,), {"INPUTS": inputs, "OUTPUTS": outputs, "OUTPUT_NODE": output_node,
                                "TITLE": name})


COMFY_STUBS: dict[str, type[Node]] = {c.__name__: c for c in (
    _cls("CheckpointLoaderSimple", (Input("ckpt_name", COMBO, choices=[]),),
         (Output("MODEL", "MODEL"), Output("CLIP", "CLIP"), Output("VAE", "VAE"))),
    _cls("CLIPTextEncode", (Input("text", STRING, multiline=True), Input("clip", "CLIP")),
         (Output("CONDITIONING", "CONDITIONING"),)),
    _cls("KSampler", (Input("model", "MODEL"),
                      Input("seed", INT, default=0, min=0, max=SEED_MAX, seed=True),
                      Input("steps", INT, default=20, min=1, max=10000),
                      Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1),
                      Input("sampler_name", COMBO, choices=["euler", "euler_ancestral"]),
                      Input("scheduler", COMBO, choices=["simple", "normal"]),
                      Input("positive", "CONDITIONING"), Input("negative", "CONDITIONING"),
                      Input("latent_image", "LATENT"),
                      Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01)),
         (Output("LATENT", "LATENT"),)),
    _cls("StableCascade_EmptyLatentImage",
         (Input("width", INT, default=1024), Input("height", INT, default=1024),
          Input("compression", INT, default=42), Input("batch_size", INT, default=1)),
         (Output("stage_c", "LATENT"), Output("stage_b", "LATENT"))),
    _cls("StableCascade_StageB_Conditioning",
         (Input("conditioning", "CONDITIONING"), Input("stage_c", "LATENT")),
         (Output("CONDITIONING", "CONDITIONING"),)),
    _cls("StableCascade_StageC_VAEEncode",
         (Input("image", "IMAGE"), Input("vae", "VAE"), Input("compression", INT, default=42)),
         (Output("stage_c", "LATENT"), Output("stage_b", "LATENT"))),
    _cls("VAEDecode", (Input("samples", "LATENT"), Input("vae", "VAE")), (Output("IMAGE", "IMAGE"),)),
    _cls("LoadImage", (Input("image", COMBO, choices=[]),),
         (Output("IMAGE", "IMAGE"), Output("MASK", "MASK"))),
    _cls("SaveImage", (Input("images", "IMAGE"), Input("filename_prefix", STRING, default="ComfyUI")),
         (), output_node=True),
)}
