"""The install scripts on a fresh Debian machine, run for real with fake system tools on PATH.

Debian's python3 has no `venv` bootstrap until `python3-venv` is installed: `python3 -m venv .venv`
writes `.venv/bin/python` and then fails. The scripts must say what to install and leave no half-made
`.venv` behind (every later run would otherwise die on a missing `.venv/bin/pip`), and CI must install
it, like chromium and node, on a fresh machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash") or "/bin/bash"

# python3 as Debian ships it without python3-venv: no ensurepip, and `-m venv DIR` half-creates DIR.
DEBIAN_PYTHON3 = """#!{bash}
if [ "$1" = "-V" ]; then echo "Python 3.11.2"; exit 0; fi
if [ "$1" = "-c" ]; then case "$2" in *ensurepip*) exit 1;; esac; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && printf '#!{bash}\\nexit 0\\n' > "$3/bin/python" && chmod +x "$3/bin/python"
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2
  exit 1
fi
exit 1
"""


def fake_bin(tmp: Path, tools: dict[str, str], real: tuple[str, ...]) -> Path:
    """A PATH folder holding only `tools` (name → script) and links to the `real` system tools."""
    folder = tmp / "bin"
    folder.mkdir()
    for name, script in tools.items():
        (folder / name).write_text(script.format(bash=BASH))
        (folder / name).chmod(0o755)
    for name in real:
        found = shutil.which(name)
        assert found, name
        (folder / name).symlink_to(found)
    return folder


def run(argv: list[str], cwd: Path, path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env={"PATH": str(path), "HOME": str(cwd), **env},
                          capture_output=True, text=True, timeout=60)


def test_venv_without_python3_venv_says_what_to_install_and_leaves_no_half_venv(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "venv.sh", checkout / "scripts")
    for req in ROOT.glob("requirements*.txt"):
        shutil.copy(req, checkout)
    shutil.copy(ROOT / "requirements.lock", checkout)
    path = fake_bin(tmp_path, {"python3": DEBIAN_PYTHON3}, ("cat", "sha256sum", "cut", "rm", "mkdir", "chmod"))
    for attempt in range(2):  # the second run must fail the same clear way, not on a leftover .venv
        proc = run([BASH, "-c", "set -euo pipefail; . scripts/venv.sh; ensure_venv requirements-cpu.txt"],
                   checkout, path)
        assert proc.returncode != 0, proc.stderr
        assert "python3-venv" in proc.stderr, (attempt, proc.stderr)
        assert "No such file" not in proc.stderr, (attempt, proc.stderr)
        assert not (checkout / ".venv").exists(), (attempt, proc.stderr)


def test_ci_installs_what_a_fresh_debian_lacks_then_runs_the_readme_test_command(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / "scripts").mkdir()
    shutil.copy(ROOT / ".ci" / "run", checkout / ".ci")
    log = tmp_path / "log"
    # The README's test command, replaced by a probe: what CI ran it with.
    (checkout / "scripts" / "test.sh").write_text(f'#!{BASH}\necho "test.sh CI=$CI" >> {log}\n')
    (checkout / "scripts" / "test.sh").chmod(0o755)
    apt = f'#!{BASH}\necho "apt-get $*" >> {log}\n'
    path = fake_bin(tmp_path, {"apt-get": apt, "python3": DEBIAN_PYTHON3}, ("dirname",))
    proc = run([BASH, str(checkout / ".ci" / "run")], checkout, path)
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    installs = " ".join(line for line in lines if line.startswith("apt-get") and " install " in line).split()
    for package in ("python3-venv", "chromium", "nodejs"):
        assert package in installs, lines
    assert lines[-1] == "test.sh CI=true", lines


def test_a_leftover_venv_without_pip_is_named_not_run(tmp_path):
    """A .venv an older script left half-made: one line saying how to clear it (never deleted for you)."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "venv.sh", checkout / "scripts")
    shutil.copy(ROOT / "requirements.lock", checkout)
    for req in ROOT.glob("requirements*.txt"):
        shutil.copy(req, checkout)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").write_text(f"#!{BASH}\nexit 0\n")
    (checkout / ".venv" / "bin" / "python").chmod(0o755)
    path = fake_bin(tmp_path, {"python3": DEBIAN_PYTHON3}, ("cat", "sha256sum", "cut", "rm", "mkdir", "chmod"))
    proc = run([BASH, "-c", "set -euo pipefail; . scripts/venv.sh; ensure_venv requirements-cpu.txt"], checkout, path)
    assert proc.returncode != 0 and "rm -rf .venv" in proc.stderr, proc.stderr
    assert "No such file" not in proc.stderr and (checkout / ".venv" / "bin" / "python").exists()
