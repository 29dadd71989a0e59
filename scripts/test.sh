#!/usr/bin/env bash
# Install (CPU torch pin, dev tools) into .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "is ignored" >&2)
# A CUDA torch here means a pin was lost: it would cost gigabytes and minutes on every machine.
.venv/bin/python -c "import sys, torch; sys.exit(0 if torch.version.cuda is None else 'CUDA torch installed: check the pins')"
exec .venv/bin/python -m pytest -q "$@"
