"""Stage A alone and the text encoder alone: ours vs diffusers/transformers on the same weights, alternating.

    python bench/components.py --part stage_a --size 1024 --rounds 6 --json bench/results/stage_a_1024_cpu.json
    python bench/components.py --part text_encoder --rounds 6 --json bench/results/text_encoder_cpu.json
    python bench/components.py --part stage_a --size 256 --rounds 2 --smoke   # tiny networks, seconds

Both sides run in one process on the weights bench/pipeline.py writes (--smoke: tiny random networks).
Rounds alternate (bench/rounds.py) after one untimed warm-up call per side; the JSON keeps every round with
the load average around each side.

stage_a: our decode vs diffusers' PaellaVQModel.decode (scale factor and clamp as its decoder pipeline), in
float32 and in bfloat16, plus the error of each bfloat16 decode against our float32 one (the figure behind
the bfloat16 default on CUDA, see BF16_BOUND). text_encoder: our TextEncode path (prompt and negative in
one batch) vs transformers' CLIPTextModelWithProjection called for each, as diffusers' prior pipeline does.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import rounds  # noqa: E402
from bench.pipeline import PROMPT, _random_module, prepare_weights, sync, weight_files  # noqa: E402

# Stage A in bfloat16 is the default on CUDA only while its decode stays within these of the float32 one
# (image values in [0, 1]): the mean error under half an 8-bit level, the worst pixel under 8 levels.
BF16_BOUND = {"mean_abs": 0.5 / 255, "max_abs": 8 / 255}


def image_error(x: torch.Tensor, ref: torch.Tensor) -> dict:
    """Errors of an image in [0,1] against a reference: relative L2, mean/max abs, share of 8-bit values off."""
    x, ref = x.double(), ref.double()
    diff = x - ref
    levels = ((x * 255).round() - (ref * 255).round()).abs()
    return {"rel_l2": (diff.norm() / ref.norm().clamp_min(1e-30)).item(), "mean_abs": diff.abs().mean().item(),
            "max_abs": diff.abs().max().item(), "share_8bit_off": (levels > 0).double().mean().item(),
            "share_8bit_off_by_more_than_1": (levels > 1).double().mean().item()}


def within_bound(err: dict) -> bool:
    """True if a bfloat16 decode's error (image_error) is inside BF16_BOUND."""
    return all(err[k] <= v for k, v in BF16_BOUND.items())


def _stage_a_pair(args, dtype: torch.dtype):
    """(ours, diffusers) Stage A networks in `dtype` on the device, from the same weights."""
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel

    from models.convert_keys import stage_a_original_to_diffusers
    from models.loading import load
    from models.stage_a import STAGE_A_PRESETS

    if args.smoke:
        preset = "tiny"
        ours = _random_module("stage_a", preset, torch.float32, 0).to(args.device, dtype).eval()
        state = ours.state_dict()
    else:
        preset, path = "full", args.weights / weight_files(False)["stage_a"][0]
        ours = load(path, "stage_a", dtype=dtype, device=args.device)
        state = ours.state_dict()
    a = STAGE_A_PRESETS[preset]
    # diffusers' constructor default scale factor is 0.3764, ours (the official code's) 0.43: pass ours so
    # both sides decode the same latent and the error figures compare arithmetic, not scaling.
    theirs = PaellaVQModel(levels=a.levels, bottleneck_blocks=a.bottleneck_blocks, embed_dim=a.c_hidden,
                           latent_channels=a.c_latent, num_vq_embeddings=a.codebook_size, scale_factor=a.scale_factor)
    theirs.load_state_dict(stage_a_original_to_diffusers({k: v.float().cpu() for k, v in state.items()}))
    return ours, theirs.eval().to(args.device, dtype), a


def bench_stage_a(args) -> dict:
    """Per dtype: the alternating rounds of decode time and each side's error against our float32 decode."""
    gen = torch.Generator().manual_seed(0)
    out, ref = {}, None
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ours, theirs, cfg = _stage_a_pair(args, dtype)
        z = torch.randn(1, cfg.c_latent, args.size // 4, args.size // 4, generator=gen if ref is None else
                        torch.Generator().manual_seed(0)).to(args.device)
        calls = {"ours": lambda: ours.decode(z.to(dtype)),
                 "diffusers": lambda: theirs.decode(z.to(dtype) * theirs.config.scale_factor).sample.clamp(0, 1)}
        images = {side: fn().float().cpu() for side, fn in calls.items()}  # warm-up, and the images compared
        done = rounds.run_rounds(args.rounds, lambda side, i: _timed(args, calls[side]))
        if ref is None:
            ref = images["ours"]
        errors = {side: image_error(img, ref) for side, img in images.items()}
        out[name] = {"rounds": done, "ratios": rounds.ratio_summary(done, ("seconds",)),
                     "load": rounds.load_summary(done), "error_vs_ours_fp32": errors}
        if name == "bf16":
            out[name]["ours_within_bf16_bound"] = within_bound(errors["ours"])
        del ours, theirs
    return out | {"bf16_bound": BF16_BOUND}


def bench_text_encoder(args) -> dict:
    """Our batched prompt+negative encode vs transformers' model called once per text."""
    from models.loading import load
    from models.tokenizer import clip_tokenizer, tokenize

    if args.smoke:
        ours = _random_module("text_encoder", "tiny", torch.bfloat16, 0).to(args.device).eval()
        theirs = _random_module("text_encoder", "tiny", torch.bfloat16, 0).to(args.device).eval().clip
    else:
        path = args.weights / weight_files(False)["text_encoder"][0]
        ours = load(path, "text_encoder", dtype=torch.bfloat16, device=args.device)
        theirs = load(path, "text_encoder", dtype=torch.bfloat16, device=args.device).clip
    tok = clip_tokenizer()
    texts = [PROMPT, ""]

    def diffusers_side():
        for text in texts:  # the prior pipeline's encode_prompt: the prompt, then the negative
            batch = tokenize(tok, [text])
            theirs(input_ids=batch["input_ids"].to(args.device), attention_mask=batch["attention_mask"].to(args.device),
                   output_hidden_states=True)

    calls = {"ours": lambda: ours.encode(texts), "diffusers": diffusers_side}
    with torch.no_grad():
        for fn in calls.values():
            fn()
        done = rounds.run_rounds(args.rounds, lambda side, i: _timed(args, calls[side]))
    return {"rounds": done, "ratios": rounds.ratio_summary(done, ("seconds",)), "load": rounds.load_summary(done)}


def _timed(args, fn) -> dict:
    t = time.perf_counter()
    with torch.no_grad():
        fn()
    sync(args.device)
    return {"seconds": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("stage_a", "text_encoder"), required=True)
    p.add_argument("--size", type=int, default=1024, help="image width and height (stage_a)")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds (4: A B, B A, A B, B A)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="tiny random networks instead of the bench weights")
    p.add_argument("--weights", type=Path, default=Path("/tmp/cascade_bench_weights"))
    p.add_argument("--json", type=Path, default=None, help="also write the results (every round) here")
    args = p.parse_args(argv)
    if not args.smoke:
        prepare_weights(args.weights, False)
    with torch.no_grad():  # not set_grad_enabled(False): main() is also called in-process by the tests
        result = bench_stage_a(args) if args.part == "stage_a" else bench_text_encoder(args)
    phases = {k: v for k, v in result.items() if isinstance(v, dict) and "ratios" in v} or {args.part: result}
    for name, r in phases.items():
        print(f"{args.part} {name}: ratio ours/diffusers (load {r['load']['min']}–{r['load']['max']})")
        print(rounds.format_row("seconds", r["ratios"]["seconds"]))
        for side, err in r.get("error_vs_ours_fp32", {}).items():
            print(f"  {side} vs our fp32: " + ", ".join(f"{k} {v:.3g}" for k, v in err.items()))
    if args.json:
        settings = vars(args) | {"weights": str(args.weights), "json": str(args.json)}
        args.json.write_text(json.dumps({"settings": settings, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
