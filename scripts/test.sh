#!/usr/bin/env bash
# Install (CPU torch pin, dev tools, versions from requirements.lock) into .venv and run the whole test suite.
# Extra args go to pytest. With CI=true a skip other than "needs CUDA" fails the run (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
. scripts/venv.sh
ensure_venv requirements-dev.txt
# A CUDA torch here means a pin was lost: it would cost gigabytes and minutes on every machine.
.venv/bin/python -c "import sys, torch; sys.exit(0 if torch.version.cuda is None else 'CUDA torch installed: check the pins')"
exec .venv/bin/python -m pytest -q "$@"
