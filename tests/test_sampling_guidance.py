"""guided_eps: batched CFG, official rescale (independent float64 formula), cfg == 1 shortcut."""
import numpy as np
import pytest
import torch

from models.sampling import cfg_combine, guided_eps


class Recorder:
    """A model call: eps = x * scale(cond) + r, recording each call's batch."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, r, clip, pooled=None):
        self.calls.append({"x": x.clone(), "r": r.clone(), "clip": clip.clone(), "pooled": pooled})
        return x * clip.view(-1, 1, 1, 1) + r.view(-1, 1, 1, 1) + torch.sin(3 * x)


def reference_rescale(pred_c, pred_u, w, rho):
    """GDF.sample's CFG written in numpy float64, one item at a time: lerp, then std-ratio rescale.

    For one item this is GDF's formula exactly (its std over the whole tensor is the item's std).
    """
    out = []
    for c, u in zip(pred_c.double().numpy(), pred_u.double().numpy()):
        cfg = u + w * (c - u)
        if rho > 0:
            cfg = rho * cfg * (np.std(c, ddof=1) / (np.std(cfg, ddof=1) + 1e-9)) + (1 - rho) * cfg
        out.append(cfg)
    return np.stack(out)


@pytest.mark.parametrize("w,rho", [(4.0, 0.7), (1.1, 0.7), (4.0, 0.0), (7.5, 0.3)])
def test_guided_eps_matches_reference(w, rho):
    g = torch.Generator().manual_seed(0)
    x, r = torch.randn(3, 2, 4, 4, generator=g), torch.tensor([0.9, 0.9, 0.9])
    cond, uncond = {"clip": torch.tensor([2.0, 1.5, 0.5])}, {"clip": torch.tensor([0.1, 0.1, 0.1])}
    model = Recorder()
    got = guided_eps(model, cond, uncond, cfg=w, cfg_rho=rho)(x, r)
    assert len(model.calls) == 1 and model.calls[0]["x"].shape[0] == 6  # one batched pass
    pred_c = model(x, r, clip=cond["clip"])
    pred_u = model(x, r, clip=uncond["clip"])
    np.testing.assert_allclose(got.double().numpy(), reference_rescale(pred_c, pred_u, w, rho), rtol=1e-5, atol=1e-5)


def test_rescale_is_per_item():
    """Items of very different scale: each is rescaled by its own std, exactly as if run alone.

    (GDF's whole-half-batch std would differ here; at batch 1 the two are the same formula.)
    """
    g = torch.Generator().manual_seed(2)
    pred_c = torch.cat([torch.randn(1, 4, 8, generator=g) * 0.5, torch.randn(1, 4, 8, generator=g) * 3.0])
    pred_u = torch.randn(2, 4, 8, generator=g)
    batched = cfg_combine(pred_c, pred_u, 4.0, 0.7)
    reference = torch.from_numpy(reference_rescale(pred_c, pred_u, 4.0, 0.7))
    torch.testing.assert_close(batched.double(), reference, rtol=1e-6, atol=1e-6)
    c, u = pred_c.double().numpy(), pred_u.double().numpy()
    whole = u + 4.0 * (c - u)
    whole = 0.7 * whole * np.std(c, ddof=1) / np.std(whole, ddof=1) + 0.3 * whole
    assert not np.allclose(batched.double().numpy(), whole, atol=1e-3)  # the coupled variant is gone
    for i in range(2):
        assert torch.equal(cfg_combine(pred_c[i:i + 1], pred_u[i:i + 1], 4.0, 0.7)[0], batched[i])


def test_cfg_one_skips_the_unconditional_pass():
    model = Recorder()
    x, r = torch.randn(2, 2, 3, 3), torch.full((2,), 0.5)
    out = guided_eps(model, {"clip": torch.tensor([2.0])}, {"clip": torch.tensor([0.0])}, cfg=1.0)(x, r)
    assert len(model.calls) == 1 and model.calls[0]["x"].shape[0] == 2
    torch.testing.assert_close(out, x * 2.0 + 0.5 + torch.sin(3 * x))
    # ... and equals the full official formula up to the 1e-9 guard
    both = cfg_combine(model(x, r, clip=torch.full((2,), 2.0)), model(x, r, clip=torch.zeros(2)), 1.0, 0.7)
    torch.testing.assert_close(out, both)


def test_cond_first_uncond_second_and_broadcast():
    model = Recorder()
    x, r = torch.randn(2, 1, 2, 2), torch.tensor([0.3, 0.3])
    guided_eps(model, {"clip": torch.tensor([5.0]), "pooled": None},
               {"clip": torch.tensor([-1.0]), "pooled": None}, cfg=2.0, cfg_rho=0.0)(x, r)
    call = model.calls[0]
    assert call["clip"].tolist() == [5.0, 5.0, -1.0, -1.0]
    assert call["r"].tolist() == pytest.approx([0.3] * 4)
    assert torch.equal(call["x"][:2], x) and torch.equal(call["x"][2:], x)
    assert call["pooled"] is None


def test_mismatched_conditioning_is_an_error():
    with pytest.raises(ValueError, match="same keys"):
        guided_eps(Recorder(), {"clip": torch.ones(1)}, {"other": torch.ones(1)}, cfg=2.0)
    eps = guided_eps(Recorder(), {"clip": torch.ones(3)}, {"clip": torch.ones(3)}, cfg=2.0)
    with pytest.raises(ValueError, match="batch"):
        eps(torch.randn(2, 1, 2, 2), torch.ones(2))
