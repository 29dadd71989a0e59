#!/usr/bin/env bash
# Install the app into .venv (once; again only when requirements.lock changes) and start the server
# (editor at the printed URL). Extra args go to server.py.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv requirements-cpu.txt
exec .venv/bin/python server.py "$@"
