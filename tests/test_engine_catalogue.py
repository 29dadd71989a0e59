"""/object_info serialisation and the frozen Config built from CLI and environment."""
from pathlib import Path

import pytest

from config import Config, build_arg_parser
from engine.catalogue import catalogue
from tests.stub_nodes import STUB_NODES, StubEnv


def test_object_info_shape():
    info = catalogue(STUB_NODES, StubEnv(Path("/x")))
    assert list(info) == list(STUB_NODES)
    scale = info["Scale"]
    assert scale["input"]["required"]["x"] == ["NUMBER"]
    assert scale["input"]["required"]["factor"] == [
        "FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.5, "round": 0.5}]
    assert scale["input"]["required"]["mode"] == [["mul", "div"], {"default": "mul"}]  # legacy combo
    assert scale["input_order"] == {"required": ["x", "factor", "mode"]}
    assert scale["output"] == ["NUMBER"] and scale["output_name"] == ["number"]
    assert scale["output_is_list"] == [False] and scale["output_node"] is False
    assert scale["category"] == "stub" and scale["display_name"] == "Scale"
    assert scale["description"].startswith("x * factor")
    pick = info["Pick"]
    assert pick["input"]["required"]["name"][0] == ["alpha", "beta"]  # callable(env) choices
    assert pick["input"]["required"]["text"][1]["multiline"] is True
    assert pick["input"]["optional"]["seed"][1]["control_after_generate"] is True
    assert pick["input_order"]["optional"] == ["flag", "seed"]
    assert info["SaveNumberImage"]["output_node"] is True and info["SaveNumberImage"]["output"] == []


def test_broken_choices_do_not_break_catalogue():
    class BadEnv:
        @property
        def choices(self):
            raise OSError("folder gone")

    info = catalogue(STUB_NODES, BadEnv())
    assert info["Pick"]["input"]["required"]["name"][0] == []


def test_config_defaults_cli_and_env(tmp_path):
    cfg = Config.from_cli([], {})
    assert (cfg.host, cfg.port, cfg.token) == ("127.0.0.1", 8188, None)
    assert cfg.weights_dir.name == "weights" and cfg.data_dir.name == "user"
    env = {"CASCADE_HOST": "0.0.0.0", "CASCADE_PORT": "9000", "CASCADE_TOKEN": "s3",
           "CASCADE_WEIGHTS": str(tmp_path / "w"), "CASCADE_OUTPUT": str(tmp_path / "o")}
    cfg = Config.from_cli([], env)
    assert (cfg.host, cfg.port, cfg.token) == ("0.0.0.0", 9000, "s3")
    assert cfg.weights_dir == tmp_path / "w" and cfg.output_dir == tmp_path / "o"
    cfg = Config.from_cli(["--port", "7000", "--host", "::1", "--run", "wf.json", "--set", "3.seed=1",
                           "--memory-budget", "6", "--demo"], env)
    assert cfg.port == 7000 and cfg.host == "::1" and cfg.is_loopback  # CLI beats env
    assert cfg.extra == {"run": "wf.json", "set": ["3.seed=1"]}
    assert cfg.memory_budget_gb == 6.0 and cfg.demo
    with pytest.raises(Exception):
        cfg.port = 1  # frozen
    parser = build_arg_parser()
    parser.add_argument("--extra-flag")  # other tools extend the same parser
    ns = parser.parse_args(["--extra-flag", "x"])
    assert Config.from_namespace(ns, {}).port == 8188


def test_non_loopback_without_token_refused():
    with pytest.raises(ValueError, match="--token"):
        Config(host="0.0.0.0").check_safe()
    Config(host="0.0.0.0", token="t").check_safe()
    Config(host="localhost").check_safe()


def test_engine_never_imports_aiohttp():
    engine_dir = Path(__file__).resolve().parent.parent / "engine"
    offenders = [p.name for p in engine_dir.glob("*.py") if "aiohttp" in p.read_text()]
    assert offenders == []
