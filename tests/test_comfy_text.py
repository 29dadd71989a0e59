"""CLIPTextEncode and TextEncode's options: chunked encoding and emphasis vs transformers run directly.

Oracle: transformers' CLIPTextModelWithProjection (eager attention) with the encoder's weights, fed the
CLIPTokenizer's ids chunk by chunk; the weighting is recomputed in float64 from its raw outputs.
"""
from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from engine.catalogue import node_info
from models.sampling import cfg_combine, guided_eps
from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder
from models.tokenizer import clip_tokenizer
from nodes.comfy import types as C
from nodes.comfy.text import CLIPTextEncode
from nodes.registry import NODES
from runtime.model_use import using
from tests.networks_helpers import randomize_, rel_err
from tests.nodes_helpers import loaded_nodes

BOS, EOS = 49406, 49407
LONG = ", ".join(f"word{i}" for i in range(45))  # one segment of 151..225 tokens: 3 chunks


@pytest.fixture(scope="module")
def tok():
    return clip_tokenizer()


@pytest.fixture(scope="module")
def encoder():
    return randomize_(TextEncoder(TEXT_ENCODER_PRESETS["tiny"]), seed=3).eval()


@pytest.fixture(scope="module")
def oracle(encoder):
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, projection_dim=32,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         hidden_act="gelu", layer_norm_eps=1e-5, bos_token_id=BOS, eos_token_id=EOS)
    cfg._attn_implementation = "eager"
    ref = CLIPTextModelWithProjection(cfg).eval()
    ref.load_state_dict({k[len("clip."):]: v for k, v in encoder.state_dict().items()}, strict=True)

    def run(chunk_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One 77-id chunk -> (last hidden state before the final norm [77,H], projected pooled [P])."""
        n = chunk_ids.index(EOS) + 1
        ids = torch.tensor([chunk_ids])
        mask = torch.tensor([[1] * n + [0] * (77 - n)])
        with torch.no_grad():
            out = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[-1][0], out.text_embeds[0]

    return run


def body(tok, text: str) -> list[int]:
    return tok(text, verbose=False)["input_ids"][1:-1]


def padded(tokens: list[int]) -> list[int]:
    return [BOS] + tokens + [EOS] * (76 - len(tokens))


def test_chunked_equals_each_chunk_alone_concatenated(encoder, oracle, tok):
    full = body(tok, LONG)
    parts = [full[i:i + 75] for i in range(0, len(full), 75)]
    assert len(parts) == 3
    refs = [oracle(padded(p)) for p in parts]
    hidden, pooled = encoder.encode_prompt(LONG)
    assert hidden.shape == (1, 77 * 3, 32) and pooled.shape == (1, 32)
    assert hidden.dtype == torch.float32
    assert rel_err(hidden[0], torch.cat([h for h, _ in refs])) <= 1e-5
    assert rel_err(pooled[0], refs[0][1]) <= 1e-5  # pooled from the first chunk
    assert rel_err(pooled[0], refs[1][1]) > 1e-2


def test_weighted_tokens_follow_empty_plus_scaled_difference(encoder, oracle, tok):
    text = "a photo of (a black cat:1.4), ((dog)) [x]"
    segs = ["a photo of ", "a black cat", ", ", "dog", " [x]"]
    weights_by_seg = [1.0, 1.4, 1.0, 1.21, 1.0]  # by hand: 1.1·1.1 for ((dog))
    tokens, weights = [], []
    for seg, w in zip(segs, weights_by_seg):
        t = body(tok, seg)
        tokens += t
        weights += [w] * len(t)
    h, _ = oracle(padded(tokens))
    e, _ = oracle(padded([]))  # the empty prompt: start, end, end-padding
    w = torch.tensor([1.0] + weights + [1.0] * (76 - len(weights)), dtype=torch.float64)[:, None]
    h, e = h.double(), e.double()
    expected = torch.where(w != 1.0, e + (h - e) * w, h)
    hidden, pooled = encoder.encode_prompt(text)
    assert rel_err(hidden[0], expected) <= 1e-5
    assert rel_err(hidden[0], h) > 1e-3  # the weighting did change something
    plain, plain_pooled = encoder.encode_prompt("a photo of a black cat, dog [x]", emphasis=False)
    assert rel_err(pooled, plain_pooled) <= 1e-6  # pooled is never weighted


def test_weights_of_one_skip_the_empty_pass(encoder):
    batches = []
    hook = encoder.clip.text_model.register_forward_hook(
        lambda m, a, kw, out: batches.append(kw["input_ids"].shape[0]), with_kwargs=True)
    try:
        same, _ = encoder.encode_prompt("a (cat:1.0) sat")
        plain, _ = encoder.encode_prompt("a cat sat")
        encoder.encode_prompt("a (cat:1.2) sat")
        encoder.encode_prompt(LONG + " (cat:0.5)")
    finally:
        hook.remove()
    assert batches == [1, 1, 2, 4]  # the empty prompt rides along only when a weight is not 1
    assert torch.equal(same, plain)


def test_truncate_option_keeps_the_official_77(encoder, oracle, tok):
    hidden, pooled = encoder.encode_prompt(LONG, long_prompts="truncate", emphasis=False)
    ref, ref_pooled = oracle(padded(body(tok, LONG)[:75]))
    assert hidden.shape == (1, 77, 32) and rel_err(hidden[0], ref) <= 1e-5
    with pytest.raises(ValueError, match="long_prompts"):
        encoder.encode_prompt("a", long_prompts="wrap")


# -- the nodes -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    env, ctx, te, models = loaded_nodes(tmp_path_factory.mktemp("text"))
    return env, ctx, te, models


def test_clip_text_encode_gives_comfyui_entries(loaded):
    env, ctx, te, _ = loaded
    text = LONG + " (red:1.3)"
    (cond,) = NODES["CLIPTextEncode"]().run(ctx, text=text, clip=C.Clip(te))
    assert isinstance(cond, list) and len(cond) == 1
    hidden, extras = cond[0]
    assert set(extras) == {"pooled_output"}
    assert hidden.shape[:2] == (1, 77 * 3) and extras["pooled_output"].shape == (1, hidden.shape[2])
    with using(env, te) as encoder:  # the node is ComfyUI's syntax on the loaded encoder, without clean-up
        ref, ref_pooled = encoder.encode_prompt(text, "chunk", emphasis=True, clean=False)
    assert torch.equal(hidden, ref) and torch.equal(extras["pooled_output"], ref_pooled)


def test_clip_text_encode_bad_inputs_are_node_errors(loaded):
    _, ctx, te, _ = loaded
    with pytest.raises(TypeError, match="clip input is invalid"):
        CLIPTextEncode().run(ctx, text="a", clip=None)
    with pytest.raises(ValueError, match="finite"):
        CLIPTextEncode().run(ctx, text="(a:nan)", clip=C.Clip(te))


def test_text_encode_defaults_unchanged_and_options(loaded):
    env, ctx, te, _ = loaded
    node = NODES["TextEncode"]()
    (default,) = node.run(ctx, te, LONG)
    with using(env, te) as encoder:
        official, official_pooled = encoder.encode([LONG])
    assert default.hidden.shape[1] == 77 and torch.equal(default.hidden, official)
    (chunked,) = node.run(ctx, te, LONG, long_prompts="chunk")
    assert chunked.hidden.shape[1] == 77 * 3 and chunked.pooled.shape == official_pooled.shape
    assert rel_err(chunked.hidden[:, :77], official) <= 1e-5  # the first chunk is the truncated prompt
    (weighted,) = node.run(ctx, te, "a (cat:1.5)", emphasis="comfy")
    (literal,) = node.run(ctx, te, "a (cat:1.5)")
    assert weighted.hidden.shape[1] == 77 and rel_err(weighted.hidden, literal.hidden) > 1e-3
    with pytest.raises(ValueError, match="long_prompts"):
        node.run(ctx, te, "a", long_prompts="wrap")


def test_object_info_entries(loaded):
    env = loaded[0]
    info = node_info("CLIPTextEncode", NODES["CLIPTextEncode"], env)
    # ComfyUI's entry, less "dynamicPrompts": True on text (our catalogue has no such option; see the doc).
    assert info["input"] == {"required": {
        "text": ["STRING", {"multiline": True, "tooltip": "The text to be encoded."}],
        "clip": ["CLIP", {"tooltip": "The CLIP model used for encoding the text."}]}}
    assert info["input_order"] == {"required": ["text", "clip"]}
    assert info["output"] == ["CONDITIONING"] and info["output_name"] == ["CONDITIONING"]
    assert info["category"] == "conditioning" and info["display_name"] == "CLIP Text Encode (Prompt)"
    assert info["output_tooltips"] == ["A conditioning containing the embedded text used to guide the diffusion model."]
    ours = node_info("TextEncode", NODES["TextEncode"], env)
    assert ours["input"]["optional"]["long_prompts"] == [["truncate", "chunk"], ours["input"]["optional"]["long_prompts"][1]]
    assert ours["input"]["optional"]["long_prompts"][1]["default"] == "truncate"
    assert ours["input"]["optional"]["emphasis"][0] == ["off", "comfy"]
    assert ours["input"]["optional"]["emphasis"][1]["default"] == "off"


def test_guidance_runs_prompts_of_different_lengths_as_two_passes():
    calls = []

    def model(x, r, clip_text):
        calls.append(clip_text.shape)
        return x * clip_text.mean(dim=(1, 2)).view(-1, 1, 1, 1) + r.view(-1, 1, 1, 1)

    gen = torch.Generator().manual_seed(0)
    x, r = torch.randn(2, 4, 3, 3, generator=gen), torch.tensor([0.3, 0.6])
    long_text, short_text = torch.randn(1, 154, 8, generator=gen), torch.randn(1, 77, 8, generator=gen)
    eps = guided_eps(model, {"clip_text": long_text}, {"clip_text": short_text}, cfg=4.0, cfg_rho=0.0)(x, r)
    expected = cfg_combine(model(x, r, long_text.expand(2, -1, -1)), model(x, r, short_text.expand(2, -1, -1)),
                           4.0, 0.0)
    assert torch.equal(eps, expected)
    assert calls[:2] == [(2, 154, 8), (2, 77, 8)]


def test_stage_c_sampler_takes_a_long_positive_with_a_short_negative(loaded):
    _, ctx, te, models = loaded
    (pos,) = NODES["TextEncode"]().run(ctx, te, LONG, long_prompts="chunk")
    (neg,) = NODES["TextEncode"]().run(ctx, te, "")
    inputs = {i.name: i.default for i in NODES["StageCSampler"].INPUTS if i.is_widget and i.default is not None}
    inputs |= dict(width=128, height=128, batch_size=1, seed=5, steps=2)
    (latent,) = NODES["StageCSampler"]().run(ctx, stage_c=models["stage_c"], positive=pos, negative=neg, **inputs)
    assert torch.isfinite(latent.samples).all() and latent.samples.shape[1] == 16


def test_admission_sizes_stage_c_attention_by_the_text_length():
    from models.stage_b import STAGE_B_PRESETS
    from models.stage_c import STAGE_C_PRESETS
    from runtime.admission import Job, job_bytes

    cfg = STAGE_C_PRESETS["lite"]
    short, long = (Job("stage_c", cfg, 2, 1024, 1024, 1, True, n) for n in (77, 77 * 3))
    assert job_bytes(long) > job_bytes(short)  # attention scores grow with (positions + text tokens)²
    b = STAGE_B_PRESETS["lite"]  # Stage B reads the pooled vector only
    assert job_bytes(Job("stage_b", b, 2, 1024, 1024, 1, True, 77 * 3)) == job_bytes(Job("stage_b", b, 2, 1024, 1024, 1, True))
