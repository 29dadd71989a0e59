#!/bin/bash
# How much of our CPU time comes from runtime/allocator.py's glibc settings, and what the same settings give
# diffusers: reduced steps (C 4, B 2), lite, 1024², each side in its own process, 2 rounds of 4 runs:
#   ours (tuned, the default) | ours with CASCADE_MALLOC=default | diffusers | diffusers with the same
#   settings through glibc's environment variables.
# Prints one line per run: name, round, 1-minute load before it, then bench/pipeline.py's JSON for that side.
#   bench/allocator_ab.sh > bench/results/allocator_ab_cpu.log      (about 7 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
run() {  # name side VAR=value...
  local name=$1 side=$2 load
  shift 2
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "$name round $r load $load $(env "$@" .venv/bin/python bench/pipeline.py --side "$side" --steps-c 4 \
    --steps-b 2 2>/dev/null | tail -1)"
}
for r in 1 2; do
  run ours_tuned ours CASCADE_MALLOC=
  run ours_default ours CASCADE_MALLOC=default
  run diffusers_plain diffusers CASCADE_MALLOC=
  run diffusers_glibc diffusers MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_ARENA_MAX=1
done
