#!/usr/bin/env bash
# Refresh requirements.lock: install requirements-dev.txt without the lock (the newest releases that
# requirements*.txt allow) into a scratch venv, run the whole suite there, and only when it is green
# write that venv's exact versions, transitive ones included. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
echo "installing the newest allowed releases into a scratch venv (downloads ~300 MB, a few minutes)..." >&2
"$tmp/venv/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "is ignored" >&2)
echo "running the suite against them..." >&2
"$tmp/venv/bin/python" -m pytest -q "$@"
# Local version labels (+cpu, +cu124) are dropped: the plain version matches every build of that release.
{ grep '^#' requirements.lock
  "$tmp/venv/bin/pip" freeze --all --exclude pip | sed -E 's/\+[A-Za-z0-9.]+$//' | sort -f
} > "$tmp/lock"
mv "$tmp/lock" requirements.lock
echo "requirements.lock refreshed; review it with: git diff requirements.lock" >&2
