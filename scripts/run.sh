#!/usr/bin/env bash
# Run a workflow headless: install into .venv like start.sh (once), then `python cli.py "$@"`.
# e.g. ./scripts/run.sh web/workflows/default.json --demo --set 8.seed=42 --set 6.text="a cat"
# Paths in the arguments (and the default weights/, output/ folders) are relative to where you run it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
(cd "$root" && . scripts/venv.sh && ensure_venv requirements-cpu.txt)
exec "$root/.venv/bin/python" "$root/cli.py" "$@"
