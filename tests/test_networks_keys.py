"""Every network built on the meta device has exactly the reference keys and shapes (spec §4)."""
import json
from pathlib import Path

import pytest
import torch

from models.convert_keys import (stage_a_diffusers_to_original, stage_a_original_to_diffusers,
                                 unet_config_from_diffusers, unet_config_to_diffusers,
                                 unet_diffusers_to_original, unet_original_to_diffusers)
from models.effnet import EffNetEncoder
from models.previewer import Previewer
from models.stage_a import StageA
from models.stage_b import STAGE_B_PRESETS, StageB
from models.stage_c import STAGE_C_PRESETS, StageC
from models.text_encoder import TextEncoder

KEYS = Path(__file__).parent / "data" / "keys"

BUILDERS = {
    "stage_c": lambda: StageC(STAGE_C_PRESETS["full"]),
    "stage_c_lite": lambda: StageC(STAGE_C_PRESETS["lite"]),
    "stage_b": lambda: StageB(STAGE_B_PRESETS["full"]),
    "stage_b_lite": lambda: StageB(STAGE_B_PRESETS["lite"]),
    "stage_a": StageA,
    "effnet_encoder": EffNetEncoder,
    "previewer": Previewer,
    "clip_text_bigg": lambda: TextEncoder().clip,
}
# diffusers key lists are checked through the conversion of our original-layout state dict.
DIFFUSERS = {
    "diffusers_prior": ("stage_c", unet_original_to_diffusers),
    "diffusers_prior_lite": ("stage_c_lite", unet_original_to_diffusers),
    "diffusers_decoder": ("stage_b", unet_original_to_diffusers),
    "diffusers_decoder_lite": ("stage_b_lite", unet_original_to_diffusers),
    "diffusers_vqgan": ("stage_a", stage_a_original_to_diffusers),
}


def reference(name: str) -> dict:
    return json.loads((KEYS / f"{name}.json").read_text())


def meta_state_dict(name: str) -> dict:
    with torch.device("meta"):
        return BUILDERS[name]().state_dict()


def shapes(sd: dict) -> dict:
    return {k: list(v.shape) for k, v in sd.items()}


def assert_same_keys(got: dict, ref: dict) -> None:
    missing, extra = sorted(set(ref) - set(got)), sorted(set(got) - set(ref))
    assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
    wrong = {k: (got[k], ref[k]) for k in ref if got[k] != ref[k]}
    assert not wrong, f"shape mismatches: {list(wrong.items())[:5]}"


def test_all_reference_files_are_covered():
    assert {p.stem for p in KEYS.glob("*.json")} == set(BUILDERS) | set(DIFFUSERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_original_keys_and_shapes(name):
    ref = reference(name)
    got = shapes(meta_state_dict(name))
    assert len(got) == ref["num_keys"]
    assert_same_keys(got, ref["params"])


@pytest.mark.parametrize("name", sorted(DIFFUSERS))
def test_diffusers_keys_via_conversion(name):
    source, convert = DIFFUSERS[name]
    sd = meta_state_dict(source)
    assert_same_keys(shapes(convert(sd)), reference(name)["params"])


@pytest.mark.parametrize("name", ["stage_c", "stage_b_lite"])
def test_unet_conversion_round_trips(name):
    sd = meta_state_dict(name)
    back = unet_diffusers_to_original(unet_original_to_diffusers(sd))
    assert_same_keys(shapes(back), shapes(sd))


def test_stage_a_conversion_round_trips():
    sd = meta_state_dict("stage_a")
    assert "vquantizer.embedding.weight" in stage_a_original_to_diffusers(sd)
    assert set(stage_a_diffusers_to_original(stage_a_original_to_diffusers(sd))) == set(sd)


@pytest.mark.parametrize("diff, ours", [("diffusers_prior", "stage_c"), ("diffusers_prior_lite", "stage_c_lite"),
                                        ("diffusers_decoder", "stage_b"), ("diffusers_decoder_lite", "stage_b_lite")])
def test_unet_config_conversion(diff, ours):
    """diffusers config.json <-> our presets, and the official spelling of the first HF upload."""
    preset = {"stage_c": STAGE_C_PRESETS["full"], "stage_c_lite": STAGE_C_PRESETS["lite"],
              "stage_b": STAGE_B_PRESETS["full"], "stage_b_lite": STAGE_B_PRESETS["lite"]}[ours]
    ref_cfg = reference(diff)["config"]
    assert unet_config_from_diffusers(ref_cfg) == preset
    assert unet_config_to_diffusers(preset) == ref_cfg
    assert unet_config_from_diffusers(reference(ours)["config"]) == preset
