# Sourced by start.sh, run.sh and test.sh: make .venv hold requirements-$SET at the versions in
# requirements.lock. A stamp in .venv records what was installed, so later starts skip pip entirely.
# usage: . scripts/venv.sh; ensure_venv requirements-cpu.txt|requirements-dev.txt

lock_digest() {  # what an install depends on: the lock, every requirements file, the interpreter
  { cat requirements.lock requirements*.txt; python3 -V 2>&1; } | sha256sum | cut -c1-16
}

ensure_venv() {
  local req=$1 digest stamp started
  digest=$(lock_digest)
  stamp=".venv/.installed-${req%.txt}"
  # The dev set includes the runtime set, so a dev install also satisfies start.sh and run.sh.
  for s in "$stamp" .venv/.installed-requirements-dev; do
    if [ -x .venv/bin/python ] && [ "$(cat "$s" 2>/dev/null)" = "$digest" ]; then return 0; fi
  done
  if [ -x .venv/bin/python ] && [ -x .venv/bin/pip ]; then
    echo "updating .venv to requirements.lock ($req changed or not installed yet)..." >&2
  else
    if [ -e .venv ]; then
      echo "error: .venv has no pip (an interrupted or failed first install?); remove it (rm -rf .venv) and run again" >&2
      return 1
    fi
    echo "installing dependencies ($req, pinned by requirements.lock) into .venv;" \
         "the first run downloads about $( [ "$req" = requirements-dev.txt ] && echo 400 || echo 250 ) MB" \
         "and takes a few minutes..." >&2
    # Debian's python3 lacks the venv bootstrap (ensurepip) until python3-venv is installed; the
    # half-made .venv a failed `venv` leaves would break every later run, so it goes.
    if ! python3 -m venv .venv; then
      rm -rf .venv
      echo "error: python3 -m venv failed ($(python3 -V 2>&1)); on Debian/Ubuntu install python3-venv" \
           "(sudo apt-get install python3-venv) and run again" >&2
      return 1
    fi
  fi
  started=$SECONDS
  rm -f "$stamp"
  # pip's own "constraint ... is ignored" notices are noise here; every other message stays.
  .venv/bin/pip install -q --disable-pip-version-check -c requirements.lock -r "$req" \
    2> >(grep -v "is ignored" >&2)
  echo "$digest" > "$stamp"
  echo "dependencies installed in $((SECONDS - started)) s" >&2
}
