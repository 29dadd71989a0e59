"""Seeds: per-item generators, batch-position invariance, no global RNG, CPU/GPU agreement."""
import pytest
import torch

from models.sampling import SAMPLERS, SCHEDULERS, SeededNoise, batch_seeds, guided_eps, sample
from tests.sampling_helpers import toy_eps

SHAPE_ITEM = (3, 5, 5)


def test_seeded_noise_is_per_item():
    batch = SeededNoise([3, 5, 7], SHAPE_ITEM)
    single = SeededNoise([5], SHAPE_ITEM)
    for _ in range(3):  # initial draw and two per-step draws
        assert torch.equal(batch()[1], single()[0])
    g = torch.Generator().manual_seed(7)
    assert torch.equal(SeededNoise([7], SHAPE_ITEM)()[0], torch.randn(SHAPE_ITEM, generator=g))


def test_batch_seeds_rule():
    assert batch_seeds(41, 3) == [41, 42, 43]


def _run(seeds, sampler, scheduler="simple", eps=toy_eps, **kw):
    return sample(eps, (len(seeds), *SHAPE_ITEM), sampler=sampler, scheduler=scheduler, steps=5, shift=2.0,
                  seeds=seeds, device="cpu", dtype=torch.float32, **kw)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_image_i_of_a_batch_equals_a_batch1_run(sampler):
    batch = _run([10, 20, 30], sampler)
    for i, seed in enumerate([10, 20, 30]):
        torch.testing.assert_close(batch[i], _run([seed], sampler)[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(_run([30, 10], sampler)[1], batch[0], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(batch[0], batch[1])


@pytest.mark.parametrize("rho", [0.0, 0.7])
def test_batch_invariance_through_cfg(rho):
    """Guidance (plain, and the official rescale at its default 0.7) is per item: batch invariance holds."""
    def model(x, r, ctx):
        return toy_eps(x, r) + ctx.view(-1, 1, 1, 1)

    cond = {"ctx": torch.tensor([0.5])}
    uncond = {"ctx": torch.tensor([-0.5])}
    eps = guided_eps(model, cond, uncond, cfg=3.0, cfg_rho=rho)
    for sampler in ("ddpm", "euler_ancestral"):
        batch = _run([1, 2], sampler, eps=eps)
        torch.testing.assert_close(batch[1], _run([2], sampler, eps=eps)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_reproducible_and_global_rng_untouched(sampler):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = [_run([4, 5], sampler, scheduler=s) for s in SCHEDULERS]
    assert torch.equal(torch.get_rng_state(), state)
    second = [_run([4, 5], sampler, scheduler=s) for s in SCHEDULERS]
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_img2img_noise_is_seeded_too():
    init = torch.randn(1, *SHAPE_ITEM, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    for sampler in ("ddpm", "euler"):
        a = _run([9, 8], sampler, denoise=0.6, init=init)
        b = _run([8], sampler, denoise=0.6, init=init)
        torch.testing.assert_close(a[1], b[0], rtol=1e-6, atol=1e-6)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("sampler", ["ddpm", "euler_ancestral", "dpmpp_2m_sde"])
def test_cpu_and_gpu_agree(sampler):
    """Noise is drawn on the CPU, so the GPU run starts from the same numbers and ends close."""
    gpu_state = torch.cuda.get_rng_state()
    kw = dict(sampler=sampler, scheduler="simple", steps=6, shift=2.0, seeds=[3, 4], dtype=torch.float32)
    cpu = sample(toy_eps, (2, *SHAPE_ITEM), device="cpu", **kw)
    gpu = sample(toy_eps, (2, *SHAPE_ITEM), device="cuda", **kw)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)
    single = sample(toy_eps, (1, *SHAPE_ITEM), device="cuda", **{**kw, "seeds": [4]})
    torch.testing.assert_close(single[0], gpu[1], rtol=1e-5, atol=1e-5)
    assert torch.equal(torch.cuda.get_rng_state(), gpu_state)
