"""KSampler's guidance calls as ComfyUI's calc_cond_batch makes them: cond and uncond in one batch where they
fit (texts of different lengths repeated to their lcm), and ControlNetApply's control shared with the
negative (apply_empty_x_to_equal_area). Expected values are written by hand from those rules."""
from __future__ import annotations

import math

import torch

from nodes.comfy.sample_conds import ComfyDenoiser, preds_of, share_controls


class Recorder:
    """eps = x_in * 0.5 + sum(clip_text over tokens and width) + pooled[0] (+ cnet[0]); records batch sizes."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, r, clip_text, clip_text_pooled, clip_img, cnet=None):
        self.batches.append(x.shape[0])
        extra = 0.0 if cnet is None else cnet[0].view(-1, 1, 1, 1)
        return x * 0.5 + clip_text.sum(dim=(1, 2)).view(-1, 1, 1, 1) + clip_text_pooled[:, :1, None, None] + extra


def entry(v: float, tokens: int = 3, **extras):
    return [torch.full((1, tokens, 2), v), {"pooled_output": torch.full((1, 2), v), **extras}]


X = torch.randn(2, 1, 2, 2, generator=torch.Generator().manual_seed(0))
SIGMA = 3.0


def d(eps):
    return X - SIGMA * eps


def test_cond_and_uncond_share_one_network_call_per_step():
    net = Recorder()
    den = ComfyDenoiser(net, preds_of([entry(1.0)], "stage_c", (2, 2), 2.0),
                        preds_of([entry(-1.0)], "stage_c", (2, 2), 2.0), 4.0, 2.0, torch.device("cpu"))
    out = den(X, SIGMA)
    assert net.batches == [4]  # 2 latents x (cond, uncond) in one call
    x_in = X / math.sqrt(SIGMA ** 2 + 1)
    cond, uncond = d(x_in * 0.5 + 6 * 1.0 + 1.0), d(x_in * 0.5 + 6 * -1.0 - 1.0)  # sum over 3x2 tokens = 6v
    torch.testing.assert_close(out, uncond + (cond - uncond) * 4.0)


def test_texts_of_different_length_are_repeated_to_their_lcm_as_comfyui_batches_them():
    net = Recorder()
    den = ComfyDenoiser(net, preds_of([entry(1.0, tokens=6)], "stage_c", (2, 2), 2.0),
                        preds_of([entry(-1.0, tokens=3)], "stage_c", (2, 2), 2.0), 2.0, 2.0, torch.device("cpu"))
    out = den(X, SIGMA)
    assert net.batches == [4]
    x_in = X / math.sqrt(SIGMA ** 2 + 1)
    # lcm(6, 3) = 6: the negative's 3 tokens are repeated twice, so its token sum doubles (-12, not -6).
    cond, uncond = d(x_in * 0.5 + 12.0 + 1.0), d(x_in * 0.5 - 12.0 - 1.0)
    torch.testing.assert_close(out, uncond + (cond - uncond) * 2.0)
    # Beyond 4x (lcm(77, 78) / 77) ComfyUI does not batch: two calls, each text as is.
    net2 = Recorder()
    ComfyDenoiser(net2, preds_of([entry(1.0, tokens=78)], "stage_c", (2, 2), 2.0),
                  preds_of([entry(-1.0, tokens=77)], "stage_c", (2, 2), 2.0), 2.0, 2.0, torch.device("cpu"))(X, SIGMA)
    assert net2.batches == [2, 2]


class Control:
    def __init__(self, value):
        self.value, self.shapes = value, []

    def stage_c_inputs(self, x_shape, sigma, percent_to_sigma):
        self.shapes.append(x_shape)
        return [torch.full((x_shape[0],), self.value)]


def test_controlnet_apply_steers_the_negative_too_and_advanced_does_not():
    shared = Control(10.0)
    pos = [entry(0.0, control=shared, control_apply_to_uncond=True)]
    neg = [entry(0.0)]
    neg_used = share_controls(pos, neg)
    assert neg_used[0][1]["control"] is shared and "control" not in neg[0][1]  # a copy; the input is untouched
    net = Recorder()
    out = ComfyDenoiser(net, preds_of(pos, "stage_c", (2, 2), 2.0), preds_of(neg_used, "stage_c", (2, 2), 2.0),
                        3.0, 2.0, torch.device("cpu"))(X, SIGMA)
    assert net.batches == [4] and shared.shapes == [(4, 1, 2, 2)]  # one batch, the control run on it once
    x_in = X / math.sqrt(SIGMA ** 2 + 1)
    both = d(x_in * 0.5 + 10.0)
    torch.testing.assert_close(out, both)  # cond == uncond: CFG leaves the controlled prediction
    # ControlNetApplyAdvanced marks its controls False: the negative keeps what it had.
    advanced = [entry(0.0, control=Control(1.0), control_apply_to_uncond=False)]
    assert share_controls(advanced, neg) is neg
    # A negative with a control of its own keeps it (ComfyUI returns early).
    own = [entry(0.0, control=Control(2.0))]
    assert share_controls(pos, own) is own
    # Two shared controls over one negative entry: the last one assigned wins (index i mod n).
    c1, c2 = Control(1.0), Control(2.0)
    two = share_controls([entry(0.0, control=c1, control_apply_to_uncond=True),
                          entry(0.0, control=c2, control_apply_to_uncond=True)], neg)
    assert two[0][1]["control"] is c2
