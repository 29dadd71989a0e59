"""Every command the README shows works as written on a fresh machine.

A fresh machine has a system python without our packages, so no command may start with a bare
`python`; scripts and files named in commands must exist; the headless example must really run.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
LAUNCHERS = ("./scripts/", ".venv/bin/python", "python", "python3", "pip")


def commands() -> list[str]:
    """Shell commands in ```bash blocks (comments dropped) and in `inline code` that starts like a command."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        found += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    for span in re.findall(r"`([^`\n]+)`", README):
        if span.split(" ")[0] in LAUNCHERS or span.startswith(LAUNCHERS[:2]):
            found.append(span)
    return found


def words(command: str) -> list[str]:
    return shlex.split(command.replace("...", ""))


def test_the_readme_shows_commands():
    cmds = commands()
    assert "./scripts/start.sh --demo" in cmds and "./scripts/test.sh" in cmds
    assert any(c.startswith("./scripts/run.sh ") for c in cmds), cmds


@pytest.mark.parametrize("command", commands())
def test_command_does_not_need_the_system_python(command):
    # The system python lacks aiohttp & co.; `pip install` is only shown for a venv of the reader's own.
    assert words(command)[0] not in ("python", "python3"), \
        f"README command {command!r} runs the system python; use a scripts/ wrapper or .venv/bin/python"


@pytest.mark.parametrize("command", [c for c in commands() if c.startswith(("./scripts/", ".venv/bin/python"))])
def test_command_names_files_that_exist(command):
    argv = words(command)
    program = ROOT / argv[0]
    if argv[0].startswith("./scripts/"):
        assert program.is_file() and os.access(program, os.X_OK), f"{argv[0]} is missing or not executable"
        args = argv[1:]
    else:  # .venv/bin/python SCRIPT.py ... | -m MODULE ...; the venv itself is what the scripts create
        assert "./scripts/start.sh" in README
        if argv[1] == "-m":
            module = ROOT / argv[2].replace(".", "/")
            assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), argv[2]
            args = argv[3:]
        else:
            assert (ROOT / argv[1]).is_file(), argv[1]
            args = argv[2:]
    for arg in args:
        if not arg.startswith("-") and arg.endswith((".json", ".png")) and "=" not in arg:
            assert (ROOT / arg).is_file(), f"{command!r} names {arg}, which does not exist"


def test_script_arguments_parse():
    """start.sh and run.sh pass their arguments on: server.py's and cli.py's parsers accept them."""
    import cli
    from config import build_arg_parser
    for command in commands():
        argv = words(command)
        if argv[0] == "./scripts/start.sh":
            build_arg_parser().parse_args(argv[1:])
        elif argv[0] == "./scripts/run.sh":
            cli.build_parser().parse_args(argv[1:])


@pytest.mark.slow
def test_headless_example_runs_on_demo_weights(tmp_path, capsys):
    """The README's run.sh line, as written, with the folders moved into tmp_path: one PNG with the --set values."""
    import cli
    (command,) = [c for c in commands() if c.startswith("./scripts/run.sh ")]
    argv = words(command)[1:]
    folders = [f"--{name}={tmp_path / name}" for name in ("weights", "output", "input", "temp", "data")]
    cwd = Path.cwd()
    os.chdir(ROOT)  # the README's relative paths are from the checkout's root
    try:
        code = cli.main(argv + folders)
    finally:
        os.chdir(cwd)
    assert code == 0, capsys.readouterr().err[-2000:]
    (png,) = (tmp_path / "output").rglob("*.png")
    assert str(png) in capsys.readouterr().out
    with Image.open(png) as img:
        prompt = json.loads(img.text["prompt"])
    sets = dict(s.split("=", 1) for s in argv[argv.index("--set"):][1::2])
    for target, value in sets.items():
        node, name = target.rsplit(".", 1)
        assert str(prompt[node]["inputs"][name]) == value, (target, prompt[node]["inputs"])
