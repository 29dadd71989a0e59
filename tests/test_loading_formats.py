"""Every accepted checkpoint format loads to the very same tensors and outputs as the original file."""
from __future__ import annotations

import pytest
import torch

from models.loading import detect, load
from tests.loading_helpers import (clip_g_state, file_state, prefixed, save, split_qkv, tiny_model, write_diffusers,
                                   zip_folder)

KINDS = ("stage_c", "stage_b", "stage_a", "effnet", "previewer", "text_encoder")


@pytest.fixture(scope="module")
def models():
    """One tiny random model per kind (different seeds so mix-ups would show)."""
    return {kind: tiny_model(kind, seed=i + 1) for i, kind in enumerate(KINDS)}


@torch.no_grad()
def run(kind: str, model) -> torch.Tensor:
    """A deterministic forward pass of any kind of network."""
    g = torch.Generator().manual_seed(7)
    if kind == "stage_c":
        return model(torch.randn(2, 16, 4, 4, generator=g), torch.tensor([0.3, 0.9]),
                     torch.randn(2, 77, 32, generator=g), torch.randn(2, 1, 32, generator=g),
                     torch.randn(2, 1, 768, generator=g))
    if kind == "stage_b":
        return model(torch.randn(1, 4, 16, 16, generator=g), torch.tensor([0.5]),
                     torch.randn(1, 16, 4, 4, generator=g), torch.randn(1, 1, 32, generator=g))
    if kind == "stage_a":
        return torch.cat([model.decode(torch.randn(1, 4, 8, 8, generator=g)).flatten(),
                          model.encode(torch.rand(1, 3, 32, 32, generator=g)).flatten()])
    if kind == "effnet":
        return model(torch.rand(1, 3, 64, 64, generator=g))
    if kind == "previewer":
        return model(torch.randn(1, 16, 4, 4, generator=g))
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70])
    hidden, pooled = model(ids, (torch.arange(77) < 7).long()[None])
    return torch.cat([hidden.flatten(), pooled.flatten()])


def assert_same(kind: str, reference, loaded, dtype: torch.dtype | None = None) -> None:
    """Identical state (after casting the reference to `dtype`) and identical outputs."""
    ref = reference.state_dict()
    got = loaded.state_dict()
    assert set(got) == set(ref)
    for k, v in ref.items():
        want = v.to(dtype) if dtype is not None and v.is_floating_point() else v
        assert got[k].dtype == want.dtype, k
        assert torch.equal(got[k], want), k
    assert not loaded.training
    if dtype in (None, torch.float32):
        assert torch.equal(run(kind, loaded), run(kind, reference))


@pytest.mark.parametrize("kind", KINDS)
def test_original_single_file(tmp_path, models, kind):
    path = save(tmp_path / f"{kind}.safetensors", file_state(kind, models[kind]))
    assert_same(kind, models[kind], load(path, kind))
    report = detect(path)
    assert [c.kind for c in report.components] == [kind]
    assert report.components[0].preset == "tiny" and report.components[0].dtype == "float32"


@pytest.mark.parametrize("kind", ["stage_c", "stage_b"])
@pytest.mark.parametrize("shards,variant,spelling", [(1, None, "diffusers"), (3, None, "diffusers"),
                                                     (2, "bf16", "diffusers"), (1, None, "official")])
def test_diffusers_unet_folder(tmp_path, models, kind, shards, variant, spelling):
    dtype = torch.bfloat16 if variant == "bf16" else None
    folder = write_diffusers(tmp_path / "prior", kind, models[kind], shards=shards, variant=variant,
                             spelling=spelling, dtype=dtype)
    assert_same(kind, models[kind], load(folder, kind), dtype)
    report = detect(folder)
    assert report.format == "diffusers" and report.components[0].layout == "diffusers"
    assert report.components[0].preset == "tiny"
    # The index, or any one shard, stands for the whole set.
    entry = sorted(folder.glob("*.index.json") if shards > 1 else folder.glob("*.safetensors"))[0]
    assert_same(kind, models[kind], load(entry, kind), dtype)
    if shards > 1:
        assert_same(kind, models[kind], load(sorted(folder.glob("*-00002-of-*"))[0], kind), dtype)


def test_diffusers_variants_side_by_side(tmp_path, models):
    """fp32 and bf16 files in one folder: the requested dtype picks the matching variant."""
    m = models["stage_c"]
    folder = write_diffusers(tmp_path / "prior", "stage_c", m)
    write_diffusers(folder, "stage_c", m, variant="bf16", dtype=torch.bfloat16)
    assert_same("stage_c", m, load(folder, "stage_c"))
    got = load(folder, "stage_c", dtype=torch.bfloat16)
    assert_same("stage_c", m, got, torch.bfloat16)
    assert len(detect(folder).components) == 2


def test_diffusers_repo_root_and_other_folders(tmp_path, models):
    root = tmp_path / "stable-cascade"
    write_diffusers(root / "decoder", "stage_b", models["stage_b"])
    write_diffusers(root / "vqgan", "stage_a", models["stage_a"])
    write_diffusers(root / "text_encoder", "text_encoder", models["text_encoder"])
    (root / "model_index.json").write_text('{"_class_name": "StableCascadeDecoderPipeline"}')
    for kind in ("stage_b", "stage_a", "text_encoder"):
        assert_same(kind, models[kind], load(root, kind))
    assert detect(root).kinds == ("stage_b", "stage_a", "text_encoder")
    assert detect(root / "vqgan").components[0].layout == "diffusers"


def test_two_priors_in_one_root_are_ambiguous(tmp_path, models):
    write_diffusers(tmp_path / "prior", "stage_c", models["stage_c"])
    write_diffusers(tmp_path / "prior_lite", "stage_c", tiny_model("stage_c", seed=9))
    from models.loading import LoadError
    with pytest.raises(LoadError, match="several Stage C"):
        load(tmp_path, "stage_c")
    assert_same("stage_c", models["stage_c"], load(tmp_path / "prior", "stage_c"))


@pytest.mark.parametrize("compress", [False, True])
def test_zip_of_diffusers_folder(tmp_path, models, compress):
    """CivitAI's stableCascade_prior.zip: a diffusers folder (with a top folder), read in place."""
    src = tmp_path / "src"
    write_diffusers(src / "prior", "stage_c", models["stage_c"], shards=2)
    write_diffusers(src / "text_encoder", "text_encoder", models["text_encoder"])
    z = zip_folder(src, tmp_path / "stableCascade_prior.zip", compress=compress, arc_root="stableCascade_prior/")
    assert_same("stage_c", models["stage_c"], load(z, "stage_c"))
    assert_same("text_encoder", models["text_encoder"], load(z, "text_encoder"))
    report = detect(z)
    assert report.container == "zip" and report.kinds == ("stage_c", "text_encoder")


@pytest.mark.parametrize("prefix,split,openclip", [("model.diffusion_model.", False, True),
                                                    ("model.diffusion_model.", True, False),
                                                    ("diffusion_model.", True, True), ("prior.", False, False),
                                                    ("", True, True)])
def test_comfy_all_in_one_stage_c(tmp_path, models, prefix, split, openclip):
    unet = file_state("stage_c", models["stage_c"])
    state = {**prefixed(prefix, split_qkv(unet) if split else unet),
             **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", models["text_encoder"]),
                                                      openclip_projection=openclip)),
             **prefixed("vae.encoder.", file_state("effnet", models["effnet"])),
             **prefixed("vae.previewer.", file_state("previewer", models["previewer"]))}
    path = save(tmp_path / "stable_cascade_stage_c.safetensors", state)
    for kind in ("stage_c", "text_encoder", "effnet", "previewer"):
        assert_same(kind, models[kind], load(path, kind))
    report = detect(path)
    assert report.format == "all-in-one" and not report.problems
    assert report.kinds == ("stage_c", "effnet", "previewer", "text_encoder")
    assert report.component("stage_c").layout == ("comfy-split-qkv" if split else "original")


@pytest.mark.parametrize("prefix,names", [("model.diffusion_model.", "original"), ("decoder.", "diffusers")])
def test_comfy_all_in_one_stage_b(tmp_path, models, prefix, names):
    from tests.loading_helpers import diffusers_state
    unet = file_state("stage_b", models["stage_b"])
    if names == "diffusers":
        unet = diffusers_state("stage_b", unet)
    state = {**prefixed(prefix, unet), **prefixed("vae.", file_state("stage_a", models["stage_a"])),
             **prefixed("text_encoder.", clip_g_state(file_state("text_encoder", models["text_encoder"]),
                                                      openclip_projection=False))}
    path = save(tmp_path / "stable_cascade_stage_b.safetensors", state)
    for kind in ("stage_b", "stage_a", "text_encoder"):
        assert_same(kind, models[kind], load(path, kind))
    assert detect(path).kinds == ("stage_b", "stage_a", "text_encoder")


def test_text_encoder_file_with_position_ids(tmp_path, models):
    """Older transformers files carry text_model.embeddings.position_ids: ignored, and rebuilt correctly."""
    state = file_state("text_encoder", models["text_encoder"])
    state["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    loaded = load(save(tmp_path / "model.safetensors", state), "text_encoder")
    assert_same("text_encoder", models["text_encoder"], loaded)
    assert torch.equal(loaded.clip.text_model.embeddings.position_ids, torch.arange(77)[None])


def test_stored_zip_members_are_read_in_place_not_inflated(tmp_path, models):
    from models.loading.containers import ZipTree
    from models.loading.safetensors_io import BytesSafetensors, SafetensorsFile
    src = tmp_path / "src"
    write_diffusers(src / "prior", "stage_c", models["stage_c"])
    stored = ZipTree(zip_folder(src, tmp_path / "stored.zip"))
    deflated = ZipTree(zip_folder(src, tmp_path / "deflated.zip", compress=True))
    member = "prior/diffusion_pytorch_model.safetensors"
    a, b = stored.open_weights(member), deflated.open_weights(member)
    assert isinstance(a, SafetensorsFile) and isinstance(b, BytesSafetensors)
    for key in a.infos():
        assert torch.equal(a.get(key), b.get(key))


def test_sft_suffix_and_bf16_original_file(tmp_path, models):
    """ComfyUI's `.sft` spelling, and an original *_bf16 file loaded back to float32."""
    path = save(tmp_path / "stage_b_bf16.sft", file_state("stage_b", models["stage_b"]), torch.bfloat16)
    got = load(path, "stage_b", dtype=torch.float32)
    for k, v in models["stage_b"].state_dict().items():
        want = v.to(torch.bfloat16).to(torch.float32) if v.is_floating_point() else v
        assert torch.equal(got.state_dict()[k], want), k
