"""EfficientNet encoder and Previewer behaviour that the key lists cannot show."""
import torch

from models.effnet import EFFNET_PRESETS, IMAGENET_MEAN, IMAGENET_STD, EffNetEncoder
from models.previewer import PREVIEWER_PRESETS, Previewer
from tests.networks_helpers import randomize_, rel_err


def test_effnet_normalises_inside_and_downsamples_32x():
    m = randomize_(EffNetEncoder(EFFNET_PRESETS["tiny"]), seed=11).eval()
    img = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        out = m(img)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        manual = m.mapper(m.backbone((img - mean) / std))
    assert out.shape == (2, 16, 3, 2)
    assert rel_err(out, manual) <= 1e-5


def test_effnet_uses_batchnorm_running_stats_in_eval():
    """Eval mode: batch items are independent (BatchNorm uses running stats, no batch statistics)."""
    m = randomize_(EffNetEncoder(EFFNET_PRESETS["tiny"]), seed=12).eval()
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        both = m(torch.cat([a, b]))
        assert rel_err(both[:1], m(a)) <= 1e-5


def test_full_effnet_stage_outputs():
    """The full-size backbone has torchvision's stage widths and a 1280-channel head at stride 32."""
    m = EffNetEncoder().eval()
    x = torch.rand(1, 3, 64, 64)
    widths = []
    with torch.no_grad():
        h = x
        for stage in m.backbone:
            h = stage(h)
            widths.append(h.shape[1])
    assert widths == [24, 24, 48, 64, 128, 160, 256, 1280]
    assert h.shape[-2:] == (2, 2)


def test_previewer_upscales_8x_and_clamps():
    m = randomize_(Previewer(PREVIEWER_PRESETS["tiny"]), seed=13).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 16, 6, 5) * 3)
    assert out.shape == (2, 3, 48, 40)
    assert out.min() >= 0 and out.max() <= 1
    assert 0 < (out == 1).float().mean() < 1 or 0 < (out == 0).float().mean() < 1


def test_stage_a_decode_in_row_bands_equals_one_pass(monkeypatch):
    import models.stage_a as stage_a

    model = stage_a.StageA(stage_a.STAGE_A_PRESETS["tiny"]).eval()
    randomize_(model, seed=3)
    latent = torch.randn(2, 4, 24, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = model.decode(latent)
        monkeypatch.setattr(stage_a, "MLP_BAND_PIXELS", 7 * 20)  # uneven bands, also at the 2x level
        banded = model.decode(latent)
    assert banded.shape == whole.shape == (2, 3, 96, 80)
    assert rel_err(banded, whole) < 1e-6
