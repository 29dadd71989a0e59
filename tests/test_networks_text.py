"""Offline CLIP tokenizer vs a reference tokenization, and the text encoder vs transformers run directly."""
import json
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder
from models.tokenizer import clip_tokenizer, tokenize
from tests.networks_helpers import randomize_, rel_err

REF = json.loads((Path(__file__).parent / "data" / "clip_tokens.json").read_text())["prompts"]


@pytest.fixture(scope="module")
def tok():
    return clip_tokenizer()


def test_known_prompts(tok):
    ids = tokenize(tok, ["a photo of a cat", "Anthropomorphic cat dressed as a pilot"])["input_ids"]
    assert ids.shape == (2, 77)
    assert ids[0].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70
    assert ids[1, :11].tolist() == [49406, 10019, 7548, 523, 3977, 2368, 6559, 601, 320, 6687, 49407]
    assert (ids[1, 11:] == 49407).all()


@pytest.mark.parametrize("case", REF, ids=[r["text"][:24] for r in REF])
def test_matches_open_clip_reference(tok, case):
    """Reference ids from open_clip's SimpleTokenizer; ours pad with <|endoftext|> (open_clip pads with 0)."""
    batch = tokenize(tok, [case["text"]])
    ids, mask = batch["input_ids"][0].tolist(), batch["attention_mask"][0].tolist()
    n = len(case["ids"])
    assert len(ids) == 77
    assert ids[:n] == case["ids"]
    assert ids[n:] == [49407] * (77 - n)
    assert mask == [1] * n + [0] * (77 - n)


def test_overlong_prompt_truncates_to_77_with_eos(tok):
    ids = tokenize(tok, ["cat " * 200])["input_ids"][0].tolist()
    assert ids == [49406] + [2368] * 75 + [49407]


@pytest.fixture(scope="module")
def encoder():
    return randomize_(TextEncoder(TEXT_ENCODER_PRESETS["tiny"]), seed=7).eval()


def test_encoder_matches_transformers_directly(encoder, tok):
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, projection_dim=32,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         hidden_act="gelu", layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407)
    cfg._attn_implementation = "eager"
    ref = CLIPTextModelWithProjection(cfg).eval()
    sd = {k[len("clip."):]: v for k, v in encoder.state_dict().items()}
    ref.load_state_dict(sd, strict=True)
    texts = ["a photo of a cat", "", "Anthropomorphic cat dressed as a pilot"]
    hidden, pooled = encoder.encode(texts)
    batch = tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = ref(**batch, output_hidden_states=True)
        unmasked = ref(input_ids=batch["input_ids"], output_hidden_states=True)
    assert hidden.shape == (3, 77, 32) and pooled.shape == (3, 1, 32)
    assert rel_err(hidden, out.hidden_states[-1]) <= 1e-5
    assert rel_err(pooled[:, 0], out.text_embeds) <= 1e-5
    # "hidden" is taken before the final LayerNorm ...
    assert rel_err(ref.text_model.final_layer_norm(hidden), out.last_hidden_state) <= 1e-5
    assert rel_err(hidden, out.last_hidden_state) > 1e-2
    # ... and the attention mask changes the pad positions only.
    assert rel_err(hidden[0, :7], unmasked.hidden_states[-1][0, :7]) <= 1e-5
    assert rel_err(hidden[0, 7:], unmasked.hidden_states[-1][0, 7:]) > 1e-3


def test_pooled_comes_from_first_eos(encoder):
    hidden, pooled = encoder.encode(["a photo of a cat"])
    clip = encoder.clip
    with torch.no_grad():
        normed = clip.text_model.final_layer_norm(hidden)
        expected = clip.text_projection(normed[0, 6])
    assert rel_err(pooled[0, 0], expected) <= 1e-5
