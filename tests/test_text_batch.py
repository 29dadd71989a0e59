"""TextEncode encodes the prompt and the negative in one pass (nodes/text_batch.py), with the same results."""
from __future__ import annotations

import threading

import pytest
import torch

from engine.cache import signatures
from engine.executor import Executor
from engine.workflow import document_to_prompt
from models.text_encoder import TEXT_ENCODER_PRESETS, TextEncoder
from nodes.registry import NODES
from runtime.model_use import using
from tests.nodes_helpers import demo_env, small_default, tmp_config

TEXTS = ["a glass bottle with a rainbow liquid, evening light", ""]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batched_rows_equal_single_encodes(dtype):
    torch.manual_seed(0)
    enc = TextEncoder(TEXT_ENCODER_PRESETS["tiny"]).to(dtype).eval()
    hidden, pooled = enc.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        h1, p1 = enc.encode([text])
        assert torch.equal(hidden[i:i + 1], h1) and torch.equal(pooled[i:i + 1], p1)


@pytest.fixture()
def counted(tmp_path, monkeypatch):
    """(env, default doc, list of encoder batch sizes seen)."""
    env = demo_env(tmp_config(tmp_path))
    sizes = []
    forward = TextEncoder.forward

    def counting(self, input_ids, attention_mask):
        sizes.append(input_ids.shape[0])
        return forward(self, input_ids, attention_mask)
    monkeypatch.setattr(TextEncoder, "forward", counting)
    return env, small_default(env), sizes


def _outputs(ex, prompt, nid):
    sigs = signatures(prompt, NODES, ex.env, roots=[nid])
    return ex.cache.get(sigs[nid]).outputs


def test_default_workflow_encodes_prompt_and_negative_in_one_pass(counted):
    env, doc, sizes = counted
    ex = Executor(NODES, env)
    prompt = document_to_prompt(doc)
    ids = sorted(i for i, n in prompt.items() if n["class_type"] == "TextEncode")
    texts = [prompt[i]["inputs"]["text"] for i in ids]
    assert len(ids) == 2 and texts[0] != texts[1]
    run = ex.execute(prompt, ids, prompt_id="p1", cancel=threading.Event())
    assert run.status == "success", run.error
    assert sizes == [2]  # one pass for both texts
    loader = next(i for i, n in prompt.items() if n["class_type"] == "LoadTextEncoder")
    with using(env, _outputs(ex, prompt, loader)[0]) as encoder:
        for nid, text in zip(ids, texts):
            h, p = encoder.encode([text])  # the text alone, as before batching
            got = _outputs(ex, prompt, nid)[0]
            assert torch.equal(got.hidden, h) and torch.equal(got.pooled, p)


def test_only_the_edited_prompt_is_encoded_when_the_negative_is_cached(counted):
    env, doc, sizes = counted
    ex = Executor(NODES, env)
    prompt = document_to_prompt(doc)
    ids = sorted(i for i, n in prompt.items() if n["class_type"] == "TextEncode")
    assert ex.execute(prompt, ids, prompt_id="a", cancel=threading.Event()).status == "success"
    sizes.clear()
    prompt[ids[0]]["inputs"]["text"] = "another prompt"
    assert ex.execute(prompt, ids, prompt_id="b", cancel=threading.Event()).status == "success"
    assert sizes == [1]


def test_siblings_with_the_same_text_share_one_row(counted):
    env, doc, sizes = counted
    prompt = document_to_prompt(doc)
    ids = sorted(i for i, n in prompt.items() if n["class_type"] == "TextEncode")
    prompt[ids[1]]["inputs"]["text"] = prompt[ids[0]]["inputs"]["text"]
    ex = Executor(NODES, env)
    assert ex.execute(prompt, ids, prompt_id="same", cancel=threading.Event()).status == "success"
    assert sizes == [1]
    a, b = (_outputs(ex, prompt, i)[0] for i in ids)
    assert torch.equal(a.hidden, b.hidden) and torch.equal(a.pooled, b.pooled)
