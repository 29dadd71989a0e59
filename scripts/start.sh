#!/usr/bin/env bash
# Install the app into .venv and start the server (editor at the printed URL). Extra args go to server.py.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-cpu.txt 2> >(grep -v "is ignored" >&2)
exec .venv/bin/python server.py "$@"
