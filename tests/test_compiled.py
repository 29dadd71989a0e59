"""Optional torch.compile of the sampled networks (runtime/compiled.py): off by default, guarded CUDA graphs."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from runtime import compiled as C


def _env(mode=None):
    return SimpleNamespace(config=SimpleNamespace(extra={} if mode is None else {"compile": mode}))


def test_mode_from_config_and_environment(monkeypatch):
    monkeypatch.delenv("CASCADE_COMPILE", raising=False)
    assert C.compile_mode(_env()) == "off"
    monkeypatch.setenv("CASCADE_COMPILE", "inductor")
    assert C.compile_mode(_env()) == "inductor" and C.compile_mode(_env("eager")) == "eager"
    with pytest.raises(ValueError, match="turbo.*off, inductor, cudagraphs, eager"):
        C.compile_mode(_env("turbo"))


def test_cuda_graphs_only_on_cuda():
    assert C.compile_options("cudagraphs", "cuda:0") == ({"backend": "inductor", "mode": "reduce-overhead"}, None)
    options, warning = C.compile_options("cudagraphs", "cpu")
    assert options == {"backend": "inductor"} and "needs a CUDA device" in warning


def test_off_returns_the_module_itself(monkeypatch):
    monkeypatch.delenv("CASCADE_COMPILE", raising=False)
    net = torch.nn.Linear(3, 3)
    assert C.compiled(_env(), net) is net


@pytest.mark.slow  # dynamo traces the tiny network (~10 s on 2 shared cores)
@pytest.mark.parametrize("quantize", ["none", "int8_weight"])  # int8 layers must trace too (models/quant.py)
def test_compiled_stage_b_matches_eager_and_compiles_once(monkeypatch, quantize):
    from models.quant import quantize_model
    from models.stage_b import STAGE_B_PRESETS, StageB

    torch.manual_seed(0)
    net = quantize_model(StageB(STAGE_B_PRESETS["tiny"]).eval(), quantize)
    warnings = []
    run = C.compiled(_env("eager"), net, warnings.append)
    assert C.compiled(_env("eager"), net) is run and not warnings
    cfg = net.config
    x = torch.randn(1, 4, 16, 16)
    r = torch.tensor([0.5])
    effnet = torch.randn(1, 16, 6, 6)
    clip = torch.randn(1, 1, cfg.c_clip if hasattr(cfg, "c_clip") else 32)
    with torch.no_grad():
        want = net(x, r, effnet=effnet, clip=clip)
        for _ in range(3):
            got = run(x, r, effnet=effnet, clip=clip)
    assert torch.equal(got, want)
    stats = C.COMPILE_STATS[id(run)]
    assert stats["calls"] == 3 and stats["mode"] == "eager" and C.compile_seconds(stats) >= 0


def test_server_refuses_to_start_with_an_unknown_mode(tmp_path, monkeypatch):
    """A misspelt $CASCADE_COMPILE is named at start-up, before the data folder or the port is taken;
    otherwise the server would start and every Stage C / Stage B sampler would fail."""
    import server

    def nodes(config):
        raise AssertionError("the server went on to load its nodes")
    monkeypatch.setenv("CASCADE_COMPILE", "inductr")
    with pytest.raises(SystemExit, match="compile mode 'inductr' is not one of off, inductor"):
        server.main(["--port", "0", "--data", str(tmp_path / "data")], nodes=nodes)
    assert not (tmp_path / "data").exists()
    monkeypatch.setenv("CASCADE_COMPILE", "EAGER")  # case does not matter, as compile_mode reads it
    with pytest.raises(AssertionError, match="load its nodes"):
        server.main(["--port", "0", "--data", str(tmp_path / "data")], nodes=nodes)
