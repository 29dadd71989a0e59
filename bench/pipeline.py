"""Text-to-image end to end, ours vs diffusers' prior + decoder pipelines, on the same random weights.

    python bench/pipeline.py                       # 1024², LITE C+B, bf16, CPU, official settings
    python bench/pipeline.py --rounds 2 --round-steps-c 4 --round-steps-b 2   # the same, said in full
    python bench/pipeline.py --size 256 --rounds 2 --round-steps-c 1 --round-steps-b 1 --full-rounds 0  # smoke
    python bench/pipeline.py --full --device cuda  # 3.6B + 1.5B

The sides alternate (bench/rounds.py): --rounds rounds at reduced step counts (A B, B A, ...), then
--full-rounds at the full ones; each phase reports the median ratio ours/diffusers per stage with its
min/max and IQR, and the JSON keeps every round with the load average before and after each side.
Each side runs in its own subprocess so its peak RSS is its own. Random weights are written once into
--weights (bf16 C/B/text encoder, fp32 Stage A) and reused. Reports total time, time per stage and
peak RSS side by side; --json writes the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import rounds  # noqa: E402

PROMPT = "evening sunset scenery blue sky nature, glass bottle with a fizzy ice cold freezing rainbow liquid in it"
STAGES = ("load", "text", "stage_c", "stage_b", "stage_a", "save")


def weight_files(full: bool) -> dict[str, tuple[str, str, torch.dtype]]:
    """kind -> (file under its subfolder, preset, dtype)."""
    c, b = ("full", "full") if full else ("lite", "lite")
    return {"stage_c": (f"stage_c/bench_stage_c_{c}_bf16.safetensors", c, torch.bfloat16),
            "stage_b": (f"stage_b/bench_stage_b_{b}_bf16.safetensors", b, torch.bfloat16),
            "text_encoder": ("text_encoder/bench_text_encoder_bigg_bf16.safetensors", "bigg", torch.bfloat16),
            "stage_a": ("stage_a/bench_stage_a.safetensors", "full", torch.float32)}


def _random_module(kind: str, preset: str, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    """Build on meta, allocate directly in `dtype`, fill with small non-zero normals (fast, one copy)."""
    from models.stage_a import STAGE_A_PRESETS, StageA
    from models.stage_b import STAGE_B_PRESETS, StageB
    from models.stage_c import STAGE_C_PRESETS, StageC
    from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder

    build = {"stage_c": lambda: StageC(STAGE_C_PRESETS[preset]), "stage_b": lambda: StageB(STAGE_B_PRESETS[preset]),
             "stage_a": lambda: StageA(STAGE_A_PRESETS[preset]),
             "text_encoder": lambda: TextEncoder(TEXT_ENCODER_PRESETS[preset])}[kind]
    with torch.device("meta"):
        module = build()
    module = module.to(dtype).to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                t.zero_()
            elif t.dim() <= 1:
                t.copy_(torch.ones_like(t) if name.endswith("weight") else torch.randn(t.shape, generator=gen) * 0.02)
            else:
                t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32).to(dtype) * 0.02)
    if kind == "text_encoder":
        ids = torch.arange(module.clip.config.max_position_embeddings).unsqueeze(0)
        for name, buf in module.named_buffers():
            if name.endswith("position_ids"):
                buf.copy_(ids)
    return module


def prepare_weights(weights: Path, full: bool) -> None:
    """Write the random-weight files once (the text encoder in its file layout: text_model.*)."""
    from safetensors.torch import save_file

    for seed, (kind, (rel, preset, dtype)) in enumerate(weight_files(full).items()):
        path = weights / rel
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing random {kind} ({preset}) -> {path}", file=sys.stderr, flush=True)
        module = _random_module(kind, preset, dtype, seed)
        state = (module.clip if kind == "text_encoder" else module).state_dict()
        state = {k: v.contiguous() for k, v in state.items() if not k.endswith("position_ids")}
        save_file(state, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
        del module, state


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def peak_memory() -> dict:
    """Peak RSS, plus peak CUDA memory when a GPU was used."""
    out = {"peak_rss_gib": peak_rss_gib()}
    if torch.cuda.is_initialized():
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / (1 << 30)
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_ours(args: argparse.Namespace) -> dict:
    """Our nodes through the real executor: loaders, TextEncode ×2, Stage C, Stage B, Stage A, save."""
    import threading

    from config import Config
    from engine.executor import Executor
    from engine.workflow import document_to_prompt
    from runtime import allocator
    from runtime.env import Env
    from nodes.registry import NODES
    from runtime.workflows import load_default

    allocator.tune()  # as server.py's load_nodes does, before anything loads (runtime/allocator.py)
    import models.loading  # noqa: F401  (imports outside the timed region, as on the diffusers side)
    import models.text_encoder  # noqa: F401

    out = Path(tempfile.mkdtemp(prefix="bench_out_"))
    config = Config(weights_dir=args.weights, output_dir=out, input_dir=out, temp_dir=out, data_dir=out,
                    memory_budget_gb=args.memory_budget, extra={"device": args.device, "compile": args.compile})
    env = Env(config)
    doc = load_default()
    files = weight_files(args.full)
    stage_of = {"TextEncode": "text", "StageCSampler": "stage_c", "StageBSampler": "stage_b",
                "StageADecode": "stage_a", "SaveImage": "save"}
    for nid, node in list(doc["nodes"].items()):
        ct, inputs = node["class_type"], node["inputs"]
        kind = {"LoadStageC": "stage_c", "LoadStageB": "stage_b", "LoadTextEncoder": "text_encoder",
                "LoadStageA": "stage_a"}.get(ct)
        if kind:
            inputs["file"] = files[kind][0].split("/", 1)[1]
        if kind in ("stage_c", "stage_b") and args.quantize != "none":
            inputs["quantize"] = args.quantize
        if ct == "LoadPreviewer":
            del doc["nodes"][nid]
        if ct == "StageCSampler":
            inputs.pop("previewer", None)
            inputs.update(width=args.size, height=args.size, steps=args.steps_c, seed=1)
        if ct == "StageBSampler":
            inputs.update(steps=args.steps_b, seed=2)
    prompt = document_to_prompt(doc)
    times = {s: 0.0 for s in STAGES}
    state = {"node": None, "t": time.perf_counter()}

    def report(event: str, data: dict) -> None:
        now = time.perf_counter()
        if state["node"] is not None and event in ("executing", "execution_success", "execution_error"):
            ct = prompt[state["node"]]["class_type"]
            times[stage_of.get(ct, "load")] += now - state["t"]
            state["node"] = None
        if event == "executing":
            state["node"], state["t"] = data["node"], now
        if event == "execution_error":
            print(data.get("exception_message"), "".join(data.get("traceback", [])), file=sys.stderr)

    outputs = [i for i, n in prompt.items() if n["class_type"] == "SaveImage"]
    start = time.perf_counter()
    run = Executor(NODES, env).execute(prompt, outputs, prompt_id="bench", cancel=threading.Event(),
                                       report=report)
    total = time.perf_counter() - start
    if run.status != "success":
        raise RuntimeError(f"our pipeline failed: {run.error and run.error.get('exception_message')}")
    from runtime.compiled import COMPILE_STATS, compile_seconds

    compiles = [s | {"compile_s": compile_seconds(s)} for s in COMPILE_STATS.values()]
    compile_s = sum(c["compile_s"] or c["first_call_s"] for c in compiles)  # reported apart from the steps
    return {"total": total, **times, **peak_memory(), "model_loads": env.models.loads, "compile_s": compile_s,
            "total_excl_compile": total - compile_s, "compiles": compiles}


def run_diffusers(args: argparse.Namespace) -> dict:
    """diffusers StableCascadePriorPipeline + StableCascadeDecoderPipeline on the same files."""
    from diffusers import DDPMWuerstchenScheduler, StableCascadeDecoderPipeline, StableCascadePriorPipeline
    from diffusers.models.unets.unet_stable_cascade import StableCascadeUNet
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
    from safetensors.torch import load_file

    from models.convert_keys import stage_a_original_to_diffusers, unet_config_to_diffusers, unet_original_to_diffusers
    from models.loading import load
    from models.stage_a import STAGE_A_PRESETS
    from models.stage_b import STAGE_B_PRESETS
    from models.stage_c import STAGE_C_PRESETS
    from models.tokenizer import clip_tokenizer

    files, dev = weight_files(args.full), torch.device(args.device)
    times = {s: 0.0 for s in STAGES}
    start = time.perf_counter()

    def unet(kind: str, cfg) -> StableCascadeUNet:
        with torch.device("meta"):
            net = StableCascadeUNet(**unet_config_to_diffusers(cfg))
        sd = unet_original_to_diffusers(load_file(str(args.weights / files[kind][0])))
        net.load_state_dict(sd, strict=True, assign=True)
        return net.eval().to(dev)

    prior = unet("stage_c", STAGE_C_PRESETS[files["stage_c"][1]])
    decoder = unet("stage_b", STAGE_B_PRESETS[files["stage_b"][1]])
    text_encoder = load(args.weights / files["text_encoder"][0], "text_encoder", dtype=torch.bfloat16,
                        device=dev).clip  # the same transformers CLIPTextModelWithProjection diffusers uses
    a = STAGE_A_PRESETS["full"]
    vqgan = PaellaVQModel(levels=a.levels, bottleneck_blocks=a.bottleneck_blocks, embed_dim=a.c_hidden,
                          latent_channels=a.c_latent, num_vq_embeddings=a.codebook_size)
    vqgan.load_state_dict(stage_a_original_to_diffusers(load_file(str(args.weights / files["stage_a"][0]))))
    vqgan = vqgan.eval().to(dev, torch.bfloat16)  # the decoder pipeline feeds vqgan latents in the UNet dtype
    tok = clip_tokenizer()
    times["load"] = time.perf_counter() - start

    def timed(module, stage: str) -> None:
        inner = module.forward

        def forward(*a, **k):
            t = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                sync(args.device)
                times[stage] += time.perf_counter() - t
        module.forward = forward

    timed(text_encoder, "text")
    timed(prior, "stage_c")
    timed(decoder, "stage_b")
    vq_decode = vqgan.decode

    def decode(*a, **k):
        t = time.perf_counter()
        try:
            return vq_decode(*a, **k)
        finally:
            sync(args.device)
            times["stage_a"] += time.perf_counter() - t
    vqgan.decode = decode
    prior_pipe = StableCascadePriorPipeline(tokenizer=tok, text_encoder=text_encoder, prior=prior,
                                            scheduler=DDPMWuerstchenScheduler())
    decoder_pipe = StableCascadeDecoderPipeline(decoder=decoder, tokenizer=tok, text_encoder=text_encoder,
                                                scheduler=DDPMWuerstchenScheduler(), vqgan=vqgan)
    gen = torch.Generator(device="cpu").manual_seed(1)
    with torch.no_grad():
        emb = prior_pipe(prompt=PROMPT, negative_prompt="", height=args.size, width=args.size,
                         num_inference_steps=args.steps_c, guidance_scale=4.0, generator=gen).image_embeddings
        images = decoder_pipe(image_embeddings=emb, prompt=PROMPT, negative_prompt="", num_inference_steps=args.steps_b,
                              guidance_scale=1.1, generator=gen, output_type="pil").images
    t = time.perf_counter()
    images[0].save(Path(tempfile.mkdtemp(prefix="bench_out_")) / "diffusers.png", compress_level=4)  # as SaveImage
    times["save"] = time.perf_counter() - t
    total = time.perf_counter() - start
    return {"total": total, "total_excl_compile": total, **times, **peak_memory()}


def side(args: argparse.Namespace, name: str, steps_c: int | None = None, steps_b: int | None = None) -> dict:
    """Run one side in a fresh interpreter (at the given step counts, default the run's) and return its JSON."""
    steps_c, steps_b = steps_c or args.steps_c, steps_b or args.steps_b
    cmd = [sys.executable, __file__, "--side", name, "--weights", str(args.weights), "--size", str(args.size),
           "--steps-c", str(steps_c), "--steps-b", str(steps_b), "--device", args.device]
    cmd += ["--full"] if args.full else []
    cmd += ["--compile", args.compile] if args.compile != "off" else []
    cmd += ["--quantize", args.quantize] if args.quantize != "none" else []
    cmd += ["--memory-budget", str(args.memory_budget)] if args.memory_budget else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alternate(args: argparse.Namespace, run_side=None) -> dict:
    """Alternating rounds at the reduced step counts, then the full run (also alternated), with summaries.

    run_side(args, name, steps_c, steps_b) -> result; the default runs each side in a subprocess.
    Returns {"reduced": {"steps_c", "steps_b", "rounds", "ratios", "load"}, "full": {...} or None}.
    """
    run_side = run_side or side
    keys = ("total", "total_excl_compile") + STAGES
    phases = {"reduced": (args.rounds, args.round_steps_c, args.round_steps_b),
              "full": (args.full_rounds, args.steps_c, args.steps_b)}
    out = {}
    for phase, (n, steps_c, steps_b) in phases.items():
        if n <= 0:
            out[phase] = None
            continue
        done = rounds.run_rounds(n, lambda name, i: run_side(args, name, steps_c, steps_b))
        out[phase] = {"steps_c": steps_c, "steps_b": steps_b, "rounds": done,
                      "ratios": rounds.ratio_summary(done, keys + ("peak_rss_gib", "peak_cuda_gib")),
                      "load": rounds.load_summary(done)}
    return out


def report(args: argparse.Namespace, result: dict) -> None:
    """Print each phase's median ratios ours/diffusers with their spread, and the load seen."""
    what = f"{'full' if args.full else 'lite'} {args.size}², {args.device}"
    for phase, r in result.items():
        if r is None:
            continue
        load = r["load"]
        print(f"\n{what}, {phase}: C {r['steps_c']} steps, B {r['steps_b']} steps, {len(r['rounds'])} rounds "
              f"(load {load['min']}–{load['max']}); ratio ours/diffusers")
        for key, s in r["ratios"].items():
            if s["n"]:
                print(rounds.format_row(key, s))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps-c", type=int, default=20, help="Stage C steps of the full run (official 20, cfg 4)")
    p.add_argument("--steps-b", type=int, default=10, help="Stage B steps of the full run (official 10, cfg 1.1)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds at reduced steps (2: A B B A; 0: none)")
    p.add_argument("--round-steps-c", type=int, default=4, help="Stage C steps in the reduced rounds")
    p.add_argument("--round-steps-b", type=int, default=2, help="Stage B steps in the reduced rounds")
    p.add_argument("--full-rounds", type=int, default=1, help="rounds at the full step counts (0: skip them)")
    p.add_argument("--size", type=int, default=1024, help="image width and height")
    p.add_argument("--compile", choices=("off", "inductor", "cudagraphs", "eager"), default="off",
                   help="torch.compile our Stage C/B (runtime/compiled.py); compile time is reported apart")
    p.add_argument("--quantize", choices=("none", "int8_weight", "int8_dynamic"), default="none",
                   help="our Stage C and Stage B loaders' int8 option (models/quant.py); diffusers stays bf16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--full", action="store_true", help="3.6B Stage C + 1.5B Stage B instead of the lite pair")
    p.add_argument("--memory-budget", type=float, default=None,
                   help="our model budget in GiB (default: 40%% of RAM, which on 24 GiB swaps Stage C and B with --full)")
    p.add_argument("--weights", type=Path, default=Path(tempfile.gettempdir()) / "cascade_bench_weights")
    p.add_argument("--side", choices=("both", "ours", "diffusers"), default="both")
    p.add_argument("--json", type=Path, default=None, help="also write the results (every round) here")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    prepare_weights(args.weights, args.full)  # a no-op once the files exist (the sides' subprocesses)
    settings = vars(args) | {"weights": str(args.weights), "json": str(args.json)}
    if args.side != "both":
        result = run_ours(args) if args.side == "ours" else run_diffusers(args)
        print(json.dumps(result))
        if args.json:
            args.json.write_text(json.dumps({"settings": settings, args.side: result}, indent=1))
        return 0
    result = alternate(args)
    report(args, result)
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "cpu": platform.processor() or platform.machine(),
                                         "cores": os.cpu_count(), **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
