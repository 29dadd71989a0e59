"""Stage C/B/A checkpoints of sizes no preset names: the config is read from the shapes, loading stays strict."""
import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from models.convert_keys import stage_a_original_to_diffusers, unet_config_to_diffusers, unet_original_to_diffusers
from models.loading import LoadError, detect, load
from models.loading.infer import official_nhead
from models.stage_a import StageA, StageAConfig
from models.stage_b import StageB, StageBConfig
from models.stage_c import StageC, StageCConfig
from tests.networks_helpers import randomize_, rel_err

# Non-preset sizes; heads follow the official 64-wide rule (the one thing the weights cannot tell).
STAGE_C = StageCConfig(c_cond=48, c_hidden=(64, 96, 128), nhead=(1, -1, 2), blocks=((1, 2, 1), (1, 1, 2)),
                       block_repeat=((1, 2, 1), (2, 1, 1)), level_config=("CTA", "CT", "CTA"), c_clip_text=24,
                       c_clip_text_pooled=40, c_clip_img=20, c_clip_seq=2, c_r=32, dropout=(0.1,) * 3,
                       switch_level=(False, False))
STAGE_B = StageBConfig(c_cond=64, c_hidden=(16, 32, 64), nhead=(-1, -1, 1), blocks=((1, 2, 1), (1, 1, 1)),
                       block_repeat=((1, 1, 1), (2, 1, 3)), level_config=("CT", "CT", "CTA"), c_clip=24,
                       dropout=(0.0, 0.0, 0.1), c_effnet=8)
STAGE_A = StageAConfig(levels=3, bottleneck_blocks=2, c_hidden=48, codebook_size=32)
BUILD = {"stage_c": StageC, "stage_b": StageB, "stage_a": StageA}
CONFIGS = {"stage_c": STAGE_C, "stage_b": STAGE_B, "stage_a": STAGE_A}


def _write(tmp_path, kind, cfg, seed=1, edit=None):
    model = randomize_(BUILD[kind](cfg), seed=seed).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if edit is not None:
        edit(state)
    path = tmp_path / f"{kind}_custom.safetensors"
    save_file(state, str(path))
    return path, model


def _inputs(kind, cfg):
    g = torch.Generator().manual_seed(5)
    if kind == "stage_c":
        return (torch.randn(2, cfg.c_in, 6, 6, generator=g), torch.rand(2, generator=g),
                torch.randn(2, 77, cfg.c_clip_text, generator=g), torch.randn(2, 1, cfg.c_clip_text_pooled, generator=g),
                torch.randn(2, 1, cfg.c_clip_img, generator=g))
    if kind == "stage_b":
        return (torch.randn(2, cfg.c_in, 16, 16, generator=g), torch.rand(2, generator=g),
                torch.randn(2, cfg.c_effnet, 4, 4, generator=g), torch.randn(2, 1, cfg.c_clip, generator=g))
    return (torch.rand(1, 3, 32, 32, generator=g),)


def _run(kind, model, args):
    with torch.no_grad():
        if kind == "stage_a":
            return model.decode_raw(model.encode_raw(*args))
        return model(*args)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_non_preset_sizes_load_strictly_with_their_config(tmp_path, kind):
    cfg = CONFIGS[kind]
    path, direct = _write(tmp_path, kind, cfg)
    loaded = load(path, kind)
    got = dataclasses.replace(loaded.config, nhead=cfg.nhead) if kind != "stage_a" else loaded.config
    assert got == cfg
    if kind != "stage_a":  # levels with attention get the official head count; the others carry none
        assert [h for h, lc in zip(loaded.config.nhead, cfg.level_config) if "A" in lc] == \
               [official_nhead(c) for c, lc in zip(cfg.c_hidden, cfg.level_config) if "A" in lc]
    assert detect(path).components[0].preset == "custom"
    args = _inputs(kind, cfg)
    assert torch.equal(_run(kind, loaded, args), _run(kind, direct, args))


@pytest.mark.parametrize("kind", ["stage_c", "stage_b"])
def test_loaded_custom_unet_equals_diffusers(tmp_path, kind):
    path, _ = _write(tmp_path, kind, CONFIGS[kind], seed=2)
    ours = load(path, kind)
    from diffusers.models.unets.unet_stable_cascade import StableCascadeUNet
    theirs = StableCascadeUNet(**unet_config_to_diffusers(ours.config)).eval()
    theirs.load_state_dict(unet_original_to_diffusers(ours.state_dict()), strict=True)
    args = _inputs(kind, ours.config)
    with torch.no_grad():
        if kind == "stage_c":
            x, r, txt, pooled, img = args
            want = theirs(x, r, clip_text_pooled=pooled, clip_text=txt, clip_img=img).sample
        else:
            x, r, effnet, clip = args
            want = theirs(x, r, clip_text_pooled=clip, effnet=effnet).sample
    assert want.abs().mean() > 1e-3
    assert rel_err(_run(kind, ours, args), want) <= 1e-5


def test_loaded_custom_stage_a_equals_paella(tmp_path):
    from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
    path, _ = _write(tmp_path, "stage_a", STAGE_A, seed=3)
    ours = load(path, "stage_a")
    cfg = ours.config
    theirs = PaellaVQModel(levels=cfg.levels, bottleneck_blocks=cfg.bottleneck_blocks, embed_dim=cfg.c_hidden,
                           latent_channels=cfg.c_latent, num_vq_embeddings=cfg.codebook_size).eval()
    theirs.load_state_dict(stage_a_original_to_diffusers(ours.state_dict()), strict=True)
    img = _inputs("stage_a", cfg)[0]
    with torch.no_grad():
        want = theirs.decode(theirs.encode(img).latents, force_not_quantize=True).sample
    assert rel_err(_run("stage_a", ours, (img,)), want) <= 1e-5


def _reshape(key, shape):
    def edit(state):
        state[key] = torch.randn(shape)
    return edit


BAD = [
    # a TimestepBlock deep in the up pass whose c_r disagrees with every other one
    ("stage_c", "up_blocks.0.1.mapper.weight", _reshape("up_blocks.0.1.mapper.weight", (256, 16))),
    # a key no Stage C has
    ("stage_c", "down_blocks.1.0.extra.weight", _reshape("down_blocks.1.0.extra.weight", (3,))),
    # the second down block of level 1 wider than its level
    ("stage_b", "down_blocks.1.2.depthwise.weight", _reshape("down_blocks.1.2.depthwise.weight", (40, 1, 3, 3))),
    # a codebook whose width disagrees with the encoder's latent conv
    ("stage_a", "vquantizer.codebook.weight", _reshape("vquantizer.codebook.weight", (32, 5))),
]


@pytest.mark.parametrize("kind,key,edit", BAD, ids=[b[1] for b in BAD])
def test_inconsistent_key_is_refused_by_name(tmp_path, kind, key, edit):
    path, _ = _write(tmp_path, kind, CONFIGS[kind], edit=edit)
    with pytest.raises(LoadError, match="no .* config explains the weights: key " + key.replace(".", r"\.")):
        load(path, kind)
    assert not detect(path).components[0].loadable


def test_presets_still_win(tmp_path):
    """A preset-sized file keeps its preset name (and its head counts, which differ from the 64 rule)."""
    from models.stage_c import STAGE_C_PRESETS
    path, _ = _write(tmp_path, "stage_c", STAGE_C_PRESETS["tiny"])
    assert load(path, "stage_c").config == STAGE_C_PRESETS["tiny"]
    assert detect(path).components[0].preset == "tiny"
