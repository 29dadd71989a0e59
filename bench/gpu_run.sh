#!/usr/bin/env bash
# One prepared run on a lent GPU: ours beside diffusers, lite and full, every figure as JSON under $OUT.
#
#   OUT=/some/dir bench/gpu_run.sh            # on the GPU machine (about 10 minutes on an H100-class card)
#   OUT=/tmp/gpu_smoke bench/gpu_run.sh --smoke   # on a CPU: the same steps, tiny sizes, to check the script
#
# Each bench alternates the two sides over rounds (bench/rounds.py) and records the load; the card's
# name and driver go to $OUT/card.txt. PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
step() { echo "== $*" >&2; "$@"; }

if [[ "${1:-}" == "--smoke" ]]; then
    DEV=cpu; WEIGHTS=${WEIGHTS:-/tmp/cascade_bench_weights}
    step "$PY" bench/components.py --part stage_a --smoke --size 64 --rounds 2 --device $DEV --json "$OUT/stage_a_smoke.json"
    step "$PY" bench/components.py --part text_encoder --smoke --rounds 2 --device $DEV --json "$OUT/text_encoder_smoke.json"
    if [[ "${SMOKE_PIPELINE:-0}" == "1" ]]; then  # minutes on 2 cores: only on request
        step "$PY" bench/pipeline.py --device $DEV --size 256 --rounds 2 --round-steps-c 1 --round-steps-b 1 \
            --full-rounds 0 --weights "$WEIGHTS" --json "$OUT/pipeline_lite_smoke.json"
    fi
    echo "smoke ok: $OUT" >&2
    exit 0
fi

DEV=cuda
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true; "$PY" -c \
    "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"; } > "$OUT/card.txt"
WEIGHTS=${WEIGHTS:-/tmp/cascade_bench_weights}
# Per step, both UNets side by side on shared weights.
step "$PY" bench/unet_step.py --device $DEV --steps 10 > "$OUT/unet_step_cuda.txt"
# Stage A and the text encoder alone (Stage A's bf16 error against fp32 is in the JSON: BF16_BOUND).
step "$PY" bench/components.py --part stage_a --size 1024 --rounds 6 --device $DEV --weights "$WEIGHTS" \
    --json "$OUT/stage_a_1024_cuda.json"
step "$PY" bench/components.py --part text_encoder --rounds 6 --device $DEV --weights "$WEIGHTS" \
    --json "$OUT/text_encoder_cuda.json"
# The whole pipeline, lite then full (3.6B + 1.5B), official settings in the full rounds.
step "$PY" bench/pipeline.py --device $DEV --rounds 4 --round-steps-c 4 --round-steps-b 2 --full-rounds 2 \
    --weights "$WEIGHTS" --json "$OUT/pipeline_lite_1024_cuda.json"
step "$PY" bench/pipeline.py --device $DEV --full --rounds 2 --round-steps-c 4 --round-steps-b 2 --full-rounds 2 \
    --weights "$WEIGHTS" --json "$OUT/pipeline_full_1024_cuda.json"
echo "done: $OUT" >&2
